"""Learning-rate schedules: each a pure function of the step, registered by name (the values of optim.schedule).

    warm-up:  f(s) = (s + 1) / W      for s < W   (W = optim.warmup_steps, else round(warmup_frac * steps))
    cosine:   f(s) = final + (1 - final) * (1 + cos(pi p)) / 2
    linear:   f(s) = 1 - (1 - final) * p
    constant: f(s) = 1
    with p = (s - W) / (steps - 1 - W) in [0, 1], final = optim.final_lr_frac, s the 0-based optimizer step, and
    the LR of step s = f(s) x the peak (every parameter group's own peak, ant.optimizers.set_lr).

    wsd (warmup-stable-decay; Hu et al. 2024, Hägele et al. 2024): warm-up over W steps, the peak until the
    decay starts at D = steps - K, then K = max(1, round(decay_frac * steps)) steps of decay to `final`:
              f(s) = 1                                   for W <= s < D
              f(s) = final + (1 - final) * (1 - sqrt(q))  decay_shape "1-sqrt" (default: Hägele et al. find
              f(s) = 1 - (1 - final) * q                  it beats "linear" at equal length)
    with q = (s - D + 1) / K in (0, 1]: every decay step is below the peak and the last one is at `final`.
    W for wsd is `optim.warmup_steps`, an absolute step count (`resolve` fills it from warmup_frac x steps when it
    is not given): with it, two wsd runs that differ only in their budget have the same LR at every step before
    the shorter one's decay starts, which is what makes cool-down branches exact (ant.train.branches).

A schedule is a pure function of the step (like the data, ant.data.TrainSampler), so a resumed run needs no
scheduler state to continue exactly. Adding one = a function here under `@schedule("name")` (ant.config's
optim.schedule vocabulary is this registry's names). Pure Python, no torch: the config and the planner read it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ant.errors import ConfigError


@dataclass(frozen=True)
class Span:
    """What a schedule needs besides the step: the run's length and the settings of its OptimConfig."""

    steps: int
    warmup: int  # warm-up steps (the warm-up itself is applied before the schedule, to every schedule alike)
    final: float  # final_lr_frac
    decay: int = 0  # wsd: steps of the final decay
    decay_shape: str = "1-sqrt"  # wsd: of the final decay

    def progress(self, step: int) -> float:
        """p in [0, 1] from the end of the warm-up to the last step; a run shorter than its warm-up + 1 stays at 0."""
        return min(1.0, (step - self.warmup) / max(1, self.steps - 1 - self.warmup))


SCHEDULES: dict[str, Callable[[int, Span], float]] = {}


def schedule(name: str) -> Callable[[Callable[[int, Span], float]], Callable[[int, Span], float]]:
    """Register `fn(step, span) -> multiplier of the peak LR` as optim.schedule `name` (after the warm-up)."""

    def register(fn: Callable[[int, Span], float]) -> Callable[[int, Span], float]:
        SCHEDULES[name] = fn
        return fn

    return register


@schedule("cosine")
def cosine(step: int, s: Span) -> float:
    # The last step gets exactly final x peak.
    return s.final + (1.0 - s.final) * 0.5 * (1.0 + math.cos(math.pi * s.progress(step)))


@schedule("linear")
def linear(step: int, s: Span) -> float:
    return 1.0 - (1.0 - s.final) * s.progress(step)


@schedule("constant")
def constant(step: int, s: Span) -> float:
    return 1.0


DECAY_SHAPES = ("1-sqrt", "linear")  # of the wsd decay (ant.config.DecayShape)


@schedule("wsd")
def wsd(step: int, s: Span) -> float:
    start = s.steps - s.decay
    if step < start:
        return 1.0
    q = min(1.0, (step - start + 1) / max(1, s.decay))
    if s.decay_shape == "1-sqrt":
        return s.final + (1.0 - s.final) * (1.0 - math.sqrt(q))
    if s.decay_shape == "linear":
        return 1.0 - (1.0 - s.final) * q
    raise ConfigError("optim.decay_shape", f"unknown decay shape {s.decay_shape!r}", DECAY_SHAPES)


# ---------------------------------------------------------------------- from a config
def lr_factor(step: int, name: str, span: Span) -> float:
    """Multiplier of the peak LR at the 0-based optimizer step `step`: the warm-up, then schedule `name`."""
    if step < span.warmup:
        return (step + 1) / span.warmup
    if name not in SCHEDULES:
        raise ConfigError("optim.schedule", f"unknown schedule {name!r}", list(SCHEDULES))
    return SCHEDULES[name](step, span)


def wsd_decay_steps(steps: int, decay_frac: float) -> int:
    """Length of the final decay of a wsd run of `steps` steps: at least one step."""
    return min(steps, max(1, int(round(decay_frac * steps))))


def warmup_steps(optim: Any, steps: int) -> int:
    """Warm-up length: optim.warmup_steps when given (always, for a resolved wsd config), else warmup_frac x steps."""
    if optim.warmup_steps is not None:
        return int(optim.warmup_steps)
    return int(round((optim.warmup_frac or 0.0) * steps))


def decay_steps(optim: Any, steps: int) -> int:
    """Length of the final decay of a wsd run (0 for the other schedules)."""
    return wsd_decay_steps(steps, optim.decay_frac) if optim.schedule == "wsd" else 0


def decay_start(optim: Any, steps: int) -> int:
    """The first step of a wsd run's decay: the step at which a cool-down branch leaves its trunk."""
    return steps - decay_steps(optim, steps)


def span(optim: Any, steps: int) -> Span:
    """The Span of a resolved OptimConfig (`optim`: duck-typed, so this module needs nothing of ant.config)."""
    return Span(steps, warmup_steps(optim, steps), optim.final_lr_frac, decay_steps(optim, steps), optim.decay_shape)


def schedule_factor(step: int, optim: Any, steps: int) -> float:
    """lr_factor with the schedule settings of a resolved OptimConfig."""
    return lr_factor(step, optim.schedule, span(optim, steps))


def lr_at(step: int, optim: Any, steps: int) -> float:
    """The peak-relative schedule times the peak LR of a resolved OptimConfig."""
    return optim.lr * schedule_factor(step, optim, steps)


def resolve(optim: Any, steps: int) -> None:
    """Fix what a schedule needs in steps, in place (ant.recipe.resolve calls it): a wsd run's warm-up, which must
    end before its decay starts."""
    if optim.schedule != "wsd":
        return
    if optim.warmup_steps is None:
        optim.warmup_steps = int(round((optim.warmup_frac or 0.0) * steps))
    start = steps - wsd_decay_steps(steps, optim.decay_frac)
    if optim.warmup_steps > start:
        msg = f"{optim.warmup_steps} warm-up steps do not end before the decay starts at step {start} of {steps}"
        raise ConfigError("optim.warmup_steps", msg, f"0..{start}")
