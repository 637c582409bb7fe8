"""Test helpers around the Table 1 reference forwards, which live beside the models as their executable
specification: ant/models/reference.py."""

from __future__ import annotations

import torch

from ant.models.reference import FORWARDS


@torch.no_grad()
def perturb_vectors(m, seed=0):
    """Move every non-matrix parameter (gains, g, alphas, scales) off its init so parity tests see them act."""
    g = torch.Generator().manual_seed(seed)
    for p in m.parameters():
        if p.ndim < 2:
            p.mul_(1 + 0.5 * torch.rand(p.shape, generator=g))


def assert_matches(arch: str, x: torch.Tensor) -> None:
    """The optimised model's logits on the token batch x equal its literal forward in ant.models.reference, per
    sequence, on tiny3 with every vector and scalar moved off its init (so each one is seen to act)."""
    from ant.models import build_model

    from .conftest import VOCAB

    torch.manual_seed(0)
    m = build_model(arch, "tiny3", vocab_size=VOCAB)
    perturb_vectors(m)
    with torch.no_grad():
        got = m(x)
        want = torch.stack([FORWARDS[arch](m, s) for s in x])
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)
