"""nGPT: Table 1 parity, unit residual stream, renormalised weights along the embedding dim, ablations."""

from __future__ import annotations

import pytest
import torch

from ant.models import build_model

from . import reference
from .conftest import VOCAB, adam_steps, model_pair, row_norms

# documented in constraints.py / paper-notes §2.3: the embedding (d_model) dimension of every matrix
NGPT_DIMS = {"wte": 1, "lm_head": 1, "qkv": 1, "fc": 1, "proj": 0, "down": 0}


def test_matches_table1_reference(real_batch):
    reference.assert_matches("ngpt", real_batch(2, 24))


def test_residual_norm_is_one_after_every_block(real_batch):
    torch.manual_seed(0)
    m = build_model("ngpt", "32M", vocab_size=VOCAB)
    norms = m.residual_norms(real_batch(4, 256))
    print("\nngpt residual norms:", [f"{v:.6f}" for v in norms])
    assert (norms - 1).abs().max() < 1e-4


def test_weights_stay_normalised_along_embedding_dim(real_batch):
    torch.manual_seed(0)
    m = build_model("ngpt", "tiny3", vocab_size=VOCAB)
    x = real_batch(4, 64)
    for n, v in row_norms(m, NGPT_DIMS).items():  # initialised on the sphere
        assert (v - 1).abs().max() < 1e-5, n
    adam_steps(m, x, steps=4)
    adam_steps(m, x, steps=1, project=False)
    drift = max((v - 1).abs().max().item() for v in row_norms(m, NGPT_DIMS).values())
    assert drift > 1e-2  # the step did move the rows off the sphere ...
    m.project_weights()
    for n, v in row_norms(m, NGPT_DIMS).items():  # ... and the projection put every one back
        assert (v - 1).abs().max() < 1e-5, n


def test_lerp_correction_changes_output(real_batch):
    base, corr = model_pair("ngpt", lerp_correction=True)
    x = real_batch(2, 32)
    with torch.no_grad():
        assert (base(x) - corr(x)).abs().amax() > 1e-3
    norms = corr.residual_norms(real_batch(4, 128))  # nu(alpha) only approximates the norm
    assert ((norms - 1).abs() < 0.05).all() and (norms - 1).abs().max() > 1e-5


def test_bound_weights_changes_training(real_batch):
    x = real_batch(4, 64)
    exact, bound = model_pair("ngpt", train_on=x, bound_weights=True)
    with torch.no_grad():
        assert (exact(x) - bound(x)).abs().amax() > 1e-3
    norms = row_norms(bound, NGPT_DIMS)
    assert max(v.max().item() for v in norms.values()) <= 1 + 1e-6


@pytest.mark.parametrize("switch", [{"abs_alpha": False}])
def test_abs_alpha_only_matters_for_negative_alpha(switch, real_batch):
    a, b = model_pair("ngpt", "tiny2", **switch)
    x = real_batch(2, 16)
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))
        for m in (a, b):
            m.blocks[0].alpha_a.weight.neg_()
        assert (a(x) - b(x)).abs().amax() > 1e-3
