"""anGPT's extra constant factors (nu) must not cost extra kernels once compiled: Inductor folds every scalar
multiply into the neighbouring norm / pointwise kernels. Guard: per block (forward + backward), compiled anGPT
generates no more fused kernels than GPT+, with no graph break, and the compiled block computes what eager does."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ant.models import build_model
from ant.perf import count_compiled_kernels, count_eager_ops


def block_counts(arch: str) -> tuple[dict[str, int], dict[str, int], float]:
    torch.manual_seed(0)
    model = build_model(arch, "tiny1", vocab_size=64, n_layers=1)
    x = torch.randint(0, 64, (2, 17))

    def loss(m):
        return F.cross_entropy(m(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten())

    eager_loss = loss(model)
    eager = count_eager_ops(lambda: loss(model).backward())
    model.zero_grad(set_to_none=True)
    model.blocks[0].compile()  # regional: the block is where the factors live (and compiles in seconds)
    with count_compiled_kernels() as compiled:
        compiled_loss = loss(model)
        compiled_loss.backward()
    return eager, compiled, (compiled_loss - eager_loss).abs().item()


@pytest.mark.slow
def test_scalar_factors_fuse_into_the_same_kernels_as_gptplus():
    torch._dynamo.reset()
    # count_compiled_kernels turns the FX-graph and AOT-autograd caches off, so Inductor lowers each graph and
    # writes its kernels' code (what is counted) every time; only their C++ builds come from the persisted cache
    # (tests/conftest.py): same counts, 13 s instead of 33 s with an empty cache
    counts = {arch: block_counts(arch) for arch in ("gptplus", "angpt", "ngpt")}
    for arch, (_eager, compiled, diff) in counts.items():
        assert compiled["graph_breaks"] == 0 and compiled["graphs"] == 2, (arch, compiled)  # forward + backward
        assert diff < 1e-5, (arch, diff)
    gp, an = counts["gptplus"], counts["angpt"]
    # eager: every nu multiply and the nu(alpha) arithmetic is its own op, so anGPT launches more pointwise ops
    assert an[0]["pointwise"] > gp[0]["pointwise"]
    # compiled: they disappear into the fused kernels; matmuls/attention (library calls) are the same
    # the README's figures (torch 2.13, CPU inductor, one block): anGPT 12 fused kernels, GPT+ 14. A different
    # torch may fuse differently: then update the README with the new counts, as long as anGPT stays <= GPT+.
    assert (an[1]["kernels"], gp[1]["kernels"]) == (12, 14), (an[1], gp[1])
    assert an[1]["extern_calls"] == gp[1]["extern_calls"]


@pytest.mark.parametrize("arch", ["angpt", "ngpt"])
def test_logit_scale_folded_into_the_head_weight_changes_nothing(arch):
    # The head computes s_z * (W_h h) as (s_z[:, None] * W_h) h (the scale touches [V, d], not [B, T, V]):
    # logits and every gradient must equal the activation-side formula it replaced. In float64, so that only a
    # real difference (not fp32 reassociation of the s_z reduction) can fail the comparison.
    torch.manual_seed(0)
    model = build_model(arch, "tiny2", vocab_size=320).double()
    with torch.no_grad():
        model.sz.weight.mul_(1 + torch.rand_like(model.sz.weight))  # a non-uniform s_z, as after training
    h = torch.randn(2, 9, model.cfg.d_model, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 9, 320, dtype=torch.float64)
    params = [h, model.lm_head.weight, model.sz.weight]

    def grads(logits):
        (logits * target).sum().backward()
        out = [logits.detach()] + [p.grad.clone() for p in params]
        for p in params:
            p.grad = None
        return out

    new = grads(model.head(h))
    old = grads((model.lm_head(h) * model.sz()).float())  # the head returns fp32 logits (one rounding)
    for a, b, name in zip(new, old, ("logits", "d h", "d W_h", "d s_z")):
        tol = 1e-6 if name == "logits" else 1e-10
        torch.testing.assert_close(a, b, rtol=tol, atol=tol, msg=lambda m, name=name: f"{arch} {name}: {m}")
