"""gpt and gptplus: parity with the literal Table 1 forward, residual growth with depth, no constraint."""

from __future__ import annotations

import pytest
import torch

from ant.models import build_model

from . import reference
from .conftest import VOCAB


@pytest.mark.parametrize("arch", ["gpt", "gptplus"])
def test_matches_table1_reference(arch, real_batch):
    reference.assert_matches(arch, real_batch(2, 24))


def test_gptplus_residual_grows_with_depth(real_batch):
    x = real_batch(4, 256)
    for arch in ("gpt", "gptplus"):
        torch.manual_seed(0)
        m = build_model(arch, "32M", vocab_size=VOCAB)  # paper rung shape: d 256, 6 layers, 4 heads
        norms = m.residual_norms(x)
        print(f"\n{arch:8s} residual norm entering block 0..L-1 and leaving L-1:", [f"{v:.3f}" for v in norms])
        assert (norms[1:] > norms[:-1]).all(), "pre-norm residual stream should grow block by block"
        assert norms[-1] > 2 * norms[0]


def test_qk_norm_and_g_act(real_batch):
    torch.manual_seed(0)
    plus = build_model("gptplus", "tiny2", vocab_size=VOCAB)
    plain = build_model("gpt", "tiny2", vocab_size=VOCAB)
    plain.load_state_dict(plus.state_dict(), strict=False)  # same matrices and gains; plain has no g
    x = real_batch(2, 24)
    with torch.no_grad():
        a, b = plus(x), plain(x)
        assert (a - b).abs().amax() > 1e-3
        assert all(blk.g.item() == pytest.approx(16**0.5) for blk in plus.blocks)  # sqrt(d_k) at init
        for blk in plus.blocks:
            blk.g.mul_(2)
        assert (plus(x) - a).abs().amax() > 1e-3


def test_no_constraint():
    m = build_model("gptplus", "tiny1", vocab_size=VOCAB)
    before = {k: v.clone() for k, v in m.state_dict().items()}
    with torch.no_grad():
        m.lm_head.weight.mul_(100)
    before["lm_head.weight"] *= 100
    m.project_weights()
    assert m.constraints() == []
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
