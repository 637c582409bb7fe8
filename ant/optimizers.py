"""Torch optimizers by name (the values of optim.optimizer) and the LR of every step.

    OPTIMIZERS: "adam", "adamw" (the paper's recipe; ant.archs says which architecture takes which)
    any torch.optim class by its name ("SGD", "Adagrad", "RMSprop", ...), litgpt-style: it gets optim.lr,
    optim.weight_decay, and optim.optimizer_args as keyword arguments (`optim.optimizer_args={momentum: 0.9}`);
    nothing else of the config (betas and eps are Adam's).

`build_optimizer(model, optim)` makes one over `model.param_groups(weight_decay)`; `set_lr(optimizer, step, ...)`
sets every group's LR for a step from the schedule (ant.schedules), before every optimizer step, so a resumed run
needs no scheduler state. What the recipe fills in (which optimizer, betas, decay, warm-up) is ant.recipe's.
Adding an optimizer: a torch.optim class needs nothing here; anything else is a factory under `@optimizer("name")`.
The compiled CPU update (ant.train.compiled) and packed runs (ant.train.packed) are Adam(W)'s own: other optimizers
train eager and alone (`ADAM_FAMILY`).

torch loads when an optimizer is built or a torch.optim name is checked, not on import: the recipe checks every
planned run's optim.optimizer, and planning the paper's adam/adamw runs needs no torch (tests/test_layering.py's
dry run of sweeps/paper.yaml).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ant.config import OptimConfig
from ant.errors import ConfigError
from ant.schedules import schedule_factor

if TYPE_CHECKING:
    import torch
    from torch import nn

Factory = Callable[[list[dict], OptimConfig, dict[str, Any]], "torch.optim.Optimizer"]
OPTIMIZERS: dict[str, Factory] = {}
ADAM_FAMILY = ("adam", "adamw")  # what the compiled update and PackedAdam implement


def optimizer(name: str) -> Callable[[Factory], Factory]:
    """Register `factory(groups, optim, extra_kwargs) -> torch optimizer` as optim.optimizer `name`."""

    def register(fn: Factory) -> Factory:
        OPTIMIZERS[name] = fn
        return fn

    return register


@optimizer("adam")
def adam(groups: list[dict], o: OptimConfig, kw: dict[str, Any]) -> torch.optim.Optimizer:
    # with plain Adam a non-zero weight decay is the coupled L2 penalty, as in torch
    return _optim().Adam(groups, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, **kw)


@optimizer("adamw")
def adamw(groups: list[dict], o: OptimConfig, kw: dict[str, Any]) -> torch.optim.Optimizer:
    return _optim().AdamW(groups, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, **kw)


def _optim():
    """torch.optim, imported on first use (see the module docstring)."""
    return importlib.import_module("torch.optim")


def torch_class(name: str) -> type[torch.optim.Optimizer] | None:
    optim = _optim()
    cls = getattr(optim, name, None)
    ok = isinstance(cls, type) and issubclass(cls, optim.Optimizer) and cls is not optim.Optimizer
    return cls if ok else None


def allowed() -> list[str]:
    """Every name optim.optimizer accepts (besides "auto", which the recipe turns into one of them)."""
    return [*OPTIMIZERS, *sorted(n for n in dir(_optim()) if torch_class(n))]


def check(o: OptimConfig) -> None:
    """ConfigError unless optim.optimizer names an optimizer and optim.optimizer_args are arguments it takes."""
    name = o.optimizer
    if name in OPTIMIZERS:
        if o.optimizer_args:
            raise ConfigError("optim.optimizer_args", f"{name} takes its arguments from the optim fields", "{}")
        return
    cls = torch_class(name)
    if cls is None:
        raise ConfigError("optim.optimizer", f"unknown optimizer {name!r}", ["auto", *allowed()])
    params = inspect.signature(cls).parameters
    takes = [p for p in params if p not in ("self", "params", "lr", "weight_decay")]
    for k in o.optimizer_args:
        if k not in takes:
            raise ConfigError(f"optim.optimizer_args.{k}", f"not an argument of torch.optim.{name}", takes)
    if "weight_decay" not in params and o.weight_decay:
        raise ConfigError("optim.weight_decay", f"torch.optim.{name} takes no weight decay", "0")


def build_optimizer(model: nn.Module, optim: OptimConfig, *, fused: bool = False) -> torch.optim.Optimizer:
    """The optimizer of a resolved OptimConfig over `model.param_groups(weight_decay)`.

    Groups may carry their own "lr" (a per-group peak); it is remembered as "peak_lr" so the schedule scales every
    group by the same factor. `fused` (CUDA) where the class has a fused kernel."""
    if optim.lr is None or optim.optimizer == "auto":
        raise ValueError("build_optimizer needs a resolved OptimConfig (call ant.recipe.resolve(cfg))")
    check(optim)
    groups = model.param_groups(optim.weight_decay)
    for g in groups:
        g["peak_lr"] = g.get("lr", optim.lr)
        g["lr"] = g["peak_lr"]
    if optim.optimizer in OPTIMIZERS:
        return OPTIMIZERS[optim.optimizer](groups, optim, {"fused": True} if fused else {})
    cls = torch_class(optim.optimizer)
    kw = dict(optim.optimizer_args)
    if fused and "fused" in inspect.signature(cls).parameters:
        kw.setdefault("fused", True)
    if "weight_decay" not in inspect.signature(cls).parameters:
        for g in groups:  # check() allowed this only with weight_decay 0
            g.pop("weight_decay", None)
    return cls(groups, lr=optim.lr, **kw)


def set_lr(optimizer: torch.optim.Optimizer, step: int, optim: OptimConfig, steps: int) -> float:
    """Set every group's LR for the 0-based optimizer step `step`; returns the peak-relative factor."""
    factor = schedule_factor(step, optim, steps)
    for g in optimizer.param_groups:
        if hasattr(g["lr"], "fill_"):  # the compiled update's 0-dim tensor (ant.train.compiled): a value, not a guard
            g["lr"].fill_(g["peak_lr"] * factor)
        else:
            g["lr"] = g["peak_lr"] * factor
    return factor


def current_lr(optimizer: torch.optim.Optimizer) -> float:
    """The LR the optimizer holds now (its first group's): the one the last step used, logged as such."""
    lr = optimizer.param_groups[0]["lr"]
    return float(lr)
