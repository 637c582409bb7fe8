"""nGPT, the normalized transformer (Loshchilov et al., ICLR 2025; paper-notes §2, Table 1 "nGPT" column).

Every vector lives on the unit sphere; no RMSNorm/LayerNorm anywhere:
    q, k, v = W_qkv h ; RoPE ; q <- norm(q) * s_qk ; k <- norm(k) * s_qk        (s_qk per head dim, on both)
    h_a = norm(W_p softmax(q k^T * sqrt(d_k)) v)
    h   = norm(h + alpha_A (h_a - h))                                          (LERP, "eigen learning rate")
    u, z = W_uz h ; u <- u * s_u ; z <- z * s_nu * sqrt(d)
    h_m = norm(W_d (u * SiLU(z))) ; h = norm(h + alpha_M (h_m - h))
    logits = s_z * (W_h h)                                                     (no final norm)
All matrices are renormalised along the embedding dimension after every optimizer step (constraints.py:
wte, lm_head, qkv, fc along dim 1; proj and down along dim 0), and initialised that way.

Scale vectors use the init/scale reparameterisation (layers.Scale), values from the paper's recipe (§2.6):
alpha_A, alpha_M in R^d: init 0.05, scale 1/sqrt(d); s_qk in R^d (viewed per head): init 1, scale 1/sqrt(d);
s_uv = (s_u, s_nu) in R^{2f}: init 1, scale 1; s_z in R^V: init 1, scale 1/sqrt(d). alpha is used as |alpha| in the
forward (App. A.2; `abs_alpha`). Per layer that is 2d + d + 8d = 11 d scale parameters, plus V for s_z: Table F.1.

The NVIDIA code multiplies u as well as z by sqrt(d); the paper scales only z. Because h_m is renormalised right
after W_d (a linear map), a constant on u cancels exactly: the two are the same model.

Ablation switches (paper Fig. 5):
- `lerp_correction`: h <- (h + alpha (x - h)) * nu(alpha) with anGPT's nu(alpha) = 1/sqrt(alpha^2 + (1-alpha)^2)
  instead of the exact norm after the LERP ("nGPT with LERP correction").
- `bound_weights`: rows bounded ||w|| <= 1 after every step instead of renormalised to 1 (same dimensions).
"""

from __future__ import annotations

import math

import torch

from ant.models.args import NGPTConfig
from ant.models.base import Block, ScaledLogitsTransformer
from ant.models.constraints import NGPT_DIMS, Constraint, init_unit_norm_, matrix_constraints
from ant.models.layers import Scale, apply_rotary, attend, l2norm, lerp_factor, split_heads, swiglu


class NGPTBlock(Block):
    def __init__(self, cfg: NGPTConfig):
        super().__init__(cfg)
        d, hd = cfg.d_model, cfg.head_dim
        self.cfg = cfg
        self.alpha_a = Scale(d, cfg.alpha_init, cfg.alpha_scale)
        self.alpha_m = Scale(d, cfg.alpha_init, cfg.alpha_scale)
        self.sqk = Scale(d, cfg.sqk_init, cfg.sqk_scale)
        self.suv = Scale(2 * cfg.d_mlp, cfg.suv_init, cfg.suv_scale)
        self.softmax_scale = math.sqrt(hd)
        self.gate_scale = math.sqrt(d)

    def alphas(self) -> dict[str, torch.Tensor]:
        a, m = self.alpha_a(), self.alpha_m()
        return {"alpha_a": a.abs(), "alpha_m": m.abs()} if self.cfg.abs_alpha else {"alpha_a": a, "alpha_m": m}

    def lerp(self, h: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        out = h + alpha * (x - h)
        return out * lerp_factor(alpha) if self.cfg.lerp_correction else l2norm(out)

    def forward(self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        alpha = self.alphas()
        q, k, v = split_heads(self.qkv(h), self.n_heads)
        q, k = apply_rotary(q, rope), apply_rotary(k, rope)
        sqk = self.sqk().unflatten(-1, (self.n_heads, 1, -1)).to(q.dtype)  # [H, 1, hd]: over B and T
        q, k = l2norm(q) * sqk, l2norm(k) * sqk
        h_a = l2norm(self.proj(attend(q, k, v, self.softmax_scale)))
        h = self.lerp(h, h_a, alpha["alpha_a"])
        uz = self.fc(h)
        uz = uz * self.suv().to(uz.dtype)
        h_m = l2norm(self.down(swiglu(uz, gate_scale=self.gate_scale)))
        return self.lerp(h, h_m, alpha["alpha_m"])


class NGPT(ScaledLogitsTransformer):
    config_cls = NGPTConfig

    def make_block(self, layer: int) -> Block:
        return NGPTBlock(self.cfg)

    def constraints(self) -> list[Constraint]:
        return matrix_constraints(self, NGPT_DIMS, "clip" if self.cfg.bound_weights else "renorm")

    @torch.no_grad()
    def init_weights(self) -> None:
        init_unit_norm_(self.constraints())
        self.reset_scales(self)
