"""Table 1 of the anGPT paper as executable specification: literal, unoptimised forwards of its GPT/GPT+, nGPT and
anGPT columns (paper-notes §1.3, §2.1, §3) for one sequence, written independently of the models (own attention,
own RoPE, every constant where the table puts it, nothing folded). It imports nothing from ant.models; it only
reads a model's weights by attribute name. tests/models/ hold each optimised model equal to its forward here
(same logits from the same weights, every vector and scalar moved off its init), so a change to a model that
changes what it computes fails there. Slow by design: for reading and testing, not for training.

    FORWARDS[arch](model, idx)   # idx [T] token ids -> logits [T, V]
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def norm(x):
    return x / x.norm(dim=-1, keepdim=True)


def rms(x, eps=1e-6):  # RMSNorm's usual eps inside the root (gpt's embedding entries are ~0.02: it shows)
    return x / (x.pow(2).mean(-1, keepdim=True) + eps).sqrt()


def rope(x, fraction=0.5, base=10000.0):
    """x [T, H, hd]: rotate dim pairs (i, i + r/2) of the first r = fraction*hd dims by angle t * base^(-2i/r)."""
    T, H, hd = x.shape
    r = int(hd * fraction)
    i = torch.arange(r // 2, dtype=torch.float64)
    theta = torch.arange(T, dtype=torch.float64)[:, None] * base ** (-2 * i / r)  # [T, r/2]
    z = (
        torch.complex(x[..., : r // 2].double(), x[..., r // 2 : r].double())
        * torch.polar(torch.ones_like(theta), theta)[:, None, :]
    )
    return torch.cat([z.real.float(), z.imag.float(), x[..., r:]], dim=-1)


def attention(q, k, v, scale):
    """q, k, v [T, H, hd] -> [T, H*hd], explicit causal softmax."""
    T = q.shape[0]
    s = torch.einsum("thd,shd->hts", q, k) * scale
    s = s.masked_fill(torch.triu(torch.ones(T, T, dtype=torch.bool), 1), float("-inf"))
    return torch.einsum("hts,shd->thd", s.softmax(-1), v).reshape(T, -1)


def heads(x, H):
    T, D = x.shape
    return x.view(T, H, D // H)


def gpt_forward(m, idx):
    """GPT / GPT+ column, one sequence idx [T]."""
    c = m.cfg
    h = m.wte.weight[idx]
    for b in m.blocks:
        ha = rms(h) * b.norm_a.weight
        q, k, v = (heads(ha @ W.T, c.n_heads) for W in b.qkv.weight.chunk(3))
        q, k = rope(q), rope(k)
        if c.qk_norm:
            a = attention(norm(q), norm(k), v, b.g)
        else:
            a = attention(q, k, v, 1 / math.sqrt(c.head_dim))
        h = h + a @ b.proj.weight.T
        hm = rms(h) * b.norm_m.weight
        u, z = (hm @ b.fc.weight.T).chunk(2, -1)
        h = h + (u * F.silu(z)) @ b.down.weight.T
    return (rms(h) * m.norm_h.weight) @ m.lm_head.weight.T


def ngpt_forward(m, idx):
    c = m.cfg
    d = c.d_model
    h = m.wte.weight[idx]
    for b in m.blocks:
        s_qk = heads(b.sqk.weight[None] * (c.sqk_init / c.sqk_scale), c.n_heads)[0]
        aA = (b.alpha_a.weight * (c.alpha_init / c.alpha_scale)).abs()
        aM = (b.alpha_m.weight * (c.alpha_init / c.alpha_scale)).abs()
        q, k, v = (heads(h @ W.T, c.n_heads) for W in b.qkv.weight.chunk(3))
        q, k = rope(q), rope(k)
        q, k = norm(q) * s_qk, norm(k) * s_qk
        ha = norm(attention(q, k, v, math.sqrt(c.head_dim)) @ b.proj.weight.T)
        h = norm(h + aA * (ha - h))
        s_u, s_nu = (b.suv.weight * (c.suv_init / c.suv_scale)).chunk(2)
        u, z = (h @ b.fc.weight.T).chunk(2, -1)
        u, z = u * s_u, z * s_nu * math.sqrt(d)
        hm = norm((u * F.silu(z)) @ b.down.weight.T)
        h = norm(h + aM * (hm - h))
    return (m.sz.weight * (c.sz_init / c.sz_scale)) * (h @ m.lm_head.weight.T)


def angpt_forward(m, idx):
    """anGPT column with the default readings of the paper's open points (ant/models/angpt.py's docstring):
    nu_p = sqrt(d_h / d) (Sec. 4.3), nu_acf = 3.74, one g per layer, alpha used as is (no abs)."""
    c = m.cfg
    d, dh, f = c.d_model, c.head_dim, c.d_mlp
    nu_qkv, nu_p, nu_uz, nu_acf, nu_d = math.sqrt(d / dh), math.sqrt(dh / d), math.sqrt(d / f), 3.74, math.sqrt(f / d)
    h = m.wte.weight[idx]  # h <- W_e x_in
    for b in m.blocks:
        aA = b.alpha_a.weight * (c.alpha_init / c.alpha_scale)  # alpha = surrogate * init / scale (Sec. 4.3)
        aM = b.alpha_m.weight * (c.alpha_init / c.alpha_scale)
        q, k, v = (heads(h @ W.T * nu_qkv, c.n_heads) for W in b.qkv.weight.chunk(3))  # q,k,v <- W_qkv h nu_qkv
        q, k = norm(rope(q)), norm(rope(k))  # k <- norm(k) ; q <- norm(q)  (after RoPE)
        ha = norm(attention(q, k, v, b.g) @ b.proj.weight.T * nu_p)  # A <- softmax(q k^T g) ; norm(W_p(A v) nu_p)
        h = (h + aA * (ha - h)) / (aA**2 + (1 - aA) ** 2).sqrt()  # h <- (h + a_A (h_a - h)) nu(a_A)
        u, z = (h @ b.fc.weight.T * nu_uz).chunk(2, -1)  # u, z <- W_uz h nu_uz
        hm = norm((u * F.silu(z) * nu_acf) @ b.down.weight.T * nu_d)  # h_m <- norm(W_d (u SiLU(z) nu_acf) nu_d)
        h = (h + aM * (hm - h)) / (aM**2 + (1 - aM) ** 2).sqrt()  # h <- (h + a_M (h_m - h)) nu(a_M)
    return (m.sz.weight * (c.sz_init / c.sz_scale)) * (h @ m.lm_head.weight.T)  # logits <- s_z (W_h h)


FORWARDS = {"gpt": gpt_forward, "gptplus": gpt_forward, "ngpt": ngpt_forward, "angpt": angpt_forward}
