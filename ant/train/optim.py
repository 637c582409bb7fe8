"""The optimisation recipe per architecture and the learning-rate schedule.

The recipe values themselves (optimizer, betas, eps, weight decay, warm-up fraction) are filled in by
`RunConfig.resolve()` from the paper (paper-notes §3-4, Table F.2); this module turns a resolved `OptimConfig`
into a torch optimizer and defines the schedule:

    warm-up:  lr(s) = peak * (s + 1) / W                      for s < W   (W = round(warmup_frac * steps))
    cosine:   lr(s) = final + (peak - final) * (1 + cos(pi p)) / 2
    linear:   lr(s) = peak - (peak - final) * p
    constant: lr(s) = peak
    with p = (s - W) / (steps - 1 - W) in [0, 1], final = final_lr_frac * peak, s the 0-based optimizer step.

The schedule is a pure function of the step (like the data, see ant.data.TrainSampler), so a resumed run needs
no scheduler state to continue exactly: `set_lr(optimizer, step, ...)` is called before every optimizer step.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ant.config import OptimConfig
from ant.errors import ConfigError


def warmup_steps(optim: OptimConfig, steps: int) -> int:
    return int(round((optim.warmup_frac or 0.0) * steps))


def lr_factor(step: int, *, steps: int, warmup: int, schedule: str, final_lr_frac: float) -> float:
    """Multiplier of the peak LR for the 0-based optimizer step `step` of a run of `steps` steps."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    # The last step gets exactly final_lr_frac x peak; a run shorter than its warm-up + 1 stays at the peak.
    p = min(1.0, (step - warmup) / max(1, steps - 1 - warmup))
    if schedule == "cosine":
        return final_lr_frac + (1.0 - final_lr_frac) * 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule == "linear":
        return 1.0 - (1.0 - final_lr_frac) * p
    raise ConfigError("optim.schedule", f"unknown schedule {schedule!r}", ("cosine", "linear", "constant"))


def schedule_factor(step: int, optim: OptimConfig, steps: int) -> float:
    """lr_factor with the schedule settings of a resolved OptimConfig."""
    return lr_factor(
        step,
        steps=steps,
        warmup=warmup_steps(optim, steps),
        schedule=optim.schedule,
        final_lr_frac=optim.final_lr_frac,
    )


def lr_at(step: int, optim: OptimConfig, steps: int) -> float:
    """The peak-relative schedule times the peak LR of a resolved OptimConfig."""
    return optim.lr * schedule_factor(step, optim, steps)


def build_optimizer(model: nn.Module, optim: OptimConfig, *, fused: bool = False) -> torch.optim.Optimizer:
    """Adam or AdamW over `model.param_groups(weight_decay)`.

    Groups may carry their own "lr" (a per-group peak); it is remembered as "peak_lr" so the schedule scales
    every group by the same factor. With plain Adam a non-zero weight decay is the coupled L2 penalty, as in torch.
    """
    if optim.lr is None or optim.optimizer not in ("adam", "adamw"):
        raise ValueError("build_optimizer needs a resolved OptimConfig (call RunConfig.resolve())")
    groups = model.param_groups(optim.weight_decay)
    for g in groups:
        g["peak_lr"] = g.get("lr", optim.lr)
        g["lr"] = g["peak_lr"]
    cls = torch.optim.AdamW if optim.optimizer == "adamw" else torch.optim.Adam
    kwargs = {"fused": True} if fused else {}
    return cls(groups, lr=optim.lr, betas=(optim.beta1, optim.beta2), eps=optim.eps, **kwargs)


def set_lr(optimizer: torch.optim.Optimizer, step: int, optim: OptimConfig, steps: int) -> float:
    """Set every group's LR for the 0-based optimizer step `step`; returns the peak-relative factor."""
    factor = schedule_factor(step, optim, steps)
    for g in optimizer.param_groups:
        g["lr"] = g["peak_lr"] * factor
    return factor
