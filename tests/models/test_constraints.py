"""Weight constraints: renormalise vs clip, and the dimension table."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ant.models.constraints import ANGPT_DIMS, NGPT_DIMS, Constraint, matrix_constraints


def test_renorm_and_clip():
    torch.manual_seed(0)
    w = nn.Parameter(torch.randn(6, 10))
    with torch.no_grad():
        w[:3] *= 0.01  # short rows
        w[3:] *= 10.0  # long rows
    short = w[:3].detach().clone()
    Constraint("w", w, 1, "clip").apply_()
    n = w.detach().norm(dim=1)
    assert torch.allclose(n[3:], torch.ones(3), atol=1e-6)  # long rows scaled back onto the sphere
    assert torch.equal(w[:3].detach(), short)  # short rows untouched: a bound, not a renormalisation
    Constraint("w", w, 1, "renorm").apply_()
    assert torch.allclose(w.detach().norm(dim=1), torch.ones(6), atol=1e-6)
    Constraint("w", w, 0, "renorm").apply_()
    assert torch.allclose(w.detach().norm(dim=0), torch.ones(10), atol=1e-6)


def test_tables_documented_dims():
    # nGPT: along d_model -> the two output projections along dim 0; anGPT: input dim for everything
    assert NGPT_DIMS == {"wte": 1, "lm_head": 1, "qkv": 1, "fc": 1, "proj": 0, "down": 0}
    assert set(ANGPT_DIMS.values()) == {1} and set(ANGPT_DIMS) == set(NGPT_DIMS)


def test_unknown_matrix_is_an_error():
    m = nn.Module()
    m.mystery = nn.Linear(3, 3, bias=False)
    with pytest.raises(KeyError, match="mystery"):
        matrix_constraints(m, NGPT_DIMS, "renorm")
