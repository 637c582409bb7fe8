"""Optimal learning rate and batch size per model size: the two-stage procedure of paper-notes §5.1 (Porian et al.
2024), and the power laws BS(N), LR(N) of Fig. 2, one per budget regime.

A regime is a token budget, as tokens per parameter (the paper's HP sweep is at 20) or as absolute tokens. The
optimal LR and batch depend on the budget (longer runs want lower LRs and larger batches), so runs of different
budgets are never pooled: a longer run added at one (N, batch) would otherwise move that size's "optimal LR".
Budgets within `tol` (relative, in log: |ln b1 - ln b2| <= ln(1 + tol)) of a regime's smallest budget belong to
it, so 20 N rounded to whole tokens or whole optimizer steps stays one regime.

Stage 1, per (arch, regime, N, batch): Akima interpolation of final loss (mean over seeds) over log LR (>= 3 LRs)
-> best LR and its loss. Stage 2, per (arch, regime, N): Akima interpolation of those best losses over log batch
(>= 3 batches) -> optimal batch; the LR at that batch interpolates the (log batch, log best LR) pairs.

An optimum on the edge of the searched range is a bound, not an optimum. A size enters the power-law fits only
when its batch optimum is interior (>= 3 batches, minimum strictly inside) and the best LR of the batch(es) its
optimal LR is interpolated from is interior too; the other sizes are reported (`excluded`, with the reason) and
left out. A power law needs >= `min_sizes` (default 3) interior sizes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.interpolate import Akima1DInterpolator, PchipInterpolator

from ant.laws.fits import FitError, PowerLawFit, fit_power_law
from ant.status import RunStatus

FINE = 801  # interpolation grid points per curve
REGIME_BY = ("tokens_per_param", "tokens")
DEFAULT_TOL = 0.05


def akima_curve(x, y, n: int = FINE) -> tuple[np.ndarray, np.ndarray]:
    """The Akima interpolant of y(x) on a fine grid over [min x, max x] (x sorted, >= 3 distinct points)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    grid = np.linspace(x[0], x[-1], n)
    return grid, Akima1DInterpolator(x, y)(grid)


UNDERSHOOT = 1.0  # allowed dip of the interpolant below the lowest measured loss, in units of its larger gap


def _akima_argmin(x: np.ndarray, y: np.ndarray) -> tuple[float, float, bool]:
    """Minimum of the Akima interpolant of y(x) on [min x, max x] -> (x*, y*, at_edge).

    The interpolant may refine a measured minimum, not invent one (issue 24: the committed study's tiny3 anGPT curve
    measured 1.450 / 1.456 / 1.604 and its Akima minimum was 1.433, below every measured loss, set by the steep rise
    to the third point). Where the interpolant dips below the lowest measured loss by more than UNDERSHOOT x the
    larger gap to that point's grid neighbours (a parabola through three points dips at most 1/8 of it), the
    measured point stands instead — an edge optimum if it is the grid's first or last point."""
    order = np.argsort(x)
    xs, ys = np.asarray(x, dtype=float)[order], np.asarray(y, dtype=float)[order]
    grid, vals = akima_curve(xs, ys)
    i = int(np.nanargmin(vals))
    k = int(np.nanargmin(ys))
    if undershoots(ys, vals):
        return float(xs[k]), float(ys[k]), k in (0, len(ys) - 1)
    return float(grid[i]), float(vals[i]), i in (0, len(grid) - 1)


def undershoots(ys: np.ndarray, vals: np.ndarray) -> bool:
    """The Akima rule's test: does the interpolant (`vals`) dip below the lowest measured loss of `ys` (sorted by
    x) by more than UNDERSHOOT x that point's larger gap to its grid neighbours?"""
    k = int(np.nanargmin(ys))
    gap = max(ys[j] - ys[k] for j in (k - 1, k + 1) if 0 <= j < len(ys))
    return bool(ys[k] - np.nanmin(vals) > UNDERSHOOT * gap)


def trusted_curve(x, y, n: int = FINE) -> tuple[np.ndarray, np.ndarray, bool]:
    """The curve a figure should draw through y(x): the Akima interpolant, or, where the Akima rule rejects it
    (an invented minimum), the shape-preserving PCHIP interpolant, which never leaves the range of neighbouring
    points. Returns (grid, values, fell_back)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    grid, vals = akima_curve(x, y, n)
    if undershoots(y, vals):
        return grid, PchipInterpolator(x, y)(grid), True
    return grid, vals, False


def lr_sensitivity(lr, loss, factor: float = 3.0) -> dict:
    """Loss increase when the LR is `factor` times above (`up`) and below (`down`) the Akima optimum of one
    loss-vs-LR curve (>= 3 LRs; repeated LRs are averaged). Read off the Akima curve; None where factor x lr* lies
    outside the measured LRs, and both None when the optimum itself is on the edge (it is then only a bound)."""
    s = pd.Series(np.asarray(loss, dtype=float)).groupby(np.asarray(lr, dtype=float)).mean()
    if len(s) < 3:
        raise FitError(f"lr_sensitivity: need >= 3 distinct learning rates, got {len(s)}")
    lx = np.log(s.index.to_numpy(float))
    x, l_best, edge = _akima_argmin(lx, s.to_numpy(float))
    f = Akima1DInterpolator(lx, s.to_numpy(float))
    out = {"lr_best": math.exp(x), "loss_best": l_best, "lr_at_edge": edge, "factor": factor}
    for key, xq in (("up", x + math.log(factor)), ("down", x - math.log(factor))):
        inside = not edge and lx[0] <= xq <= lx[-1]
        out[key] = float(f(xq)) - l_best if inside else None
        out[f"{key}_rel"] = out[key] / l_best if inside else None
    return out


def regime_label(value: float, by: str) -> str:
    """'20 tokens/param' or '1.3B tokens': the key of a regime in hp_trends' result."""
    if by == "tokens_per_param":
        return f"{value:.3g} tokens/param"
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if value >= scale:
            return f"{value / scale:.3g}{unit} tokens"
    return f"{value:.3g} tokens"


def assign_regimes(
    df: pd.DataFrame, *, by: str = "tokens_per_param", tol: float = DEFAULT_TOL, loss: str = "final_val_loss"
) -> pd.DataFrame:
    """The usable rows of a runs table (completed, finite loss, lr > 0) with two more columns: `regime` (its label)
    and `budget` (tokens per parameter or tokens: the regime's smallest; budgets within `tol` of it share it). A
    run's budget is the requested one (`cfg.train.tokens` from its config) where known, else `tokens` (what ran:
    whole optimizer steps, so up to one batch more)."""
    if by not in REGIME_BY:
        raise FitError(f"hp_trends: by: unknown value {by!r} (allowed: {', '.join(REGIME_BY)})")
    if not tol >= 0:
        raise FitError(f"hp_trends: tol: must be >= 0, got {tol}")
    need = ["arch", "num_params", "batch_size", "lr", "tokens", loss]
    missing = [c for c in need if c not in df]
    if missing:
        raise FitError(f"hp_trends: missing columns {missing} (need {', '.join(need)})")
    x = df.copy()
    if "status" in x:
        x = x[x["status"] == RunStatus.COMPLETED]
    x = x[np.isfinite(x[loss].astype(float)) & (x["lr"].astype(float) > 0)]
    tokens = x["tokens"].astype(float)
    if "cfg.train.tokens" in x:
        tokens = pd.to_numeric(x["cfg.train.tokens"], errors="coerce").fillna(tokens)
    budget = tokens / x["num_params"].astype(float) if by == "tokens_per_param" else tokens
    x = x.assign(budget=budget.to_numpy(float))
    x = x[np.isfinite(x["budget"]) & (x["budget"] > 0)]
    values = np.unique(x["budget"].to_numpy(float))
    rep: dict[float, float] = {}
    start, members = None, []
    for v in [*values, math.inf]:  # anchor each regime at its smallest budget, so tolerances never chain
        if start is not None and (v == math.inf or math.log(v / start) > math.log1p(tol)):
            rep.update({m: start for m in members})
            start, members = None, []
        if v != math.inf:
            start = v if start is None else start
            members.append(v)
    x["budget"] = x["budget"].map(rep)
    x["regime"] = [regime_label(b, by) for b in x["budget"]]
    return x


@dataclass
class HPTrends:
    arch: str
    regime: str  # e.g. "20 tokens/param": the key of this trend in hp_trends' result
    by: str  # "tokens_per_param" or "tokens"
    budget: float  # the regime's smallest budget, in `by` units (runs round budgets up to whole steps)
    per_batch: pd.DataFrame  # stage 1: N, batch_size, lr_best, loss_best, n_lrs, lr_at_edge
    # stage 2: N, bs_opt, lr_opt, loss_opt, n_batches, bs_at_edge, lr_at_edge, in_fit, exclude_reason
    per_size: pd.DataFrame
    bs_fit: PowerLawFit | None
    lr_fit: PowerLawFit | None
    notes: list[str] = field(default_factory=list)

    @property
    def excluded(self) -> list[dict]:
        """Sizes left out of the power laws because an optimum is on the edge of the searched range."""
        if self.per_size.empty:
            return []
        ex = self.per_size[~self.per_size["in_fit"]]
        return [{"N": float(r.N), "reason": r.exclude_reason} for r in ex.itertuples()]

    @property
    def n_excluded(self) -> int:
        return len(self.excluded)

    @property
    def n_interior(self) -> int:
        return int(self.per_size["in_fit"].sum()) if not self.per_size.empty else 0

    def to_dict(self) -> dict:
        return {
            "arch": self.arch,
            "regime": self.regime,
            "by": self.by,
            "budget": self.budget,
            "per_size": self.per_size.to_dict(orient="records"),
            "per_batch": self.per_batch.to_dict(orient="records"),
            "bs_fit": self.bs_fit.to_dict() if self.bs_fit else None,
            "lr_fit": self.lr_fit.to_dict() if self.lr_fit else None,
            "n_interior": self.n_interior,
            "n_excluded": self.n_excluded,
            "excluded": self.excluded,
            "notes": self.notes,
        }


def _stage1(g: pd.DataFrame, loss: str) -> dict | None:
    m = g.groupby("lr")[loss].mean()  # seeds at the same LR are averaged
    if len(m) < 3:
        return None
    x, l_best, edge = _akima_argmin(np.log(m.index.to_numpy(float)), m.to_numpy(float))
    return {"lr_best": float(np.exp(x)), "loss_best": l_best, "n_lrs": len(m), "lr_at_edge": edge}


def _stage2(s1: pd.DataFrame) -> dict:
    s1 = s1.sort_values("batch_size")
    lb, loss = np.log(s1["batch_size"].to_numpy(float)), s1["loss_best"].to_numpy(float)
    lr_edge = s1["lr_at_edge"].to_numpy(bool)
    if len(s1) >= 3:
        x, l_opt, bs_edge = _akima_argmin(lb, loss)
    else:  # too few batches to interpolate: the best measured one, flagged
        i = int(np.argmin(loss))
        x, l_opt, bs_edge = lb[i], loss[i], True
    lr = float(np.exp(np.interp(x, lb, np.log(s1["lr_best"].to_numpy(float)))))
    # the batches np.interp draws lr_opt from: one if x is a grid point, else the two around it
    j = int(np.searchsorted(lb, x))
    used = [j] if j < len(lb) and np.isclose(lb[j], x) else [k for k in (j - 1, j) if 0 <= k < len(lb)]
    lr_at_edge = bool(lr_edge[used].any())
    reasons = []
    if len(s1) < 3:
        reasons.append(f"{len(s1)} batch size(s), need >= 3 to locate the batch optimum")
    elif bs_edge:
        reasons.append(f"batch optimum at the edge of {s1['batch_size'].min():g}-{s1['batch_size'].max():g}")
    if lr_at_edge:
        reasons.append("best LR at the edge of the LR grid")
    return {"bs_opt": float(np.exp(x)), "lr_opt": lr, "loss_opt": l_opt, "n_batches": len(s1),
            "bs_at_edge": bool(bs_edge), "lr_at_edge": lr_at_edge, "in_fit": not reasons,
            "exclude_reason": "; ".join(reasons)}  # fmt: skip


def _per_batch(g: pd.DataFrame, loss: str, notes: list[str] | None = None) -> pd.DataFrame:
    """Stage 1 for every (size, batch) of `g` with >= 3 LRs: N, batch_size, lr_best, loss_best, n_lrs, lr_at_edge.
    The others are skipped, each with a note when `notes` is given."""
    rows = []
    n = g["num_params"] if "num_params" in g else pd.Series(np.nan, index=g.index)
    for (N, bs), gb in g.groupby([n.rename("N"), g["batch_size"]], dropna=False):
        r = _stage1(gb, loss)
        if r is None:
            if notes is not None:
                notes.append(f"N={N:.3g} batch={bs:g}: {gb['lr'].nunique()} LR(s), need >= 3")
            continue
        rows.append({"N": float(N), "batch_size": float(bs), **r})
    return pd.DataFrame(rows)


def batch_optimum(cell: pd.DataFrame, loss: str = "final_val_loss") -> dict | None:
    """One (arch, size, budget) cell's batch optimum as the BS(N) fit locates it (stage 1 per batch with >= 3 LRs,
    stage 2 over those batches): {"bs_opt", "bs_at_edge", "batches"}; None with fewer than 3 such batches. Edge
    extension reads it, so that it extends exactly where the fit would exclude an edge optimum."""
    per_batch = _per_batch(cell, loss)
    if len(per_batch) < 3:
        return None
    s2 = _stage2(per_batch)
    return {
        "bs_opt": s2["bs_opt"],
        "bs_at_edge": s2["bs_at_edge"],
        "batches": sorted(float(b) for b in per_batch["batch_size"]),
    }


def _trend(a: str, regime: str, by: str, g: pd.DataFrame, loss: str, min_sizes: int) -> HPTrends:
    notes: list[str] = []
    per_batch = _per_batch(g, loss, notes)
    budget = float(g["budget"].iloc[0])
    if per_batch.empty:
        return HPTrends(a, regime, by, budget, per_batch, pd.DataFrame(), None, None, notes)
    per_size = pd.DataFrame([{"N": N, **_stage2(gs)} for N, gs in per_batch.groupby("N")])
    for r in per_size[~per_size["in_fit"]].itertuples():
        notes.append(f"N={r.N:.3g}: excluded from BS(N), LR(N) ({r.exclude_reason})")
    inside = per_size[per_size["in_fit"]]
    bs_fit = lr_fit = None
    if len(inside) >= max(3, min_sizes):
        bs_fit = fit_power_law(inside["N"], inside["bs_opt"])
        lr_fit = fit_power_law(inside["N"], inside["lr_opt"])
    else:
        notes.append(f"{len(inside)} size(s) with an interior optimum ({len(per_size) - len(inside)} excluded), "
                     f"need >= {max(3, min_sizes)} for BS(N), LR(N)")  # fmt: skip
    return HPTrends(a, regime, by, budget, per_batch, per_size, bs_fit, lr_fit, notes)


def hp_trends(
    df: pd.DataFrame,
    *,
    loss: str = "final_val_loss",
    arch: str | None = None,
    min_sizes: int = 3,
    by: str = "tokens_per_param",
    tol: float = DEFAULT_TOL,
) -> dict[str, dict[str, HPTrends]]:
    """`df`: one row per run with columns arch, num_params, batch_size, lr, tokens and `loss` (the runs table of
    ant.laws.collect; non-completed or non-finite rows are ignored). Returns {arch: {regime: HPTrends}}, regimes
    ordered by budget (see `assign_regimes` for `by` and `tol`); only regimes with at least one (N, batch) group
    of >= 3 LRs appear. A trend without >= `min_sizes` interior optima has bs_fit = lr_fit = None and a note.
    Raises FitError when no (arch, regime, N, batch) group has 3 learning rates."""
    x = assign_regimes(df, by=by, tol=tol, loss=loss)
    if arch is not None:
        x = x[x["arch"] == arch]
    out: dict[str, dict[str, HPTrends]] = {}
    for (a, _), g in x.groupby(["arch", "budget"], sort=True):
        regime = str(g["regime"].iloc[0])
        if g.groupby(["num_params", "batch_size"])["lr"].nunique().max() < 3:
            continue  # a budget sweep or compute-scaling runs at fixed HPs: no LR grid in this regime
        out.setdefault(str(a), {})[regime] = _trend(str(a), regime, by, g, loss, min_sizes)
    if not out:
        raise FitError("hp_trends: no (arch, regime, N, batch) group has >= 3 learning rates with a finite final loss")
    return out
