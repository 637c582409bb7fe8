"""build_model: validation, determinism, causality, bf16 autocast, eager vs torch.compile."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ant.errors import ConfigError
from ant.models import ARCHS, build_model, option_names
from tests.conftest import COMPILE_SHAPE

from .conftest import VOCAB


def test_unknown_option_names_field_and_allowed():
    with pytest.raises(ConfigError) as e:
        build_model("angpt", "tiny1", vocab_size=VOCAB, lerp_corection=True)
    assert e.value.field == "model.options.lerp_corection"
    assert "unknown option" in str(e.value) and "lerp" in list(e.value.allowed)
    # an ngpt switch is not an angpt option, and gpt's qk_norm is fixed by the arch name
    with pytest.raises(ConfigError, match="model.options.lerp_correction"):
        build_model("angpt", "tiny1", vocab_size=VOCAB, lerp_correction=True)
    with pytest.raises(ConfigError, match="model.options.qk_norm"):
        build_model("gpt", "tiny1", vocab_size=VOCAB, qk_norm=True)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        ({"n_heads": 5}, "model.options.n_heads"),
        ({"d_model": 50}, "model.options.d_model"),
        ({"n_layers": 0}, "model.options.n_layers"),
        ({"n_layers": 2.5}, "model.options.n_layers"),
        ({"lerp": "no"}, "model.options.lerp"),
        ({"alpha_scale": 0.0}, "model.options.alpha_scale"),
        ({"const_factor_mult": -1.0}, "model.options.const_factor_mult"),
        ({"rope_fraction": 0.3}, "model.options.rope_fraction"),
    ],
)
def test_bad_values_raise_config_error(kwargs, field):
    with pytest.raises(ConfigError) as e:
        build_model("angpt", "tiny3", vocab_size=VOCAB, **kwargs)
    assert e.value.field == field
    print(e.value)


def test_bad_arch_size_vocab():
    with pytest.raises(ConfigError, match="model.arch"):
        build_model("bert", "tiny1")
    with pytest.raises(ConfigError, match="model.size"):
        build_model("gpt", "7B")
    with pytest.raises(ConfigError, match="model.vocab_size"):
        build_model("gpt", "tiny1", vocab_size=1)


def test_overrides_reach_the_config():
    m = build_model("ngpt", "tiny3", vocab_size=VOCAB, n_layers=2, d_model=32, n_heads=2, lerp_correction=True)
    assert (m.cfg.n_layers, m.cfg.d_model, m.cfg.n_heads, m.cfg.lerp_correction) == (2, 32, 2, True)
    assert len(m.blocks) == 2 and m.cfg.alpha_scale == pytest.approx(32**-0.5)  # None resolved
    assert "n_layers" in option_names("gpt") and "arch" not in option_names("gpt")


@pytest.mark.parametrize("arch", ARCHS)
def test_causal(arch, real_batch):
    torch.manual_seed(0)
    m = build_model(arch, "tiny2", vocab_size=VOCAB).eval()
    x = real_batch(2, 48)
    y = x.clone()
    y[:, 30:] = (y[:, 30:] + 7) % VOCAB  # change every token from position 30 on
    with torch.no_grad():
        a, b = m(x), m(y)
    assert a.dtype == torch.float32 and a.shape == (2, 48, VOCAB)
    torch.testing.assert_close(a[:, :30], b[:, :30], rtol=0, atol=1e-6)
    assert (a[:, 30:] - b[:, 30:]).abs().amax() > 1e-4


@pytest.mark.parametrize("arch", ARCHS)
def test_deterministic_under_seed(arch, real_batch):
    x = real_batch(2, 32)
    outs = []
    for seed in (3, 3, 4):
        torch.manual_seed(seed)
        m = build_model(arch, "tiny2", vocab_size=VOCAB)
        with torch.no_grad():
            outs.append(m(x))
    assert torch.equal(outs[0], outs[1])
    assert not torch.allclose(outs[0], outs[2])


@pytest.mark.parametrize("arch", ARCHS)
def test_bf16_autocast_trains(arch, real_batch):
    """The GPU recipe (bf16-mixed) on CPU autocast: fp32 logits, finite loss, every parameter gets a gradient."""
    torch.manual_seed(0)
    m = build_model(arch, "tiny2", vocab_size=VOCAB)
    x = real_batch(2, 33)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = m(x[:, :-1])
    assert logits.dtype == torch.float32
    loss = F.cross_entropy(logits.reshape(-1, VOCAB), x[:, 1:].reshape(-1))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    with torch.no_grad():
        ref = m(x[:, :-1])
    assert (logits - ref).abs().amax() < 0.05 * ref.abs().amax() + 1e-3  # bf16 stays close to fp32


@pytest.mark.slow
def test_compile_matches_eager(real_batch):
    """torch.compile (inductor, CPU) gives the eager logits and gradients of anGPT, the arch with the most
    elementwise work; one model only, compiling costs ~40 s on 2 cores."""
    torch.manual_seed(0)
    m = build_model("angpt", "tiny1", vocab_size=VOCAB)
    x = real_batch(COMPILE_SHAPE[0], COMPILE_SHAPE[1] + 1)  # compiled once for three tests (tests/conftest.py)
    eager = m(x[:, :-1])
    F.cross_entropy(eager.reshape(-1, VOCAB), x[:, 1:].reshape(-1)).backward()
    g_eager = [p.grad.clone() for p in m.parameters()]
    m.zero_grad()
    compiled = torch.compile(m)(x[:, :-1])
    F.cross_entropy(compiled.reshape(-1, VOCAB), x[:, 1:].reshape(-1)).backward()
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    for p, g in zip(m.parameters(), g_eager):
        torch.testing.assert_close(p.grad, g, rtol=1e-3, atol=1e-6)


@pytest.mark.parametrize("arch", ARCHS)
def test_one_graph_under_dynamo(arch):
    """Compile-friendliness: dynamo traces every architecture's forward as a single graph (no graph breaks), so
    inductor can fuse the norms, scales and the residual update."""
    torch._dynamo.reset()
    m = build_model(arch, "tiny1", vocab_size=VOCAB)
    explain = torch._dynamo.explain(m)(torch.zeros(1, 8, dtype=torch.long))
    assert explain.graph_break_count == 0 and explain.graph_count == 1
