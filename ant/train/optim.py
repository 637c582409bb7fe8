"""The optimisation recipe per architecture and the learning-rate schedule.

The recipe values themselves (optimizer, betas, eps, weight decay, warm-up fraction) are filled in by
`RunConfig.resolve()` from the paper (paper-notes §3-4, Table F.2); this module turns a resolved `OptimConfig`
into a torch optimizer and defines the schedule:

    warm-up:  lr(s) = peak * (s + 1) / W      for s < W   (W = optim.warmup_steps, else round(warmup_frac * steps))
    cosine:   lr(s) = final + (peak - final) * (1 + cos(pi p)) / 2
    linear:   lr(s) = peak - (peak - final) * p
    constant: lr(s) = peak
    with p = (s - W) / (steps - 1 - W) in [0, 1], final = final_lr_frac * peak, s the 0-based optimizer step.

    wsd (warmup-stable-decay; Hu et al. 2024, Hägele et al. 2024): warm-up over W steps, the peak until the
    decay starts at D = steps - K, then K = max(1, round(decay_frac * steps)) steps of decay to `final`:
              lr(s) = peak                                   for W <= s < D
              lr(s) = final + (peak - final) * (1 - sqrt(q))  decay_shape "1-sqrt" (default: Hägele et al. find
              lr(s) = peak - (peak - final) * q               it beats "linear" at equal length)
    with q = (s - D + 1) / K in (0, 1]: every decay step is below the peak and the last one is at `final`.
    W for wsd is `optim.warmup_steps`, an absolute step count (resolve() fills it from warmup_frac x steps when
    it is not given): with it, two wsd runs that differ only in their budget have the same LR at every step
    before the shorter one's decay starts, which is what makes cool-down branches exact (ant.train.branches).

The schedule is a pure function of the step (like the data, see ant.data.TrainSampler), so a resumed run needs
no scheduler state to continue exactly: `set_lr(optimizer, step, ...)` is called before every optimizer step.
"""

from __future__ import annotations

import torch
from torch import nn

from ant.config import OptimConfig, wsd_decay_steps
from ant.schedule import lr_factor  # the one definition (ant.laws reads it too); public here as before


def warmup_steps(optim: OptimConfig, steps: int) -> int:
    """Warm-up length: optim.warmup_steps when given (always, for a resolved wsd config), else warmup_frac x steps."""
    if optim.warmup_steps is not None:
        return int(optim.warmup_steps)
    return int(round((optim.warmup_frac or 0.0) * steps))


def decay_steps(optim: OptimConfig, steps: int) -> int:
    """Length of the final decay of a wsd run (0 for the other schedules)."""
    if optim.schedule != "wsd":
        return 0
    return wsd_decay_steps(steps, optim.decay_frac)


def decay_start(optim: OptimConfig, steps: int) -> int:
    """The first step of a wsd run's decay: the step at which a cool-down branch leaves its trunk."""
    return steps - decay_steps(optim, steps)


def schedule_factor(step: int, optim: OptimConfig, steps: int) -> float:
    """lr_factor with the schedule settings of a resolved OptimConfig."""
    return lr_factor(
        step,
        steps=steps,
        warmup=warmup_steps(optim, steps),
        schedule=optim.schedule,
        final_lr_frac=optim.final_lr_frac,
        decay=decay_steps(optim, steps),
        decay_shape=optim.decay_shape,
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
        if isinstance(g["lr"], torch.Tensor):  # the compiled update's (ant.train.compiled): a value, not a guard
            g["lr"].fill_(g["peak_lr"] * factor)
        else:
            g["lr"] = g["peak_lr"] * factor
    return factor
