"""The config dataclasses of the architectures, without torch: ModelArgs (the fields every architecture has) and
one subclass per architecture, named by its row in ant.archs (`config="ant.models.args:GPTConfig"`).

They live here, not beside their models, so that make_config (ant.models.options) and the closed-form parameter
counts (ant.models.counts) run without torch: `ant sweep --dry-run` counts every planned run and must not pay
torch's ~1 s import. What each field means is in the docstring of the architecture's model file (gpt.py, ngpt.py,
angpt.py), which builds the model from it; `vector_params()` is here because the counts need it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class ModelArgs:
    """Fields every architecture has. `arch`, `size` and `vocab_size` come from build_model's arguments; the rest
    can be overridden (model.options in a run config)."""

    arch: str = "gpt"
    size: str = "custom"
    vocab_size: int = 50304
    d_model: int = 256
    n_layers: int = 6
    n_heads: int = 4
    mlp_mult: int = 4  # u and z are each mlp_mult * d_model wide (the paper: 4, no 2/3 shrink)
    rope_fraction: float = 0.5  # share of each head's dims that RoPE rotates (Table F.2: 0.5)
    rope_base: float = 10000.0

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads

    @property
    def d_mlp(self) -> int:
        return self.mlp_mult * self.d_model

    def vector_params(self) -> tuple[int, int]:
        """(parameters of one block besides its four matrices, parameters of the head besides lm_head): the norm
        gains and scales this architecture adds, counted without building it (ant.models.counts). Each
        architecture's config says its own; tests/models/test_counts.py holds them to the built models."""
        raise NotImplementedError


# ---------------------------------------------------------------------- gpt, gptplus (gpt.py)
@dataclass
class GPTConfig(ModelArgs):
    """gpt and gptplus (gpt.py's docstring)."""

    qk_norm: bool = False  # set by the arch: gpt False, gptplus True
    init_std: float = 0.02
    qk_scale_init: float | None = None  # gptplus only: g at init; None -> sqrt(head_dim)

    def __post_init__(self) -> None:
        if self.qk_scale_init is None:
            self.qk_scale_init = math.sqrt(self.head_dim)

    def vector_params(self) -> tuple[int, int]:
        # per block: norm_a, norm_m gains (2d) + gptplus's logit scale g (1); head: the final norm_h gain (d)
        return 2 * self.d_model + (1 if self.qk_norm else 0), self.d_model


# ---------------------------------------------------------------------- ngpt (ngpt.py)
@dataclass
class NGPTConfig(ModelArgs):
    """nGPT (ngpt.py's docstring)."""

    alpha_init: float = 0.05
    alpha_scale: float | None = None  # None -> 1/sqrt(d_model)
    sqk_init: float = 1.0
    sqk_scale: float | None = None  # None -> 1/sqrt(d_model)
    suv_init: float = 1.0
    suv_scale: float = 1.0
    sz_init: float = 1.0
    sz_scale: float | None = None  # None -> 1/sqrt(d_model)
    abs_alpha: bool = True
    # ablations
    lerp_correction: bool = False
    bound_weights: bool = False

    def __post_init__(self) -> None:
        base = 1.0 / math.sqrt(self.d_model)
        for name in ("alpha_scale", "sqk_scale", "sz_scale"):
            if getattr(self, name) is None:
                setattr(self, name, base)

    def vector_params(self) -> tuple[int, int]:
        # per block: alpha_a, alpha_m, s_qk (3d) and s_uv (2f); head: s_z (V)
        return 3 * self.d_model + 2 * self.d_mlp, self.vocab_size


# ---------------------------------------------------------------------- angpt (angpt.py)
@dataclass
class ANGPTConfig(ModelArgs):
    """anGPT; the open questions each field answers are in angpt.py's docstring."""

    alpha_init: float = 0.05
    alpha_scale: float = 0.01  # Sec. 5 text; Table F.2 prints 0.001
    abs_alpha: bool = False
    qk_scale_init: float | None = None  # g at init; None -> sqrt(head_dim)
    qk_scale_per_head: bool = False  # one g per head instead of one per layer
    gate_sqrt_d: bool = False  # SiLU input x sqrt(d), as nGPT (see "SiLU's input scale" above)
    sz_init: float = 1.0
    sz_scale: float = 0.01
    nu_p: float | None = None  # None -> sqrt(d_h / d) (Sec. 4.3); 1.0 is App. E's value
    nu_acf: float = 3.74
    bound_embeddings: bool = True
    # ablations (Table L.1)
    residual_factor: bool = True
    residual_factor_mult: float = 1.0
    const_factors: bool = True
    const_factor_mult: float = 1.0
    lerp: bool = True

    def __post_init__(self) -> None:
        if self.qk_scale_init is None:
            self.qk_scale_init = math.sqrt(self.head_dim)
        if self.nu_p is None:
            self.nu_p = math.sqrt(self.head_dim / self.d_model)

    def vector_params(self) -> tuple[int, int]:
        # per block: alpha_a, alpha_m (2d, only with lerp) and g (1, or n_heads with qk_scale_per_head); head: s_z (V)
        g = self.n_heads if self.qk_scale_per_head else 1
        return (2 * self.d_model if self.lerp else 0) + g, self.vocab_size

    def constants(self) -> dict[str, float]:
        """The constant factors after the ablation switches."""
        d, f = self.d_model, self.d_mlp
        nu = {
            "qkv": math.sqrt(d / self.head_dim),
            "p": self.nu_p,
            "uz": math.sqrt(d / f),
            "acf": self.nu_acf,
            "d": math.sqrt(f / d),
        }
        m = self.const_factor_mult
        return {k: (v if self.const_factors else 1.0) * m for k, v in nu.items()}
