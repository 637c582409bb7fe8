"""build_model and the model registry: the torch half of ant.models (make_config, in ant.models.options, is the
torch-free half; ant.models re-exports both and loads this module on first use of its names)."""

from __future__ import annotations

import contextlib
import importlib
from typing import Any

import torch

from ant.archs import ARCHS, TABLE
from ant.errors import check_choice
from ant.models.args import ModelArgs
from ant.models.base import Transformer
from ant.models.options import arch_fixed, config_class, make_config
from ant.models.sizes import PAPER_VOCAB


def _model_class(path: str) -> type[Transformer]:
    """The class an ant.archs row names ("module:Class"): the table names it so that it loads without torch."""
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


# arch -> (model class, config class, fields the arch fixes), from ant.archs.TABLE
REGISTRY: dict[str, tuple[type[Transformer], type[ModelArgs], dict[str, Any]]] = {
    a.name: (_model_class(a.model), config_class(a.name), arch_fixed(a.name)) for a in TABLE
}


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
