"""The shared skeleton: FLOPs convention, optimizer groups, diagnostics' shapes."""

from __future__ import annotations

import pytest

from ant.archs import arch as arch_row
from ant.models import ARCHS, PAPER_VOCAB, build_model

from .conftest import VOCAB


def test_flops_convention_at_0p5b():
    m = build_model("angpt", "0.5B", device="meta")
    L, d, V, T = 24, 1024, PAPER_VOCAB, 2048
    n_matmul = L * 16 * d * d + V * d  # blocks + head; the embedding lookup is not a matmul
    assert m.matmul_params() == n_matmul
    assert m.flops_per_token(T) == 6 * n_matmul + 6 * L * d * T
    # the same matmul work for every architecture: only elementwise vectors differ
    assert {build_model(a, "0.5B", device="meta").matmul_params() for a in ARCHS} == {n_matmul}


@pytest.mark.parametrize("arch", ARCHS)
def test_param_groups(arch):
    m = build_model(arch, "tiny2", vocab_size=VOCAB)
    groups = m.param_groups(0.1)
    decay, no_decay = groups[0], groups[1]
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in m.parameters())  # every parameter exactly once
    names = {id(p): n for n, p in m.named_parameters()}
    decayed = sorted(names[id(p)] for p in decay["params"])
    L = m.cfg.n_layers
    want = sorted([f"blocks.{i}.{k}.weight" for i in range(L) for k in ("qkv", "proj", "fc", "down")])
    assert decayed == sorted(want + ["lm_head.weight"])  # matrices only: not wte, gains, g, alphas, s_z


@pytest.mark.parametrize("arch", ARCHS)
def test_diagnostics(arch, real_batch):
    m = build_model(arch, "tiny2", vocab_size=VOCAB)
    x = real_batch(2, 16)
    norms = m.residual_norms(x)
    assert norms.shape == (m.cfg.n_layers + 1,) and not norms.requires_grad
    stats = m.alpha_stats()
    if not arch_row(arch).alphas:  # the row says which architectures log eigen learning rates
        assert stats == {}
    else:
        assert set(stats) == {f"alpha_{w}/{i}" for i in range(m.cfg.n_layers) for w in "am"}
        assert all(v == pytest.approx(0.05) for v in stats.values())
