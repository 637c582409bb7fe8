"""Compute-optimal frontier (paper-notes §5.4, Fig. 4, Table J.1).

Every evaluation point of every run is a (compute C, loss) pair, C = FLOPs spent so far. Following Hoffmann et al.
approach 1 as the paper does: split the compute range into 1500 log-spaced bins, keep the lowest-loss point of each
bin (the lower envelope of all curves), and fit L(C) = A * C^-alpha (no irreducible term, as in the paper) to the
envelope. The model size N and tokens D of each envelope point give N_opt(C) = N0 C^aN and D_opt(C) = D0 C^aD,
with delta-method CIs (Student-t), as in Table J.1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ant.laws.fits import FitError, PowerLawFit, fit_power_law

N_BINS = 1500


@dataclass
class Frontier:
    points: pd.DataFrame  # the envelope: one row per non-empty bin (C, loss, N, D)
    loss: PowerLawFit  # L(C) = coef * C^exponent  (exponent = -alpha)
    n_opt: PowerLawFit  # N_opt(C)
    d_opt: PowerLawFit  # D_opt(C)

    @property
    def A(self) -> float:
        return self.loss.coef

    @property
    def alpha(self) -> float:
        return -self.loss.exponent

    def to_dict(self) -> dict:
        return {
            "A": self.A,
            "alpha": self.alpha,
            "alpha_ci": sorted(-v for v in self.loss.exponent_ci),
            "loss_fit": self.loss.to_dict(),
            "N_opt": self.n_opt.to_dict(),
            "D_opt": self.d_opt.to_dict(),
            "n_points": len(self.points),
            "compute_range": [float(self.points["C"].min()), float(self.points["C"].max())],
            "sizes": sorted(int(n) for n in self.points["N"].unique()),
        }


def compute_frontier(
    df: pd.DataFrame,
    *,
    loss: str = "val_loss",
    compute: str = "flops",
    n: str = "num_params",
    d: str = "tokens",
    n_bins: int = N_BINS,
    level: float = 0.95,
) -> Frontier:
    """`df`: one row per (run, evaluation) — the curves table of ant.laws.collect, or any table with the
    named columns (final points only work too, with fewer envelope points). Rows with a missing column value
    are dropped. The compute column defaults to 6 N D when absent."""
    missing = [c for c in (loss, n, d) if c not in df]
    if missing:
        raise FitError(f"compute_frontier: missing columns {missing} (have {sorted(df.columns)})")
    x = df[[c for c in (loss, n, d, compute) if c in df]].astype(float).copy()
    if compute not in x:
        x[compute] = 6.0 * x[n] * x[d]
    x = x.replace([np.inf, -np.inf], np.nan).dropna()
    x = x[(x[compute] > 0) & (x[loss] > 0)]
    if x[n].nunique() < 2:
        raise FitError(f"compute_frontier needs runs of at least 2 model sizes, got {x[n].nunique()}")
    if len(x) < 3:
        raise FitError(f"compute_frontier needs at least 3 finite points, got {len(x)}")
    lc = np.log(x[compute].to_numpy())
    edges = np.linspace(lc.min(), lc.max(), n_bins + 1)
    x["bin"] = np.clip(np.searchsorted(edges, lc, side="right") - 1, 0, n_bins - 1)
    env = x.loc[x.groupby("bin")[loss].idxmin()].sort_values(compute)
    env = env.rename(columns={compute: "C", loss: "loss", n: "N", d: "D"})[["C", "loss", "N", "D"]]
    env = env.reset_index(drop=True)
    if len(env) < 3:
        raise FitError(f"the compute envelope has only {len(env)} points; need at least 3")
    if env["N"].nunique() < 2:
        raise FitError("one model size is optimal at every compute budget: N_opt(C) is undetermined")
    return Frontier(
        points=env,
        loss=fit_power_law(env["C"], env["loss"], level=level),
        n_opt=fit_power_law(env["C"], env["N"], level=level),
        d_opt=fit_power_law(env["C"], env["D"], level=level),
    )
