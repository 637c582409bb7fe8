"""anGPT: Table 1 parity (constants unfolded), near-unit residual stream, bounded rows along the input dim,
ablation switches."""

from __future__ import annotations

import math

import pytest
import torch

from ant.models import build_model
from ant.models.angpt import ANGPTConfig

from . import reference
from .conftest import VOCAB, adam_steps, model_pair, row_norms

# documented in constraints.py / paper-notes §1.4: the input dim of every matrix; each token vector of wte
ANGPT_DIMS = {"wte": 1, "lm_head": 1, "qkv": 1, "proj": 1, "fc": 1, "down": 1}


def test_constants_at_0p5b():
    c = ANGPTConfig(d_model=1024, n_heads=16).constants()
    assert c == pytest.approx({"qkv": 4.0, "p": 0.25, "uz": 0.5, "acf": 3.74, "d": 2.0})
    half = ANGPTConfig(d_model=1024, n_heads=16, const_factor_mult=0.5).constants()
    assert half == pytest.approx({k: v * 0.5 for k, v in c.items()})
    assert set(ANGPTConfig(const_factors=False).constants().values()) == {1.0}


def test_matches_table1_reference(real_batch):
    reference.assert_matches("angpt", real_batch(2, 24))


def test_residual_norm_near_one_at_every_block(real_batch):
    torch.manual_seed(0)
    m = build_model("angpt", "32M", vocab_size=VOCAB)
    x = real_batch(4, 256)
    norms = m.residual_norms(x)
    print("\nangpt residual norms (alpha=0.05):", [f"{v:.4f}" for v in norms])
    assert ((norms - 1).abs() < 0.05).all()
    # nu(alpha) is recomputed from alpha in every forward: with alpha near 0.4 the stream still stays near one,
    # while the same LERP without the factor shrinks it block by block
    no_factor = build_model("angpt", "32M", vocab_size=VOCAB, residual_factor=False)
    no_factor.load_state_dict(m.state_dict())
    with torch.no_grad():
        for model in (m, no_factor):
            for b in model.blocks:
                for s in (b.alpha_a, b.alpha_m):
                    s.weight.uniform_(0.06, 0.1)  # alpha = 5 x surrogate in [0.3, 0.5]
    norms, shrunk = m.residual_norms(x), no_factor.residual_norms(x)
    print("angpt residual norms (alpha~0.4):  ", [f"{v:.4f}" for v in norms])
    print("  ... without nu(alpha):           ", [f"{v:.4f}" for v in shrunk])
    assert ((norms - 1).abs() < 0.05).all()
    assert shrunk[-1] < 0.9


def test_rows_bounded_along_input_dim(real_batch):
    torch.manual_seed(0)
    m = build_model("angpt", "tiny3", vocab_size=VOCAB)
    x = real_batch(4, 64)
    for n, v in row_norms(m, ANGPT_DIMS).items():  # initialised with unit rows along the input dim
        assert (v - 1).abs().max() < 1e-5, n
    adam_steps(m, x, steps=4)
    adam_steps(m, x, steps=1, project=False)
    assert max(v.max().item() for v in row_norms(m, ANGPT_DIMS).values()) > 1.01  # the bound has work to do
    m.project_weights()
    for n, v in row_norms(m, ANGPT_DIMS).items():
        assert v.max().item() <= 1 + 1e-6, n
    # a bound, not a renormalisation: rows the optimizer shortened stay short, as does a shrunk matrix
    assert min(v.min().item() for v in row_norms(m, ANGPT_DIMS).values()) < 0.99
    with torch.no_grad():
        m.blocks[0].down.weight.mul_(0.5)
    shrunk = m.blocks[0].down.weight.detach().clone()
    m.project_weights()
    assert torch.equal(m.blocks[0].down.weight.detach(), shrunk)


ABLATIONS = [
    {"residual_factor": False},
    {"residual_factor_mult": 0.5},
    {"const_factors": False},
    {"const_factor_mult": 0.5},
    {"const_factor_mult": 2.0},
    {"lerp": False},
    {"lerp": False, "residual_factor": False},
    {"alpha_scale": 0.001},
    {"sz_init": 2.0},
    {"qk_scale_init": 2.0},
    {"gate_sqrt_d": True},
]


@pytest.mark.parametrize("switch", ABLATIONS, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()))
def test_every_switch_changes_the_output(switch, real_batch):
    torch.manual_seed(0)
    base = build_model("angpt", "tiny3", vocab_size=VOCAB)
    var = build_model("angpt", "tiny3", vocab_size=VOCAB, **switch)
    matrices = {k: v for k, v in base.state_dict().items() if v.ndim == 2}
    var.load_state_dict(matrices, strict=False)  # same matrices; the switch's own vectors and scalars kept
    for model in (base, var):  # alpha_scale acts through the effective learning rate: move alpha once
        with torch.no_grad():
            for b in model.blocks:
                if hasattr(b, "alpha_a"):
                    b.alpha_a.weight.add_(0.002)
    x = real_batch(2, 32)
    with torch.no_grad():
        diff = (base(x) - var(x)).abs().amax().item()
    assert diff > 1e-4, f"{switch} left the output unchanged (max diff {diff:.2e})"


@pytest.mark.parametrize("switch", [{"nu_p": 1.0}, {"nu_acf": 1.0}, {"abs_alpha": True}])
def test_factors_before_an_exact_norm_cancel(switch, real_batch):
    """The docstring's claim: nu_p and nu_acf sit right before an exact L2 norm, so they change nothing beyond
    rounding (and |alpha| changes nothing while alpha > 0)."""
    base, var = model_pair("angpt", **switch)
    x = real_batch(2, 32)
    with torch.no_grad():
        torch.testing.assert_close(var(x), base(x), rtol=1e-5, atol=1e-5)


def test_bound_embeddings_switch(real_batch):
    bounded, free = model_pair("angpt", train_on=real_batch(4, 64), bound_embeddings=False)
    assert bounded.wte.weight.norm(dim=1).max() <= 1 + 1e-6
    assert free.wte.weight.norm(dim=1).max() > 1.01
    assert free.lm_head.weight.norm(dim=1).max() <= 1 + 1e-6  # the other matrices stay bounded


def test_no_lerp_has_no_alpha():
    m = build_model("angpt", "tiny2", vocab_size=VOCAB, lerp=False)
    assert m.alpha_stats() == {}
    assert not any("alpha" in n for n, _ in m.named_parameters())
    assert m.blocks[0].nu_add == pytest.approx(1 / math.sqrt(2))


def test_logit_scale_per_head_is_the_same_function_at_init_and_learns_per_head(real_batch):
    torch.manual_seed(0)
    layer = build_model("angpt", "tiny3", vocab_size=VOCAB)
    head = build_model("angpt", "tiny3", vocab_size=VOCAB, qk_scale_per_head=True)
    H, L = head.cfg.n_heads, head.cfg.n_layers
    assert head.num_params() - layer.num_params() == L * (H - 1)
    head.load_state_dict({k: v for k, v in layer.state_dict().items() if not k.endswith(".g")}, strict=False)
    xy = real_batch(2, 33)
    x, y = xy[:, :-1], xy[:, 1:]
    torch.testing.assert_close(head(x), layer(x))  # every head starts at g = sqrt(d_h)
    torch.nn.functional.cross_entropy(head(x).flatten(0, 1), y.flatten()).backward()
    grad = head.blocks[0].g.grad.flatten()
    assert grad.shape == (H,) and grad.std() > 0  # heads get different gradients: they can learn apart


def test_the_table1_specification_is_independent_of_the_models():
    """ant/models/reference.py is the executable specification the models are held to: it must not borrow their
    code (attention, RoPE, norms), or a bug shared by both would pass the parity tests."""
    import ast
    from pathlib import Path

    import ant.models.reference as spec

    tree = ast.parse(Path(spec.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "." for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "math", "torch", "torch.nn.functional"}, imported
    assert set(spec.FORWARDS) == {"gpt", "gptplus", "ngpt", "angpt"}
