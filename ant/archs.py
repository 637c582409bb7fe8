"""The architectures, one row each: everything the rest of ant knows about an architecture besides its model file.

    from ant.archs import ARCHS, arch
    arch("angpt").label, arch("angpt").optimizer      # "anGPT", "adam"

A row names its model class and its config dataclass by import path ("module:Class") rather than importing them,
so this table, and the config that checks `model.arch` against it, load without torch. The config dataclasses live
in ant/models/args.py, which imports no torch either, so option checks and parameter counts (ant.models.options,
ant.models.counts) run without it: `ant sweep --dry-run` counts every planned run. The model file owns the forward
and the initialisation; its config dataclass's `vector_params()` gives the parameter count, which
ant.models.counts turns into parameter and FLOP counts without building a model.

Adding an architecture = its model file (a `Transformer` subclass with `config_cls`, tests/models/ beside it) + its
config dataclass in ant/models/args.py (or an existing one reused, as gptplus reuses gpt's) + one row here.
ant.config's `Arch` vocabulary, ant.models' registry, the recipe's optimizer defaults, the LR/batch rules, plot
colours and labels and the report's order all read this table (tests/test_archs.py checks that they agree).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ant.errors import check_choice


@dataclass(frozen=True)
class Arch:
    name: str  # the value of model.arch, and the prefix of every run id of it
    label: str  # in plots and tables
    color: str  # matplotlib colour
    model: str  # "module:Class" of its ant.models.base.Transformer subclass (imports torch)
    config: str  # "module:Class" of its config dataclass (an ant.models.args.ModelArgs subclass; no torch)
    # Config fields the architecture fixes (gpt and gptplus share a class; QK-norm tells them apart): not options.
    fixed: MappingProxyType = field(default_factory=lambda: MappingProxyType({}))
    # The optimiser recipe (paper-notes §3-4, Table F.2): what ant.recipe fills in when the config leaves it open.
    optimizer: str = "adam"  # an ant.optimizers name
    weight_decay: float = 0.0  # on matrices only (Transformer.param_groups)
    warmup_frac: float = 0.0  # share of the steps the LR warms up over
    default_lr: float = 3e-3  # peak LR when neither the config nor a grid rule gives one
    # The paper's Sec. 5.1 power laws (coefficient, exponent) that `{rule: paper}` in a grid reads: LR(N) and the
    # optimal batch in sequences of 2048 tokens, B(N). The paper fits GPT+ and anGPT only; the others borrow one.
    paper_lr: tuple[float, float] = (42.0, -0.482)
    paper_batch: tuple[float, float] = (9e-5, 0.729)
    alphas: bool = False  # logs eigen learning rates (alpha_a/<i>, alpha_m/<i>; model.alpha_stats())


_GPT_RECIPE: dict[str, Any] = {"optimizer": "adamw", "weight_decay": 0.1, "warmup_frac": 0.1}  # AdamW, warm-up
_ANGPT_FIT: dict[str, Any] = {"paper_lr": (0.065, -0.178), "paper_batch": (1.1e-6, 0.984)}


# In this order in the config's vocabulary, plots and tables.
TABLE: tuple[Arch, ...] = (
    Arch(
        "gpt",
        "GPT",
        "#7f7f7f",
        "ant.models.gpt:GPT",
        "ant.models.args:GPTConfig",
        MappingProxyType({"qk_norm": False}),
        **_GPT_RECIPE,
    ),
    Arch(
        "gptplus",
        "GPT+",
        "#1f77b4",
        "ant.models.gpt:GPT",
        "ant.models.args:GPTConfig",
        MappingProxyType({"qk_norm": True}),
        **_GPT_RECIPE,
    ),
    Arch("ngpt", "nGPT", "#2ca02c", "ant.models.ngpt:NGPT", "ant.models.args:NGPTConfig", alphas=True, **_ANGPT_FIT),
    Arch(
        "angpt", "anGPT", "#d62728", "ant.models.angpt:ANGPT", "ant.models.args:ANGPTConfig", alphas=True, **_ANGPT_FIT
    ),
)
ARCHS: tuple[str, ...] = tuple(a.name for a in TABLE)
BY_NAME: dict[str, Arch] = {a.name: a for a in TABLE}
# The paper's three architectures in the order its tables list them (the reference GPT+ first): the report's
# tables and the benchmark's default list; other architectures follow them.
PAPER_ORDER: tuple[str, ...] = ("gptplus", "angpt", "ngpt")


def arch(name: str) -> Arch:
    """The row of `name`; ConfigError naming model.arch and the allowed names otherwise."""
    check_choice("model.arch", name, ARCHS)
    return BY_NAME[name]
