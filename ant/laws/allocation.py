"""The compute-optimal allocation from a Chinchilla fit (approach 3) and the three frontier methods side by side
(`frontier_three_ways`): the Pareto envelope and IsoFLOP profiles (ant/laws/frontier.py, ant/laws/isoflop.py) and
approach 3, each with its CI and determined verdict, and whether their CIs of the N_opt exponent overlap. See
frontier.py's docstring for the methods, their measured biases and what "determined" means."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ant.laws.fits import ChinchillaFit, FitError, fit_chinchilla
from ant.laws.frontier import LEVEL, MAX_CI_WIDTH, NAN3, Estimate, compute_frontier, exponent_reasons, json_safe
from ant.laws.isoflop import isoflop_profiles


# ---------------------------------------------------------------------------------------------- 3. Chinchilla
@dataclass
class ChinchillaAllocation:
    """N_opt = N0 C^a, D_opt = D0 C^b from L = E + A/N^alpha + B/D^beta under C = 6 N D: a = beta/(alpha+beta),
    b = alpha/(alpha+beta) (Hoffmann et al. eq. 4), with percentile CIs over the fit's bootstrap samples."""

    fit: ChinchillaFit | None
    points: pd.DataFrame  # the final points fitted: N, D, loss
    a: Estimate = NAN3
    b: Estimate = NAN3
    determined: bool = False
    reasons: list[str] = field(default_factory=list)
    level: float = LEVEL

    @property
    def n0(self) -> float:
        """N_opt(C) = n0 * C^a with the fit's point estimates."""
        if self.fit is None or not (self.fit.alpha > 0 and self.fit.beta > 0):
            return math.nan  # exponents at the 0 bound: no allocation (and eq. 4 would divide by 0)
        return float(self.fit.optimal_allocation(1.0)[0])

    def to_dict(self) -> dict:
        return json_safe(
            {
                "method": "chinchilla",
                "level": self.level,
                "a": list(self.a),
                "b": list(self.b),
                "N_opt_coef": self.n0,
                "determined": self.determined,
                "reasons": list(self.reasons),
                "fit": None if self.fit is None else self.fit.to_dict(),
                "n_points": int(len(self.points)),
                "points": {k: self.points[k].tolist() for k in ("N", "D", "loss")},
            }
        )


def _allocation_exponents(fit: ChinchillaFit, level: float) -> tuple[Estimate, Estimate]:
    ex = fit.allocation_exponents(level)
    return tuple(map(float, ex["a"])), tuple(map(float, ex["b"]))


def chinchilla_allocation(
    runs: pd.DataFrame,
    *,
    loss: str = "final_val_loss",
    n: str = "num_params",
    d: str = "tokens",
    fit: ChinchillaFit | None = None,
    bootstrap: int = 100,
    level: float = LEVEL,
    seed: int = 0,
    max_ci_width: float = MAX_CI_WIDTH,
) -> ChinchillaAllocation:
    """Approach 3 on final points (`runs`: one row per run). `fit` reuses an existing fit (its bootstrap samples
    give the CIs); otherwise fit_chinchilla runs with `bootstrap` resamples. An under-determined design gives
    determined=False with fit_chinchilla's reason, never an exception."""
    missing = [c for c in (loss, n, d) if c not in runs]
    if missing:
        raise FitError(f"chinchilla_allocation: missing columns {missing} (have {sorted(map(str, runs.columns))})")
    pts = runs[[n, d, loss]].astype(float).rename(columns={n: "N", d: "D", loss: "loss"})
    pts = pts.replace([np.inf, -np.inf], np.nan).dropna().reset_index(drop=True)
    out = ChinchillaAllocation(fit, pts, level=level)
    if fit is None:
        try:
            fit = fit_chinchilla(pts["N"], pts["D"], pts["loss"], bootstrap=bootstrap, level=level, seed=seed)
        except FitError as e:
            out.reasons.append(f"Chinchilla fit: {e}")
            return out
        out.fit = fit
    out.a, out.b = _allocation_exponents(fit, level)
    if not fit.determined:
        out.reasons += [f"Chinchilla fit: {r}" for r in fit.reasons] or ["Chinchilla fit: not determined"]
    out.reasons += exponent_reasons("a (N_opt exponent)", out.a, max_ci_width)
    out.reasons += exponent_reasons("b (D_opt exponent)", out.b, max_ci_width)
    out.determined = not out.reasons
    return out


# ---------------------------------------------------------------------------------------------- side by side
METHODS = ("envelope", "isoflop", "chinchilla")


def _failed(method: str, err: Exception) -> dict:
    return {"method": method, "a": [math.nan] * 3, "b": [math.nan] * 3, "N_opt_coef": None, "determined": False,
            "reasons": [str(err)]}  # fmt: skip


def last_points(curves: pd.DataFrame, *, loss: str = "val_loss", d: str = "tokens", run: str = "run_id"):
    """The last evaluation of every run (the final points approach 3 fits when no runs table is given)."""
    last = curves.dropna(subset=[loss]).sort_values([run, d]).groupby(run, sort=False).tail(1)
    return last.rename(columns={loss: "final_val_loss"}).reset_index(drop=True)


def overlap(x: Estimate, y: Estimate) -> bool:
    return x[1] <= y[2] and y[1] <= x[2]


def frontier_three_ways(
    curves_df: pd.DataFrame,
    runs_df: pd.DataFrame | None = None,
    *,
    loss: str = "val_loss",
    final_loss: str = "final_val_loss",
    compute: str = "flops",
    n: str = "num_params",
    d: str = "tokens",
    run: str = "run_id",
    level: float = LEVEL,
    max_ci_width: float = MAX_CI_WIDTH,
    n_levels: int = 20,
    boot: int = 200,
    bootstrap: int = 100,
    seed: int = 0,
    chinchilla_fit: ChinchillaFit | None = None,
) -> dict:
    """The N_opt exponent a three ways on one architecture's runs: the envelope and IsoFLOP profiles on
    `curves_df` (one row per run and evaluation), approach 3 on `runs_df` (one row per run with `final_loss`;
    default: the last evaluation of every curve) or on `chinchilla_fit`. `boot` is the IsoFLOP bootstrap over
    runs, `bootstrap` the Chinchilla one. Strictly JSON-safe:
    {"level", "methods": {name: to_dict()}, "a": {name: [v, lo, hi]}, "determined": [names], "agree": bool or None
    (None: fewer than 2 determined), "agreement": a sentence}; NaN is None (strict JSON)."""

    methods: dict[str, dict] = {}
    kw = dict(loss=loss, compute=compute, n=n, d=d, run=run, level=level, max_ci_width=max_ci_width)
    try:
        methods["envelope"] = compute_frontier(curves_df, **kw).to_dict()
    except FitError as e:
        methods["envelope"] = _failed("envelope", e)
    try:
        methods["isoflop"] = isoflop_profiles(curves_df, **kw, n_levels=n_levels, boot=boot, seed=seed).to_dict()
    except FitError as e:
        methods["isoflop"] = _failed("isoflop", e)
    runs = runs_df if runs_df is not None else last_points(curves_df, loss=loss, d=d, run=run)
    try:
        ch = chinchilla_allocation(runs, loss=final_loss if runs_df is not None else "final_val_loss", n=n, d=d,
                                   fit=chinchilla_fit, bootstrap=bootstrap, level=level, seed=seed,
                                   max_ci_width=max_ci_width)  # fmt: skip
        methods["chinchilla"] = ch.to_dict()
    except FitError as e:
        methods["chinchilla"] = _failed("chinchilla", e)
    a = {k: tuple(math.nan if v is None else float(v) for v in m["a"]) for k, m in methods.items()}
    det = [k for k in METHODS if methods[k]["determined"]]
    ci = ", ".join(f"{k} {a[k][0]:.3f} [{a[k][1]:.3f}, {a[k][2]:.3f}]" for k in det)
    if len(det) < 2:
        agree, text = None, f"{len(det)} of 3 methods determined ({ci or 'none'}): nothing to compare"
    else:
        apart = [(x, y) for i, x in enumerate(det) for y in det[i + 1 :] if not overlap(a[x], a[y])]
        agree = not apart
        text = (f"agree: the {level:.0%} CIs of a overlap ({ci})" if agree else
                "disagree: " + "; ".join(f"{x} and {y} CIs do not overlap" for x, y in apart) + f" ({ci})")  # fmt: skip
    return json_safe({"level": level, "methods": methods, "a": a, "determined": det, "agree": agree,
                      "agreement": text})  # fmt: skip
