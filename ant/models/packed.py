"""K runs of one shape as one model: the same class and forward, every parameter stacked along a leading run dim.

    packed = pack([model_0, ..., model_{K-1}])     # K models of one (arch, size, options), each its own init
    logits = packed(idx)                           # idx [K, B, T] -> [K, B, T, V]: run k sees only its own ids
    state_k = unpack(packed, k)                    # run k's state dict: the single model's keys and shapes

There is no second forward: the models' Linear and Embedding (ant.models.layers) do one batched matmul / lookup
when their weight is [K, out, in] / [K, V, d], split_heads/attend carry any leading dims, and every other
parameter (norm gains, scale vectors, logit scales) is stored so that it broadcasts against activations that
carry the run dim in front: [K, 1, 1, d] against the residual stream [K, B, T, d], the logit scale g
[K, 1, 1, 1, 1] against q [K, B, H, T, hd]. A single model (K = 1, not packed) keeps its shapes, state dict
and numerics exactly.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from ant.models.base import Transformer

# The number of dims (in a single run) of the activation a non-matrix parameter multiplies: 3 = [B, T, d] for
# norm gains and scale vectors (the default), 4 = q's [B, H, T, hd] for the logit scale g, 2 for nGPT's s_qk
# (its forward reshapes the d-vector to [H, 1, hd] and broadcasts that over B).
ACTIVATION_NDIM = {"g": 4, "sqk": 2}


def _key(name: str) -> str:
    parts = name.split(".")
    return parts[-2] if parts[-1] == "weight" and len(parts) > 1 else parts[-1]


def _is_matrix(model: nn.Module, name: str) -> bool:
    owner = model.get_submodule(name.rpartition(".")[0]) if "." in name else model
    return isinstance(owner, (nn.Linear, nn.Embedding))


def packed_shape(model: nn.Module, name: str, shape: torch.Size, runs: int) -> tuple[int, ...]:
    """Shape of parameter `name` (single-run `shape`) in a model packing `runs` runs."""
    if _is_matrix(model, name):
        return (runs, *shape)
    pad = ACTIVATION_NDIM.get(_key(name), 3) - len(shape)
    if pad < 0:
        raise ValueError(f"{name} {tuple(shape)} has more dims than the activation it multiplies")
    return (runs, *[1] * pad, *shape)


def pack(models: list[Transformer]) -> Transformer:
    """One model training the K `models` together (copies of their current parameters, stacked)."""
    if not models:
        raise ValueError("pack() needs at least one model")
    first = models[0]
    for m in models[1:]:
        if type(m) is not type(first) or m.cfg != first.cfg:
            raise ValueError(f"pack() needs models of one class and config; got {first.cfg} and {m.cfg}")
    packed = copy.deepcopy(first)
    packed.runs = len(models)
    packed.single_shapes = {n: p.shape for n, p in first.named_parameters()}
    params = [dict(m.named_parameters()) for m in models]
    for name, shape in packed.single_shapes.items():
        stacked = torch.stack([p[name].detach() for p in params])
        owner_name, _, attr = name.rpartition(".")
        owner = packed.get_submodule(owner_name) if owner_name else packed
        new_shape = packed_shape(first, name, shape, len(models))
        setattr(owner, attr, nn.Parameter(stacked.reshape(new_shape).clone(), requires_grad=True))
    return packed


def unpack(packed: Transformer, k: int) -> dict[str, torch.Tensor]:
    """Run k's parameters as a single model's state dict (same keys and shapes), copies."""
    return {n: p.detach()[k].reshape(packed.single_shapes[n]).clone() for n, p in packed.named_parameters()}


def load_run_(packed: Transformer, k: int, state: dict[str, torch.Tensor]) -> None:
    """Put a single model's state dict into slot k (a resumed or replaced run)."""
    with torch.no_grad():
        for n, p in packed.named_parameters():
            p[k].copy_(state[n].reshape(p.shape[1:]))
