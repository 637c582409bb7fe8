"""The architectures of ant.archs (`gpt`, `gptplus` (GPT+ with QK-norm), `ngpt`, `angpt`) on one skeleton (base.py).

    model = build_model("angpt", "tiny3", vocab_size=4096)              # any rung of ant.models.sizes.SIZES
    model = build_model("ngpt", "0.5B", device="meta")                  # count parameters without memory
    model = build_model("angpt", "tiny3", n_layers=2, lerp=False)       # size overrides and ablation switches
    logits = model(idx)                                                 # [B, T] -> fp32 [B, T, V]
    model.project_weights()                                             # after every optimizer step

Overrides are SizeSpec fields (d_model, n_layers, n_heads) or fields of the architecture's config dataclass
(GPTConfig, NGPTConfig, ANGPTConfig; see each module's docstring for what they mean). Bad ones raise ConfigError
naming `model.options.<name>` and the allowed names or values.

Torch loads only when build_model or REGISTRY is first used (PEP 562): importing a submodule runs this file first,
and the sweep planner's dry run reads ant.models.sizes, ant.models.counts and make_config (ant.models.options;
the config dataclasses are in ant.models.args), none of which needs torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ant.archs import ARCHS
    from ant.models.build import REGISTRY, build_model
    from ant.models.options import make_config, option_names
    from ant.models.sizes import PAPER_SIZES, PAPER_VOCAB, SIZES, SizeSpec, get_size

_SIZES = ("PAPER_SIZES", "PAPER_VOCAB", "SIZES", "SizeSpec", "get_size")
_HOME = {"ARCHS": "ant.archs", "REGISTRY": "ant.models.build", "build_model": "ant.models.build",
         "make_config": "ant.models.options", "option_names": "ant.models.options",
         **dict.fromkeys(_SIZES, "ant.models.sizes")}  # fmt: skip
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


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'ant.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_HOME[name]), name)
