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


@pytest.mark.parametrize("arch", ["ngpt", "angpt"])
def test_project_weights_acts_along_the_documented_axis(arch):
    """Behaviour, not the table: scale every matrix of a real model up, project, and find which axis came back to
    norm one. nGPT: the d_model (embedding) axis of every matrix, so the two output projections (att proj, MLP
    down: [d_model, in]) along their columns; anGPT: the input axis (dim 1) of every matrix, embeddings included."""
    from ant.models import build_model

    torch.manual_seed(0)
    model = build_model(arch, "tiny2", vocab_size=256)  # d_model 48
    kinds = {c.name.removesuffix(".weight").split(".")[-1] for c in model.constraints()}
    assert kinds == set(NGPT_DIMS) == set(ANGPT_DIMS), kinds  # every documented matrix is constrained
    with torch.no_grad():
        for c in model.constraints():
            c.param.mul_(3.0)  # every row and column longer than one
    model.project_weights()
    d = 48
    for c in model.constraints():
        w = c.param.detach()
        kind = c.name.removesuffix(".weight").split(".")[-1]
        along = [dim for dim in (0, 1) if torch.allclose(w.norm(dim=dim), torch.ones(w.shape[1 - dim]), atol=1e-5)]
        if arch == "angpt":
            assert along == [1], (c.name, along)
        else:
            assert w.shape[along[0]] == d, (c.name, tuple(w.shape), along)  # the reduced axis is d_model
            assert along == ([0] if kind in ("proj", "down") else [1]), (c.name, along)


def test_unknown_matrix_is_an_error():
    m = nn.Module()
    m.mystery = nn.Linear(3, 3, bias=False)
    with pytest.raises(KeyError, match="mystery"):
        matrix_constraints(m, NGPT_DIMS, "renorm")
