"""The architectures of ant.archs (`gpt`, `gptplus` (GPT+ with QK-norm), `ngpt`, `angpt`) on one skeleton (base.py).

    model = build_model("angpt", "tiny3", vocab_size=4096)              # any rung of ant.models.sizes.SIZES
    model = build_model("ngpt", "0.5B", device="meta")                  # count parameters without memory
    model = build_model("angpt", "tiny3", n_layers=2, lerp=False)       # size overrides and ablation switches
    logits = model(idx)                                                 # [B, T] -> fp32 [B, T, V]
    model.project_weights()                                             # after every optimizer step

Overrides are SizeSpec fields (d_model, n_layers, n_heads) or fields of the architecture's config dataclass
(GPTConfig, NGPTConfig, ANGPTConfig; see each module's docstring for what they mean). Bad ones raise ConfigError
naming `model.options.<name>` and the allowed names or values.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import math
import typing
from typing import Any

import torch

from ant.archs import ARCHS, TABLE
from ant.errors import ConfigError, check_choice
from ant.models.base import ModelArgs, Transformer
from ant.models.sizes import PAPER_SIZES, PAPER_VOCAB, SIZES, SizeSpec, get_size


def _model_class(path: str) -> type[Transformer]:
    """The class an ant.archs row names ("module:Class"): the table names it so that it loads without torch."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


# arch -> (model class, config class, fields the arch fixes), from ant.archs.TABLE
REGISTRY: dict[str, tuple[type[Transformer], type[ModelArgs], dict[str, Any]]] = {
    a.name: (cls, cls.config_cls, dict(a.fixed)) for a in TABLE for cls in [_model_class(a.model)]
}
_NOT_OPTIONS = ("arch", "size", "vocab_size")


def option_names(arch: str) -> list[str]:
    """The names build_model accepts as overrides for `arch`."""
    check_choice("model.arch", arch, ARCHS)
    _, cfg_cls, fixed = REGISTRY[arch]
    return [f.name for f in dataclasses.fields(cfg_cls) if f.name not in _NOT_OPTIONS and f.name not in fixed]


def make_config(arch: str, size: str, vocab_size: int = PAPER_VOCAB, **overrides: Any) -> ModelArgs:
    """The resolved, validated config dataclass of `arch` at `size` with `overrides` applied."""
    allowed = option_names(arch)
    spec = get_size(size)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or not 2 <= vocab_size <= MAX_VOCAB:
        shown = vocab_size if not isinstance(vocab_size, int) or vocab_size < 10**20 else "a huge integer"
        raise ConfigError("model.vocab_size", f"must be an integer in [2, {MAX_VOCAB}], got {shown!r}")
    _, cfg_cls, fixed = REGISTRY[arch]
    hints = typing.get_type_hints(cfg_cls)
    for name, value in overrides.items():
        if name not in allowed:
            raise ConfigError(f"model.options.{name}", "unknown option", allowed)
        _check_type(f"model.options.{name}", value, hints[name])
    shape = {f.name: getattr(spec, f.name) for f in dataclasses.fields(SizeSpec) if f.name != "name"}
    kwargs = {**shape, **overrides, **fixed}
    _check_shape(kwargs, overrides, size)
    return cfg_cls(arch=arch, size=size, vocab_size=vocab_size, **kwargs)


def build_model(
    arch: str, size: str, *, vocab_size: int = PAPER_VOCAB, device: str | torch.device | None = None, **overrides: Any
) -> Transformer:
    """Build `arch` at `size` (a rung of SIZES) with `overrides`, initialised on `device` (default: torch's).

    device="meta" allocates nothing and skips the initialisation (for counting parameters and FLOPs); to
    materialise such a model later call `model.to_empty(device=...)` and then `model.init_weights()`."""
    check_choice("model.arch", arch, ARCHS)
    cfg = make_config(arch, size, vocab_size, **overrides)
    model_cls = REGISTRY[arch][0]
    ctx = torch.device(device) if device is not None else contextlib.nullcontext()
    with ctx:
        return model_cls(cfg)


# ---------------------------------------------------------------------- validation
MAX_VOCAB = 2**24
# Upper bounds of the integer options (others: 2**16): 1024 layers is 10x the deepest published GPT
MAX_INT_OPTION = {"n_layers": 1024, "n_heads": 4096, "mlp_mult": 64}


def _check_type(name: str, value: Any, hint: Any) -> None:
    args = typing.get_args(hint)
    if value is None:
        if type(None) in args:
            return
        raise ConfigError(name, "must not be empty")
    base = next((a for a in args if a is not type(None)), hint) if args else hint
    if base is bool:
        if not isinstance(value, bool):
            raise ConfigError(name, f"expected true/false, got {value!r}", [True, False])
    elif base is int:
        # finite bounds before any layer is built: n_layers=10**30 would otherwise build layers until memory ends
        top = MAX_INT_OPTION.get(name.rsplit(".", 1)[-1], 2**16)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            shown = value if not isinstance(value, int) or abs(value) < 10**20 else "a huge integer"
            raise ConfigError(name, f"expected an integer in [1, {top}], got {shown!r}")
    elif base is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or abs(value) > 1e12:
            raise ConfigError(name, f"expected a finite number, |value| <= 1e12, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(name, f"expected a number, got {value!r}")
        # scales divide (init/scale), multipliers and factors must keep their sign: all must be positive
        positive = name.endswith(("_scale", "_mult")) or name.split(".")[-1].startswith("nu_")
        if positive and value <= 0:
            raise ConfigError(name, f"must be a positive number, got {value!r}")


def _check_shape(kw: dict[str, Any], overrides: dict[str, Any], size: str) -> None:
    d, h = kw["d_model"], kw["n_heads"]
    if d % h:
        field = next((f"model.options.{n}" for n in ("n_heads", "d_model") if n in overrides), "model.size")
        divisors = [n for n in range(1, d + 1) if d % n == 0 and (d // n) % 2 == 0]
        raise ConfigError(field, f"n_heads={h} does not divide d_model={d} (size {size})", divisors)
    frac = kw.get("rope_fraction", 0.5)
    rot = d // h * frac
    if not 0 < frac <= 1 or rot != int(rot) or int(rot) % 2:
        raise ConfigError(
            "model.options.rope_fraction",
            f"{frac!r} x head dim {d // h} = {rot:g} rotated dims; must be an even whole number, 0 < fraction <= 1",
        )


__all__ = [
    "ARCHS",
    "PAPER_SIZES",
    "PAPER_VOCAB",
    "REGISTRY",
    "SIZES",
    "SizeSpec",
    "build_model",
    "get_size",
    "make_config",
    "option_names",
]
