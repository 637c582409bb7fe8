"""anGPT, the approximately normalized transformer (Franke et al. 2025; paper-notes §1 and §8, Table 1 "anGPT").

No normalisation layers except 4 exact L2 norms per block (q, k, h_a, h_m); every other norm is replaced by a
constant factor nu ~ 1/E||x|| derived from concentration of measure, and the residual stream is kept near unit norm
by a LERP followed by nu(alpha) instead of an exact norm:
    q, k, v = W_qkv h * nu_qkv ; RoPE ; q <- norm(q) ; k <- norm(k)              nu_qkv = sqrt(d / d_h)
    h_a = norm(W_p softmax(q k^T * g) v * nu_p)                                 g: learnable logit scale
    h   = (h + alpha_A (h_a - h)) * nu(alpha_A)                                 nu(a) = 1/sqrt(a^2 + (1-a)^2)
    u, z = W_uz h * nu_uz ; h_m = norm(W_d (u * SiLU(z) * nu_acf) * nu_d)       nu_uz = sqrt(d/f), nu_d = sqrt(f/d)
    h   = (h + alpha_M (h_m - h)) * nu(alpha_M)
    logits = s_z * (W_h h)                                                      no final norm
nu(alpha) is per dimension (alpha_A, alpha_M are d-vectors) and recomputed from alpha in every forward. Matrices are
initialised with unit-norm rows along their input dimension and bounded ||row|| <= 1 after every optimizer step
(constraints.py; a clip, not a renormalisation). Parameters: L * 16 d^2 + 2 V d + L * (2d + 1) + V (Table F.1).

Cheap constants. Only two of the constants act on the output in exact arithmetic: nu(alpha) on the residual stream
and nu_uz on the gate z (it sets SiLU's input scale). q, k, h_a and h_m are exactly normalised right after their
factors, and norm(c x) = norm(x), so nu_qkv (on q, k, v), nu_p, nu_uz (on u), nu_acf and nu_d only keep the
pre-norm activations near unit scale (what bf16 and the norm's eps see). We therefore skip nu_qkv on q and k (the
norm follows immediately) and fold the rest into two scalar multiplies per block: nu_qkv * nu_p on the attention
output (`ANGPTBlock.nu_qkv_p`) and nu_uz * nu_acf * nu_d on the SwiGLU product (`nu_uz_acf_d`); the gate's own
nu_uz is `nu_uz_gate`. The residual update is folded into one fused
h * ((1 - a) nu) + x * (a nu) with the two d-vectors computed once per forward. All constants are Python floats, so
torch.compile inlines them.

Open questions and the readings implemented (paper-notes §1.2-1.5, §8); each alternative is a config field:
- nu_p: Sec. 4.3 gives sqrt(d_h/d) ("d_h as input dimension": n_h unit-norm heads concatenated have norm
  sqrt(n_h)), App. E gives 1 (W_p seen as a d x d map of a unit vector). Default `nu_p=None` -> sqrt(d_h/d), the
  reading consistent with nu_qkv making each head unit-norm; `nu_p=1.0` is App. E's.
- g (logit scale): shape and init not in the paper. One scalar per layer (Table 1 writes a scalar), initialised to
  sqrt(d_k) (`qk_scale_init`), as for gptplus (see gpt.py) and equal to nGPT's effective scale at init.
- alpha storage scale: Sec. 5 says s_a = 0.01 for anGPT, Table F.2 prints 0.001. Both are read as the Scale's
  `scale` (alpha itself starts at 0.05, Sec. 5.6). Default `alpha_scale=0.01` (the main text); 0.001 is Table F.2's.
- s_z: init not in the paper. Same reparameterisation as alpha (Sec. 4.3 lists s_z among the scaled vectors):
  `sz_init=1.0`, `sz_scale=0.01`.
- nu_acf = 3.74 (App. E, Monte Carlo). paper-notes §1.2 finds 3.74 ~ 1/sqrt(E[SiLU(z)^2]) for z ~ N(0, 0.25), i.e.
  gate entries of std 0.5, which our z (norm ~1 over f = 4d entries) does not have; the value cancels in the exact
  norm that follows, so we keep the paper's number (`nu_acf`).
- SiLU's input scale: the gate z = W_uz h * nu_uz has entries of std ~ 1/sqrt(f) = 0.5/sqrt(d) (unit-norm rows and h),
  where SiLU is nearly linear, while nu_acf = 3.74 assumes std ~ 0.5. nGPT scales its gate by sqrt(d) (s_v sqrt(d)).
  Default: the paper's nu_uz alone; `gate_sqrt_d=True` multiplies the gate by sqrt(d) as nGPT does.
- g per layer or per head: Table 1 writes one scalar; `qk_scale_per_head=True` learns one g per head (same init, so
  the same function at init; L (n_heads - 1) more parameters).
- |alpha|: nGPT uses abs(alpha); the anGPT paper does not say. nu(alpha) is defined for any alpha, so the default is
  the plain value (`abs_alpha=False`).
- Embedding bound: see constraints.py (each token vector bounded; `bound_embeddings`).

Ablation switches (Table L.1):
- `residual_factor=False`: no nu(alpha) (plain LERP);  `residual_factor_mult`: nu(alpha) x m.
- `const_factors=False`: nu_qkv = nu_p = nu_uz = nu_acf = nu_d = 1;  `const_factor_mult`: each of them x m.
  ("all norm factors x0.5" = const_factor_mult=0.5 and residual_factor_mult=0.5; "no norm factors" = both False.)
- `lerp=False` ("no LERP"): classic residual h <- (h + x) * nu_add with nu_add = 1/sqrt(2), the factor of §4.2's
  derivation (E||h + x||^2 = 2 for unit, orthogonal h and x); residual_factor=False makes it a plain h + x. The
  alpha vectors are not created then (an unused parameter would only confuse the optimizer and DDP).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ant.models.args import ANGPTConfig
from ant.models.base import Block, ScaledLogitsTransformer
from ant.models.constraints import ANGPT_DIMS, Constraint, init_unit_norm_, matrix_constraints
from ant.models.layers import Scale, apply_rotary, attend, l2norm, lerp_factor, split_heads, swiglu


class ANGPTBlock(Block):
    """One anGPT block, Table 1's anGPT column line by line (each line's comment is the equation it computes;
    ant/models/reference.py is the same column written out literally, nothing folded, and the tests hold the two
    equal). The constant factors are folded as the module docstring's "Cheap constants" says; the attributes name
    the nu's they hold."""

    def __init__(self, cfg: ANGPTConfig):
        super().__init__(cfg)
        self.cfg = cfg
        if cfg.lerp:  # alpha_A, alpha_M: the LERP's learnable d-vectors (Scale: surrogate * init / scale)
            self.alpha_a = Scale(cfg.d_model, cfg.alpha_init, cfg.alpha_scale)
            self.alpha_m = Scale(cfg.d_model, cfg.alpha_init, cfg.alpha_scale)
        # g, the learnable logit scale of softmax(q k^T g). [H, 1, 1] broadcasts over q's [B, H, T, d_h]; a 0-d
        # tensor is Table 1's one scalar per layer
        shape = (cfg.n_heads, 1, 1) if cfg.qk_scale_per_head else ()
        self.g = nn.Parameter(torch.full(shape, float(cfg.qk_scale_init)))
        nu = cfg.constants()
        # nu_qkv on v and nu_p after W_p act linearly on the attention output: one multiply (nu_qkv on q and k is
        # dropped, their exact norm follows at once)
        self.nu_qkv_p = nu["qkv"] * nu["p"]
        # nu_uz on the gate z: the one MLP constant that acts in exact arithmetic (it sets SiLU's input scale);
        # x sqrt(d) with gate_sqrt_d, as nGPT's s_z sqrt(d)
        self.nu_uz_gate = nu["uz"] * (math.sqrt(cfg.d_model) if cfg.gate_sqrt_d else 1.0)
        # nu_uz on u, nu_acf and nu_d: linear on the SwiGLU product up to h_m's exact norm, one multiply
        self.nu_uz_acf_d = nu["uz"] * nu["acf"] * nu["d"]
        # lerp=False only ("no LERP" ablation): h <- (h + x) nu_add, nu_add = 1/sqrt(2) (§4.2: E||h + x||^2 = 2)
        self.nu_add = (1 / math.sqrt(2) if cfg.residual_factor else 1.0) * cfg.residual_factor_mult

    def alphas(self) -> dict[str, torch.Tensor]:
        if not self.cfg.lerp:
            return {}
        a, m = self.alpha_a(), self.alpha_m()
        return {"alpha_a": a.abs(), "alpha_m": m.abs()} if self.cfg.abs_alpha else {"alpha_a": a, "alpha_m": m}

    def residual_coeffs(self, alpha: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1 - alpha) nu(alpha) and alpha nu(alpha): the LERP and its factor as two d-vectors, so that
        (h + alpha (x - h)) nu(alpha) = h (1 - alpha) nu(alpha) + x alpha nu(alpha) is one fused pass."""
        nu = lerp_factor(alpha) * self.cfg.residual_factor_mult if self.cfg.residual_factor else 1.0
        return (1 - alpha) * nu, alpha * nu

    def residual(self, h: torch.Tensor, x: torch.Tensor, alpha: torch.Tensor | None) -> torch.Tensor:
        """h <- (h + alpha (x - h)) nu(alpha), or (h + x) nu_add without the LERP."""
        if alpha is None:  # lerp=False
            return (h + x) * self.nu_add
        keep, take = self.residual_coeffs(alpha)
        return h * keep + x * take

    def forward(self, h: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        alpha = self.alphas()
        # ---- MHA
        q, k, v = split_heads(self.qkv(h), self.n_heads)  # q, k, v <- W_qkv h (nu_qkv: folded below)
        q, k = apply_rotary(q, rope), apply_rotary(k, rope)  # RoPE (Table F.2), a rotation: norms unchanged
        q, k = l2norm(q) * self.g.to(q.dtype), l2norm(k)  # q <- norm(q), k <- norm(k); g applied to q
        y = attend(q, k, v, 1.0)  # softmax(q k^T g) v, heads concatenated
        h_a = l2norm(self.proj(y * self.nu_qkv_p))  # h_a <- norm(W_p (A v) nu_p), v's nu_qkv folded in
        h = self.residual(h, h_a, alpha.get("alpha_a"))  # h <- (h + alpha_A (h_a - h)) nu(alpha_A)
        # ---- MLP
        uz = self.fc(h)  # u, z <- W_uz h (nu_uz: on z in the next line, on u folded)
        y = swiglu(uz, self.nu_uz_gate)  # u SiLU(z nu_uz)
        h_m = l2norm(self.down(y * self.nu_uz_acf_d))  # h_m <- norm(W_d (u nu_uz SiLU(z nu_uz) nu_acf) nu_d)
        return self.residual(h, h_m, alpha.get("alpha_m"))  # h <- (h + alpha_M (h_m - h)) nu(alpha_M)


class ANGPT(ScaledLogitsTransformer):
    """Table 1's anGPT column around the blocks: h <- W_e x_in (Transformer.forward, no factor), then the blocks,
    then logits <- s_z (W_h h) with no final norm (ScaledLogitsTransformer.head)."""

    config_cls = ANGPTConfig

    def make_block(self, layer: int) -> Block:
        return ANGPTBlock(self.cfg)

    def constraints(self) -> list[Constraint]:
        skip = () if self.cfg.bound_embeddings else ("wte",)
        return matrix_constraints(self, ANGPT_DIMS, "clip", skip=skip)

    @torch.no_grad()
    def init_weights(self) -> None:
        # unit-norm rows along the input dim for every matrix, the embedding's token vectors included
        init_unit_norm_(matrix_constraints(self, ANGPT_DIMS, "renorm"))
        self.reset_scales(self)
        for b in self.blocks:
            b.g.fill_(self.cfg.qk_scale_init)
