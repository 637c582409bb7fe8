"""Pieces every architecture shares: l2norm, RMSNorm, rotary embeddings, attention, and the `Scale` vector
with the nGPT/anGPT init/scale reparameterisation.

Numerics (anchors.md A5): nGPT and anGPT chain several exact L2 normalisations per block; in bf16 (and under
torch.compile, which may reorder the reduction) the rounding error of each one compounds over depth. `l2norm` and
`rms_norm` therefore always compute in fp32 and cast the result back to the input dtype.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NORM_EPS = 1e-6  # guards the division by a norm; far below any norm a unit-scale activation can have


def l2norm(x: torch.Tensor, dim: int = -1, eps: float = NORM_EPS) -> torch.Tensor:
    """x / ||x||_2 along `dim`, computed in fp32, returned in x's dtype."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).sum(dim, keepdim=True).clamp_min(eps * eps))).to(x.dtype)


def rms_norm(x: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """x / rms(x) over the last dim (no gain), computed in fp32, returned in x's dtype."""
    xf = x.float()
    return (xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)


def linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x W^T. A packed model (ant.models.packed) stores K runs' matrices as one [K, out, in] tensor and its
    activations as [K, ...]: then one batched matmul over the K runs."""
    if weight.ndim == 2:
        return F.linear(x, weight)
    return torch.bmm(x.flatten(1, -2), weight.mT).unflatten(1, x.shape[1:-1])


class Linear(nn.Linear):
    """nn.Linear (same parameters and state dict) whose weight may carry a leading run dimension (see `linear`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return linear(x, self.weight)


class Embedding(nn.Embedding):
    """nn.Embedding whose table may carry a leading run dimension: [K, V, d] looked up with ids [K, B, T]."""

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        w = self.weight
        if w.ndim == 2:
            return super().forward(idx)
        K, V, d = w.shape  # run k's ids index rows k*V .. k*V + V - 1 of the flattened tables: one lookup
        offset = torch.arange(K, device=idx.device).view(K, *[1] * (idx.ndim - 1)) * V
        return F.embedding(idx + offset, w.reshape(K * V, d))


class RMSNorm(nn.Module):
    """Pre-norm of GPT/GPT+: rms(h) * gamma, gamma learnable and initialised to one."""

    def __init__(self, dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return rms_norm(x) * self.weight


class Scale(nn.Module):
    """A learnable vector s with the init/scale reparameterisation of nGPT Sec. 2.5 / anGPT Sec. 4.3.

    The stored surrogate starts at `scale`; the forward value is surrogate * (init / scale), so s starts at `init`
    and Adam, whose step size is roughly the learning rate whatever the gradient's magnitude, moves s by about
    lr * init / scale per step: a small `scale` gives the vector a large effective learning rate.
    """

    def __init__(self, dim: int, init: float, scale: float):
        super().__init__()
        self.init, self.scale = float(init), float(scale)
        self.weight = nn.Parameter(torch.full((dim,), self.scale))

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.fill_(self.scale)

    def forward(self) -> torch.Tensor:
        return self.weight * (self.init / self.scale)

    def extra_repr(self) -> str:
        return f"{self.weight.numel()}, init={self.init:g}, scale={self.scale:g}"


class Rotary(nn.Module):
    """Rotary position embedding on the first `fraction` of each head's dims (GPT-NeoX style, rotate-half).

    The cos/sin tables are computed on first use per (seq_len, device) and kept in a plain dict, not in buffers:
    no state-dict entries, and a model built on the meta device and materialised later needs no re-initialisation
    (the tables of the meta device are never used on another). Why cached, not recomputed in every forward: under
    torch.compile on CPU, Inductor fused the in-graph angle computation (pow, outer, cos, sin) into the q/k-norm
    backward kernels and recomputed it per element there; at head dim 8 (d40L3, d56L3) the compiled step was 1.7x
    slower than eager (two such kernels took 60 % of the step). Cached tables reach the graph as inputs: compiled
    steps at those sizes became 1.7-1.8x faster than eager (docs/study.md, "Compiled steps"). Same values either way.
    """

    def __init__(self, head_dim: int, fraction: float = 0.5, base: float = 10000.0):
        super().__init__()
        self.rot_dim = int(head_dim * fraction)
        self.base = base
        self._tables: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}

    def forward(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        key = (seq_len, str(device))
        if key not in self._tables:
            self._tables[key] = self.tables(seq_len, device)
        return self._tables[key]

    @torch.no_grad()
    def tables(self, seq_len: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        half = self.rot_dim // 2
        inv_freq = self.base ** (-torch.arange(half, device=device, dtype=torch.float32) / half)
        angles = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), inv_freq)
        return angles.cos(), angles.sin()  # [T, rot_dim/2] each


def apply_rotary(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate the first rot_dim dims of x [B, H, T, head_dim]; the rest pass through. Norm-preserving."""
    cos, sin = rope
    half = cos.shape[-1]
    x1, x2, rest = x[..., :half], x[..., half : 2 * half], x[..., 2 * half :]
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin, rest), dim=-1)


def split_heads(qkv: torch.Tensor, n_heads: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[B, T, 3d] -> q, k, v each [B, H, T, head_dim] (a packed model's [K, B, T, 3d] -> [K, B, H, T, head_dim])."""
    *lead, T, three_d = qkv.shape
    hd = three_d // (3 * n_heads)
    n = len(lead)  # the view is [*lead, T, 3, H, hd]: q/k/v first, then the lead dims, H, T, hd
    order = (n + 1, *range(n), n + 2, n, n + 3)
    q, k, v = qkv.view(*lead, T, 3, n_heads, hd).permute(order).unbind(0)
    return q, k, v


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """Causal softmax(q k^T * scale) v with [B, H, T, hd] inputs; returns the heads concatenated, [B, T, d].
    A packed model's [K, B, H, T, hd] runs as K * B sequences (CPU flash attention takes 4-D inputs)."""
    *lead, H, T, hd = q.shape
    q, k, v = (t.flatten(0, -4) for t in (q, k, v))  # a no-op view for 4-D inputs
    y = F.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)
    return y.transpose(1, 2).reshape(*lead, T, H * hd)


def swiglu(uz: torch.Tensor, gate_scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """u * SiLU(z * gate_scale) with u, z the two halves of the fused up-projection (u first, gate z second)."""
    u, z = uz.chunk(2, dim=-1)
    return u * F.silu(z * gate_scale)


def lerp_factor(alpha: torch.Tensor) -> torch.Tensor:
    """anGPT's nu(alpha) = 1 / sqrt(alpha^2 + (1 - alpha)^2), per dimension (App. E).

    For h and x unit-norm and orthogonal, ||h + alpha (x - h)||^2 = (1 - alpha)^2 + alpha^2."""
    return torch.rsqrt(alpha * alpha + (1 - alpha) * (1 - alpha))


def normal_unit_rows_(w: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """Fill w with N(0, 1) entries and scale every slice along `dim` to unit L2 norm (uniform on the sphere)."""
    with torch.no_grad():
        w.normal_()
        w.div_(w.norm(dim=dim, keepdim=True).clamp_min(NORM_EPS))
    return w


def sqrt_ratio(num: float, den: float) -> float:
    return math.sqrt(num / den)
