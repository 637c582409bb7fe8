"""The learning-rate schedule as a pure function of the optimizer step (the formulas: ant.train.optim's docstring).

Torch-free and below every layer, so the training loop (ant.train.optim) and the tables that read run folders
(ant.laws.collect_curves: the curves' `lr` column is the scheduled LR at each logged step) share one definition.
"""

from __future__ import annotations

import math

from ant.errors import ConfigError


def lr_factor(
    step: int,
    *,
    steps: int,
    warmup: int,
    schedule: str,
    final_lr_frac: float,
    decay: int = 0,
    decay_shape: str = "1-sqrt",
) -> float:
    """Multiplier of the peak LR for the 0-based optimizer step `step` of a run of `steps` steps
    (`decay`: the number of decay steps of a wsd schedule)."""
    if step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    if schedule == "wsd":
        start = steps - decay
        if step < start:
            return 1.0
        q = min(1.0, (step - start + 1) / max(1, decay))
        if decay_shape == "1-sqrt":
            return final_lr_frac + (1.0 - final_lr_frac) * (1.0 - math.sqrt(q))
        if decay_shape == "linear":
            return 1.0 - (1.0 - final_lr_frac) * q
        raise ConfigError("optim.decay_shape", f"unknown decay shape {decay_shape!r}", ("1-sqrt", "linear"))
    # The last step gets exactly final_lr_frac x peak; a run shorter than its warm-up + 1 stays at the peak.
    p = min(1.0, (step - warmup) / max(1, steps - 1 - warmup))
    if schedule == "cosine":
        return final_lr_frac + (1.0 - final_lr_frac) * 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule == "linear":
        return 1.0 - (1.0 - final_lr_frac) * p
    raise ConfigError("optim.schedule", f"unknown schedule {schedule!r}", ("cosine", "linear", "constant", "wsd"))
