"""The gradient noise scale B_simple = tr(Σ) / |G|² (McCandlish et al. 2018, "An Empirical Model of Large-Batch
Training", App. A.1), estimated from gradient norms at two batch sizes that a step with micro-batches already has.

With G the true gradient and Σ the per-example gradient covariance, the mean gradient of a batch of B examples
satisfies E|G_B|² = |G|² + tr(Σ)/B. Two batch sizes B_small < B_big give two equations and these unbiased
estimates:

    |G|²   ≈ (B_big |G_big|² - B_small |G_small|²) / (B_big - B_small)
    tr(Σ)  ≈ (|G_small|² - |G_big|²) / (1/B_small - 1/B_big)

Each step's estimates are very noisy (|G|² may come out negative), so B_simple is the ratio of their exponential
moving averages over steps, not a per-step ratio averaged (the paper's ratio of means; the per-step ratio is
biased). In the suite an "example" is a training SEQUENCE: B_small is train.micro_batch_size, B_big is
train.batch_size, and B_simple is in sequences; in tokens it is B_simple x seq_len.

Everything here is plain Python floats, so the state saved in a checkpoint restores the very same numbers.
"""

from __future__ import annotations

import math
from typing import Any

# EMA over ~50 optimizer steps: long enough to tame the per-step noise, short against runs of a few hundred
# steps, so the logged value follows training.
EMA_BETA = 0.98


def _check_sizes(b_small: float, b_big: float) -> None:
    if not 0 < b_small < b_big:
        raise ValueError(f"need 0 < b_small < b_big, got b_small={b_small}, b_big={b_big}")


def g2_estimate(b_small: float, sq_small: float, b_big: float, sq_big: float) -> float:
    """Unbiased estimate of |G|² from the squared norms of mean gradients over b_small and b_big examples
    (`sq_small` may itself be a mean of several b_small-batch squared norms; the estimate stays unbiased)."""
    _check_sizes(b_small, b_big)
    return (b_big * sq_big - b_small * sq_small) / (b_big - b_small)


def trace_estimate(b_small: float, sq_small: float, b_big: float, sq_big: float) -> float:
    """Unbiased estimate of tr(Σ), the summed per-example gradient variance; arguments as for g2_estimate."""
    _check_sizes(b_small, b_big)
    return (sq_small - sq_big) / (1.0 / b_small - 1.0 / b_big)


class NoiseScaleEMA:
    """Bias-corrected EMAs of the two unbiased estimates; B_simple is the ratio of the two averages."""

    def __init__(self, beta: float = EMA_BETA):
        if not 0 <= beta < 1:
            raise ValueError(f"beta must be in [0, 1), got {beta}")
        self.beta = beta
        self.g2 = 0.0  # raw (not yet bias-corrected) EMA of the |G|² estimates
        self.trace = 0.0  # same for tr(Σ)
        self.n = 0  # steps folded in

    def update(self, b_small: float, sq_small: float, b_big: float, sq_big: float) -> None:
        """Fold in one step. A non-finite step (a diverging run) is skipped so it cannot poison the averages."""
        g2 = g2_estimate(b_small, sq_small, b_big, sq_big)
        trace = trace_estimate(b_small, sq_small, b_big, sq_big)
        if not (math.isfinite(g2) and math.isfinite(trace)):
            return
        self.g2 = self.beta * self.g2 + (1 - self.beta) * g2
        self.trace = self.beta * self.trace + (1 - self.beta) * trace
        self.n += 1

    def _corrected(self, raw: float) -> float:
        return raw / (1 - self.beta**self.n) if self.n else math.nan

    @property
    def g2_mean(self) -> float:
        return self._corrected(self.g2)

    @property
    def trace_mean(self) -> float:
        return self._corrected(self.trace)

    @property
    def b_simple(self) -> float:
        """tr(Σ)/|G|² in examples (sequences); NaN before the first step and while the |G|² average is <= 0
        (noise dominates so much that the gradient is not yet resolved)."""
        g2 = self.g2_mean
        return self.trace_mean / g2 if g2 > 0 else math.nan

    def state_dict(self) -> dict[str, Any]:
        return {"beta": self.beta, "g2": self.g2, "trace": self.trace, "n": self.n}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.beta, self.g2, self.trace, self.n = state["beta"], state["g2"], state["trace"], state["n"]
