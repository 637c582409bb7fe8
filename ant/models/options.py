"""The options of a model, without torch: `make_config` resolves and validates an architecture's config dataclass.

    cfg = make_config("angpt", "tiny3", vocab_size=4096, lerp=False)    # ANGPTConfig, checked
    option_names("gpt")                                                 # what model.options may set

The config dataclass is the one the arch's row in ant.archs names (ant/models/args.py), so the recipe and the
sweep planner check options and count parameters (ant.models.counts) without importing torch; build_model
(ant.models.build) builds the model from the same config. Bad options raise ConfigError naming
`model.options.<name>` and the allowed names or values.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import typing
from typing import Any

from ant.archs import ARCHS
from ant.archs import arch as arch_row  # `arch` is the parameter's name below
from ant.errors import ConfigError, check_choice
from ant.models.args import ModelArgs
from ant.models.sizes import PAPER_VOCAB, SizeSpec, get_size


@functools.cache
def config_class(name: str) -> type[ModelArgs]:
    """The config dataclass of arch `name`: the class its ant.archs row names ("module:Class")."""
    module, _, cls = arch_row(name).config.partition(":")
    return getattr(importlib.import_module(module), cls)


_NOT_OPTIONS = ("arch", "size", "vocab_size")


def arch_fixed(name: str) -> dict[str, Any]:
    """The config fields arch `name` fixes (gpt and gptplus share GPTConfig; qk_norm tells them apart)."""
    return dict(arch_row(name).fixed)


def option_names(arch: str) -> list[str]:
    """The names build_model accepts as overrides for `arch`."""
    check_choice("model.arch", arch, ARCHS)
    cfg_cls, fixed = config_class(arch), arch_fixed(arch)
    return [f.name for f in dataclasses.fields(cfg_cls) if f.name not in _NOT_OPTIONS and f.name not in fixed]


def make_config(arch: str, size: str, vocab_size: int = PAPER_VOCAB, **overrides: Any) -> ModelArgs:
    """The resolved, validated config dataclass of `arch` at `size` with `overrides` applied."""
    allowed = option_names(arch)
    spec = get_size(size)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or not 2 <= vocab_size <= MAX_VOCAB:
        shown = vocab_size if not isinstance(vocab_size, int) or vocab_size < 10**20 else "a huge integer"
        raise ConfigError("model.vocab_size", f"must be an integer in [2, {MAX_VOCAB}], got {shown!r}")
    cfg_cls, fixed = config_class(arch), arch_fixed(arch)
    hints = typing.get_type_hints(cfg_cls)
    for name, value in overrides.items():
        if name not in allowed:
            raise ConfigError(f"model.options.{name}", "unknown option", allowed)
        _check_type(f"model.options.{name}", value, hints[name])
    shape = {f.name: getattr(spec, f.name) for f in dataclasses.fields(SizeSpec) if f.name != "name"}
    kwargs = {**shape, **overrides, **fixed}
    _check_shape(kwargs, overrides, size)
    return cfg_cls(arch=arch, size=size, vocab_size=vocab_size, **kwargs)


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


__all__ = ["MAX_VOCAB", "arch_fixed", "config_class", "make_config", "option_names"]
