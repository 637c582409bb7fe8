"""Curve fits with uncertainty: power laws (log-log least squares, Student-t CIs).

Chinchilla approach 3 (L = E + A/N^alpha + B/D^beta, its identifiability contract and the `determined` verdict)
is in ant/laws/chinchilla.py and re-exported here with FitError and the input checks (ant/laws/fitdata.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ant.laws.chinchilla import ChinchillaFit, fit_chinchilla
from ant.laws.fitdata import FitError, clean, same_length


# ---------------------------------------------------------------------------------------------- power law
@dataclass
class PowerLawFit:
    """y = coef * x^exponent, fitted as log y = log coef + exponent log x by ordinary least squares."""

    coef: float
    exponent: float
    r2: float
    n: int
    cov: np.ndarray  # 2x2 covariance of (log coef, exponent)
    level: float = 0.95
    coef_ci: tuple[float, float] = (math.nan, math.nan)
    exponent_ci: tuple[float, float] = (math.nan, math.nan)

    def predict(self, x) -> np.ndarray:
        return self.coef * np.asarray(x, dtype=float) ** self.exponent

    def predict_ci(self, x, level: float | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Delta-method interval of the prediction: var(log y) = J^T Cov J with J = (1, log x), Student-t."""
        lx = np.log(np.asarray(x, dtype=float))
        J = np.stack([np.ones_like(lx), lx], axis=-1)
        sd = np.sqrt(np.einsum("...i,ij,...j->...", J, self.cov, J))
        t = _t_quantile(level or self.level, self.n - 2)
        mid = np.log(self.coef) + self.exponent * lx
        return np.exp(mid), np.exp(mid - t * sd), np.exp(mid + t * sd)

    def to_dict(self) -> dict:
        return {
            "coef": self.coef,
            "exponent": self.exponent,
            "r2": self.r2,
            "n": self.n,
            "level": self.level,
            "coef_ci": list(self.coef_ci),
            "exponent_ci": list(self.exponent_ci),
            "cov_logcoef_exponent": self.cov.tolist(),
        }


def _t_quantile(level: float, dof: int) -> float:
    return float(stats.t.ppf(0.5 + level / 2, dof)) if dof > 0 else math.inf


def fit_power_law(x, y, *, level: float = 0.95) -> PowerLawFit:
    """Least squares of log y on log x. CIs are Student-t with n - 2 degrees of freedom (delta method for coef)."""
    x, y = clean("x", x), clean("y", y)
    same_length(x=x, y=y)
    if x.size < 3:
        raise FitError(f"a power law with CIs needs at least 3 points, got {x.size}")
    if np.unique(x).size < 2:
        raise FitError("x has a single distinct value: the exponent is undetermined")
    lx, ly = np.log(x), np.log(y)
    X = np.stack([np.ones_like(lx), lx], axis=1)
    theta, *_ = np.linalg.lstsq(X, ly, rcond=None)
    resid = ly - X @ theta
    ss_res, ss_tot = float(resid @ resid), float(((ly - ly.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else 1.0
    dof = x.size - 2
    sigma2 = ss_res / dof if dof > 0 else math.nan
    cov = sigma2 * np.linalg.inv(X.T @ X)
    t = _t_quantile(level, dof)
    se_logc, se_k = np.sqrt(np.diag(cov))
    logc, k = float(theta[0]), float(theta[1])
    return PowerLawFit(
        coef=math.exp(logc),
        exponent=k,
        r2=r2,
        n=int(x.size),
        cov=cov,
        level=level,
        coef_ci=(math.exp(logc - t * se_logc), math.exp(logc + t * se_logc)),
        exponent_ci=(k - t * se_k, k + t * se_k),
    )


__all__ = ["ChinchillaFit", "FitError", "PowerLawFit", "fit_chinchilla", "fit_power_law"]
