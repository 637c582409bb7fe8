"""The weight constraints of nGPT and anGPT: which matrices, along which dimension, renormalised or bounded.

PyTorch stores nn.Linear weights as [out, in] and nn.Embedding weights as [vocab, d_model] (one row per token).
`dim` below is the dimension the L2 norm is taken over (reduced), so dim=1 means "every row has norm 1 / <= 1".

nGPT (paper §2.1 recipe step 2; NVIDIA/ngpt train.py `normalize_matrices()`): every matrix is renormalised to unit
norm along the EMBEDDING (d_model) dimension after every optimizer step. For the matrices that read the residual
stream that is their input dim (dim 1): wte (token vectors), lm_head, qkv, fc (W_uz). For the two output
projections, att proj and MLP down, d_model is the OUTPUT dim, so they are normalised along dim 0 (columns).

anGPT (paper §4.2 "Constraining Parameters", App. A): every matrix is initialised with unit-norm rows along its
INPUT dimension (dim 1 for every nn.Linear, the output projections included) and after every step rows longer than
one are scaled back to norm one (w <- w / max(1, ||w||), a projection onto the ball, never a renormalisation: rows
shorter than one stay as they are). The paper does not say how the bound is enforced; the post-step clip is our
reading (paper-notes §1.4). Embeddings: App. A says "our work bound all parameter matrices to one"; the embedding
lookup h = W_e x_in maps a one-hot token to its vector, and only bounding each token's vector (dim 1, as nGPT does)
keeps the residual stream at unit norm as §4.2's derivation assumes, so that is what we do (ANGPTConfig.
bound_embeddings=False leaves the embedding free after its unit-norm initialisation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ant.models.layers import NORM_EPS

# matrix (the module attribute holding it) -> dim the norm is taken over
NGPT_DIMS = {"wte": 1, "lm_head": 1, "qkv": 1, "fc": 1, "proj": 0, "down": 0}
ANGPT_DIMS = {"wte": 1, "lm_head": 1, "qkv": 1, "proj": 1, "fc": 1, "down": 1}
MODES = ("renorm", "clip")


@dataclass(frozen=True)
class Constraint:
    name: str  # parameter name, e.g. "blocks.3.proj.weight"
    param: nn.Parameter
    dim: int  # dimension the L2 norm is taken over
    mode: str  # "renorm": ||w|| = 1 ; "clip": ||w|| <= 1

    @property
    def param_dim(self) -> int:
        """`dim` in the stored tensor: one more in a packed model, whose matrices carry a leading run dim."""
        return self.dim + self.param.ndim - 2

    def norms(self) -> torch.Tensor:
        return self.param.detach().float().norm(dim=self.param_dim)

    def apply_(self, mode: str | None = None) -> None:
        project_(self.param, self.param_dim, mode or self.mode)


@torch.no_grad()
def project_(w: torch.Tensor, dim: int, mode: str) -> None:
    """The constraint on `w` in place, norms taken over `dim` in fp32: "clip" divides only rows longer than one,
    "renorm" every row by its norm. One function for the eager loop (Constraint.apply_) and every compiled
    projection (ant.perf, ant.train.compiled, ant.train.packed), so they cannot drift apart."""
    norm = w.float().norm(dim=dim, keepdim=True)
    div = norm.clamp_min(1.0) if mode == "clip" else norm.clamp_min(NORM_EPS)
    w.div_(div.to(w.dtype))


def matrix_constraints(model: nn.Module, dims: dict[str, int], mode: str, skip=()) -> list[Constraint]:
    """One Constraint per matrix of `model` (the weight of a Linear or Embedding, in parameter order), its dim
    looked up by the owning module's attribute name. Found by module type rather than by ndim, because a packed
    model's (ant.models.packed) matrices and vectors all carry a leading run dimension.

    A matrix whose name is not in `dims` raises: a new matrix must be placed in the table on purpose, never left
    silently unconstrained."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    out = []
    for mod_name, mod in model.named_modules():
        if not isinstance(mod, (nn.Linear, nn.Embedding)):
            continue
        name, p = f"{mod_name}.weight", mod.weight
        key = mod_name.split(".")[-1]
        if key not in dims:
            raise KeyError(f"matrix {name} has no constraint dimension (known: {sorted(dims)})")
        if key in skip:
            continue
        out.append(Constraint(name, p, dims[key], mode))
    return out


def init_unit_norm_(constraints: list[Constraint]) -> None:
    """Gaussian init, then every slice along the constraint dim scaled to norm one (uniform on the sphere)."""
    with torch.no_grad():
        for c in constraints:
            c.param.normal_()
            c.apply_("renorm")
