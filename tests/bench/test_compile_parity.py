"""Guard against the bf16 + torch.compile hazard of chained L2 normalisations (anchors.md A5, openai/parameter-golf
PR #1108): compiled nGPT/anGPT must train like eager. Both copies start from the same weights and see the same
batches; the training losses and the final weights must agree step by step."""

from __future__ import annotations

import pytest
import torch

from ant.bench import make_loss_fn, make_optimizer
from ant.models import build_model
from ant.models.layers import l2norm
from tests.conftest import COMPILE_SHAPE

STEPS = 50


def train_losses(arch: str, compile: bool, dtype: torch.dtype, batches: list[torch.Tensor]):
    torch.manual_seed(0)
    model = build_model(arch, "tiny1", vocab_size=256, n_layers=2)
    loss_fn = make_loss_fn(model, compile)
    opt = make_optimizer(model, arch, lr=3e-3, device=torch.device("cpu"))
    losses = []
    for x in batches:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            loss = loss_fn(x[:, :-1], x[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        model.project_weights()
        losses.append(loss.item())
    return torch.tensor(losses), model


@pytest.mark.slow
@pytest.mark.parametrize(
    "arch, dtype",
    [("angpt", torch.float32), ("ngpt", torch.float32), ("angpt", torch.bfloat16)],
    ids=["angpt-fp32", "ngpt-fp32", "angpt-bf16"],  # ~1 min each on 2 cores, mostly compilation
)
def test_compiled_training_matches_eager(arch, dtype):
    g = torch.Generator().manual_seed(1)
    # a learnable stream (a repeating pattern plus noise), so the loss falls and errors could show up as drift
    batch, tokens = COMPILE_SHAPE  # compiled once for three tests (tests/conftest.py)
    base = torch.arange(tokens + 1) % 7
    batches = [(base + torch.randint(0, 2, (batch, tokens + 1), generator=g) * 8) % 256 for _ in range(STEPS)]
    torch._dynamo.reset()
    eager, m_eager = train_losses(arch, False, dtype, batches)
    compiled, m_comp = train_losses(arch, True, dtype, batches)
    assert torch.isfinite(compiled).all()
    assert eager[-5:].mean() < eager[:5].mean() - 0.5, "the run must learn, or the comparison proves nothing"
    # fp32: the two differ only by Inductor's reordering of sums (measured: 5e-7 on the loss, 1e-6 on the
    # weights after 50 steps); bf16: by bf16 rounding of the matmuls (measured 5e-3 / 7e-3), which the fp32 norms
    # keep from compounding over the normalisations of every forward
    loss_tol, param_tol = (1e-4, 1e-4) if dtype == torch.float32 else (2e-2, 5e-2)
    torch.testing.assert_close(compiled, eager, rtol=0, atol=loss_tol)
    for (name, p), q in zip(m_eager.named_parameters(), m_comp.parameters()):
        torch.testing.assert_close(q, p, rtol=0, atol=param_tol, msg=lambda m, name=name: f"{arch} {name}: {m}")


def test_chained_bf16_l2norms_stay_exact_under_compile():
    # 48 chained normalise-and-mix steps in bf16 (PR #1108 failed at ~86; 48 keeps compilation short): with
    # the fp32 reduction inside l2norm, compiled and eager agree and every output row stays unit-norm.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 256, generator=g).to(torch.bfloat16)
    w = torch.randn(256, 256, generator=g).to(torch.bfloat16) / 16

    def chain(h):
        for _ in range(48):
            h = l2norm(h + l2norm(h @ w) * 0.1)
        return h

    torch._dynamo.reset()
    eager, compiled = chain(x), torch.compile(chain)(x)
    norms = compiled.float().norm(dim=-1)
    # measured (torch 2.13, CPU): row norms within 1.9e-4 of 1; entries (rms 0.0625) differ by at most 4.9e-3
    # (two bf16 steps at 0.2), 5.8e-4 on average: bounds at about twice and three times that
    torch.testing.assert_close(norms, torch.ones_like(norms), atol=5e-4, rtol=0)
    diff = (compiled.float() - eager.float()).abs()
    assert diff.max() <= 1e-2 and diff.mean() <= 2e-3, (diff.max().item(), diff.mean().item())
