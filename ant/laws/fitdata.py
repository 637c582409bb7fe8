"""What every fit in ant.laws shares and imports first: the one error type and the checks on its input arrays.

Below both fits.py (power laws) and chinchilla.py (approach 3), so that neither imports the other's module to
get them (fits.py re-exports the Chinchilla fit; an import the other way would be a circle)."""

from __future__ import annotations

import numpy as np


class FitError(ValueError):
    """The data cannot support the requested fit (too few points, NaNs, a single size, ...)."""


def clean(name: str, x, *, positive: bool = True) -> np.ndarray:
    """`x` as a flat float array; FitError naming `name` if it is empty, not finite, or (positive=True) not > 0."""
    a = np.asarray(x, dtype=float).ravel()
    if a.size == 0:
        raise FitError(f"{name}: no data points")
    if not np.all(np.isfinite(a)):
        raise FitError(f"{name}: {int((~np.isfinite(a)).sum())} non-finite values (NaN/inf); drop them first")
    if positive and np.any(a <= 0):
        raise FitError(f"{name}: all values must be > 0 for a log-log fit, got min {a.min():g}")
    return a


def same_length(**arrays: np.ndarray) -> None:
    sizes = {k: v.size for k, v in arrays.items()}
    if len(set(sizes.values())) != 1:
        raise FitError(f"inputs differ in length: {sizes}")
