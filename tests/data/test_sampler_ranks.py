"""Data-parallel shares of the sampler (issue 15): rank r of W gets a disjoint slice of step s's global batch, the
slices of all ranks put together are the one-device batch, for any W dividing the batch, across epoch ends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ant.data import TrainSampler
from ant.errors import ConfigError


@pytest.fixture(scope="module")
def tokens() -> np.ndarray:
    # 1,001 distinct-ish tokens: 100 windows of 10 (+1), so batches of 12 cross an epoch end every ~8 steps
    return (np.arange(1001, dtype=np.uint32) * 7919) % 65_537


@pytest.mark.parametrize("world", [1, 2, 3, 4, 6, 12])
def test_rank_slices_put_together_are_the_global_batch(tokens, world):
    s = TrainSampler(tokens, seq_len=10, batch_size=12, seed=5)
    for step in (0, 1, 7, 8, 9, 31):  # steps 8 and 9 hold an epoch end
        x, y = s.batch(step)
        parts = [s.batch(step, rank, world) for rank in range(world)]
        assert all(p[0].shape == (12 // world, 10) for p in parts)
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)


def test_rank_slices_are_disjoint_windows_and_pure(tokens):
    a, b = TrainSampler(tokens, 10, 12, seed=5), TrainSampler(tokens, 10, 12, seed=5)
    firsts = [tuple(a.batch(3, r, 4)[0][:, 0].tolist()) for r in range(4)]
    assert len({t for f in firsts for t in f}) == 12  # 12 different windows start with 12 different tokens
    for r in (3, 0, 2):  # a fresh sampler, any order: the same slice (resume on another device count)
        assert torch.equal(b.batch(3, r, 4)[0], a.batch(3, r, 4)[0])


@pytest.mark.parametrize(("rank", "world"), [(0, 5), (2, 2), (-1, 2), (0, 0)])
def test_a_world_that_cannot_share_the_batch_names_train_devices(tokens, rank, world):
    with pytest.raises(ConfigError, match=r"^train\.devices: .*batch_size 12"):
        TrainSampler(tokens, 10, 12, seed=0).batch(0, rank, world)
