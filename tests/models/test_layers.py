"""Shared layers: fp32 l2norm, RoPE, the Scale reparameterisation, nu(alpha)."""

from __future__ import annotations

import math

import torch

from ant.models.layers import Rotary, Scale, apply_rotary, l2norm, lerp_factor, rms_norm


def test_l2norm_computes_in_fp32_and_keeps_dtype():
    torch.manual_seed(0)
    x = (torch.randn(4, 7, 512) * 30).to(torch.bfloat16)
    y = l2norm(x)
    assert y.dtype == torch.bfloat16
    ref = (x.float() / x.float().norm(dim=-1, keepdim=True)).to(torch.bfloat16)
    assert torch.equal(y, ref)  # one rounding, at the end
    assert (y.float().norm(dim=-1) - 1).abs().max() < 1e-2
    z = l2norm(torch.zeros(3, 8))  # eps-guarded: no NaN for a zero vector
    assert torch.isfinite(z).all() and (z == 0).all()


def test_rms_norm_unit_rms():
    x = torch.randn(5, 64) * 7
    assert torch.allclose(rms_norm(x).pow(2).mean(-1), torch.ones(5), atol=1e-4)


def test_rope_rotates_half_preserves_norm_and_is_relative():
    hd, T = 16, 40
    rope = Rotary(hd, fraction=0.5)(T, torch.device("cpu"))
    assert rope[0].shape == (T, 4)
    torch.manual_seed(0)
    q = torch.randn(1, 1, 1, hd).expand(1, 1, T, hd)  # the same vector at every position
    k = torch.randn(1, 1, 1, hd).expand(1, 1, T, hd)
    rq, rk = apply_rotary(q, rope), apply_rotary(k, rope)
    torch.testing.assert_close(rq.norm(dim=-1), q.norm(dim=-1))
    torch.testing.assert_close(rq[..., 8:], q[..., 8:])  # the second half of the dims is not rotated
    assert not torch.allclose(rq[..., :8], q[..., :8])
    # q_m . k_n depends only on m - n
    dots = rq[0, 0] @ rk[0, 0].T
    for off in (0, 3, 11):
        diag = torch.diagonal(dots, offset=-off)
        assert torch.allclose(diag, diag[0].expand_as(diag), atol=1e-5)


def test_rope_tables_are_cached_per_length_and_device_outside_the_state_dict():
    """Rotary computes its tables once per (length, device) and hands the same tensors back: under torch.compile
    they are graph inputs, not an angle computation Inductor fuses into backward kernels (docs/study.md)."""
    rope = Rotary(16, fraction=0.5)
    cpu = torch.device("cpu")
    a, b, c = rope(40, cpu), rope(40, cpu), rope(24, cpu)
    assert a[0] is b[0] and a[1] is b[1] and c[0].shape == (24, 4)
    torch.testing.assert_close(c[0], a[0][:24], rtol=0, atol=0)  # a prefix: the angles depend on position alone
    inv_freq = 10000.0 ** (-torch.arange(4, dtype=torch.float32) / 4)
    angles = torch.arange(40, dtype=torch.float32)[:, None] * inv_freq
    torch.testing.assert_close(a[0], angles.cos(), rtol=0, atol=0)
    torch.testing.assert_close(a[1], angles.sin(), rtol=0, atol=0)
    assert not a[0].requires_grad and rope.state_dict() == {}
    meta = rope(40, torch.device("meta"))  # a model built on meta and materialised later never sees these
    assert meta[0].is_meta and rope(40, cpu)[0] is a[0]


def test_scale_reparameterisation():
    s = Scale(8, init=0.05, scale=0.01)
    assert torch.allclose(s.weight, torch.full((8,), 0.01))  # stored surrogate starts at `scale`
    assert torch.allclose(s(), torch.full((8,), 0.05))  # forward value starts at `init`
    with torch.no_grad():
        s.weight.add_(0.001)  # one "Adam-sized" step on the surrogate ...
    assert torch.allclose(s(), torch.full((8,), 0.05 + 0.001 * 5))  # ... moves s by lr * init / scale


def test_lerp_factor():
    a = torch.tensor([0.0, 0.05, 0.5, 1.0])
    want = torch.tensor([1.0, 1 / math.sqrt(0.05**2 + 0.95**2), math.sqrt(2), 1.0])
    torch.testing.assert_close(lerp_factor(a), want)
    # it keeps the LERP of two orthogonal unit vectors at unit norm, per dimension
    torch.manual_seed(0)
    h, x = l2norm(torch.randn(2, 4096)).unbind(0)
    for alpha in (0.05, 0.3, 0.7):
        out = (h + alpha * (x - h)) * lerp_factor(torch.tensor(alpha))
        assert abs(out.norm().item() - 1) < 0.03
