"""Optimal learning rate and batch size per model size: the two-stage procedure of paper-notes §5.1 (Porian et
al. 2024), and the power laws BS(N), LR(N) of Fig. 2.

Stage 1, per (arch, N, batch): Akima interpolation of final loss over log LR (>= 3 LRs) -> best LR and its loss.
Stage 2, per (arch, N): Akima interpolation of those best losses over log batch (>= 3 batches; with fewer, the
best measured batch) -> optimal batch; the LR at that batch interpolates the (log batch, log best LR) pairs.
Optima that fall on the edge of the searched range are kept but flagged: they are bounds, not optima.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.interpolate import Akima1DInterpolator

from ant.laws.fits import FitError, PowerLawFit, fit_power_law

FINE = 801  # interpolation grid points per curve


def _akima_argmin(x: np.ndarray, y: np.ndarray) -> tuple[float, float, bool]:
    """Minimum of the Akima interpolant of y(x) on [min x, max x] -> (x*, y*, at_edge)."""
    order = np.argsort(x)
    x, y = x[order], y[order]
    grid = np.linspace(x[0], x[-1], FINE)
    vals = Akima1DInterpolator(x, y)(grid)
    i = int(np.nanargmin(vals))
    return float(grid[i]), float(vals[i]), i in (0, FINE - 1)


@dataclass
class HPTrends:
    arch: str
    per_batch: pd.DataFrame  # stage 1: N, batch_size, lr_best, loss_best, n_lrs, lr_at_edge
    per_size: pd.DataFrame  # stage 2: N, bs_opt, lr_opt, loss_opt, n_batches, bs_at_edge
    bs_fit: PowerLawFit | None
    lr_fit: PowerLawFit | None
    notes: list[str]

    def to_dict(self) -> dict:
        return {
            "arch": self.arch,
            "per_size": self.per_size.to_dict(orient="records"),
            "per_batch": self.per_batch.to_dict(orient="records"),
            "bs_fit": self.bs_fit.to_dict() if self.bs_fit else None,
            "lr_fit": self.lr_fit.to_dict() if self.lr_fit else None,
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
    if len(s1) >= 3:
        x, l_opt, edge = _akima_argmin(lb, loss)
    else:  # too few batches to interpolate: the best measured one, flagged
        i = int(np.argmin(loss))
        x, l_opt, edge = lb[i], loss[i], True
    lr = float(np.exp(np.interp(x, lb, np.log(s1["lr_best"].to_numpy(float)))))
    return {"bs_opt": float(np.exp(x)), "lr_opt": lr, "loss_opt": l_opt, "n_batches": len(s1), "bs_at_edge": edge}


def hp_trends(
    df: pd.DataFrame, *, loss: str = "final_val_loss", arch: str | None = None, min_sizes: int = 3
) -> dict[str, HPTrends]:
    """`df`: one row per run with columns arch, num_params, batch_size, lr and `loss` (the runs table of
    ant.laws.collect; non-completed or non-finite rows are ignored). Returns {arch: HPTrends}; an arch whose data
    cannot give a power law (fewer than `min_sizes` sizes with an optimum) gets bs_fit = lr_fit = None and a note.
    Raises FitError when no (arch, N, batch) group has 3 learning rates."""
    need = ["arch", "num_params", "batch_size", "lr", loss]
    missing = [c for c in need if c not in df]
    if missing:
        raise FitError(f"hp_trends: missing columns {missing}")
    x = df[need + (["status"] if "status" in df else [])].copy()
    if "status" in x:
        x = x[x["status"] == "completed"]
    x = x[np.isfinite(x[loss].astype(float)) & (x["lr"].astype(float) > 0)]
    if arch is not None:
        x = x[x["arch"] == arch]
    out: dict[str, HPTrends] = {}
    for a, ga in x.groupby("arch"):
        notes: list[str] = []
        rows = []
        for (N, bs), g in ga.groupby(["num_params", "batch_size"]):
            r = _stage1(g, loss)
            if r is None:
                notes.append(f"N={N:.3g} batch={bs}: {g['lr'].nunique()} LR(s), need >= 3")
                continue
            rows.append({"N": float(N), "batch_size": float(bs), **r})
        per_batch = pd.DataFrame(rows)
        if per_batch.empty:
            out[a] = HPTrends(a, per_batch, pd.DataFrame(), None, None, notes)
            continue
        per_size = pd.DataFrame([{"N": N, **_stage2(g)} for N, g in per_batch.groupby("N")])
        bs_fit = lr_fit = None
        if len(per_size) >= min_sizes:
            bs_fit = fit_power_law(per_size["N"], per_size["bs_opt"])
            lr_fit = fit_power_law(per_size["N"], per_size["lr_opt"])
        else:
            notes.append(f"{len(per_size)} size(s) with an optimum, need >= {min_sizes} for BS(N), LR(N)")
        out[a] = HPTrends(a, per_batch, per_size, bs_fit, lr_fit, notes)
    if not out or all(t.per_batch.empty for t in out.values()):
        raise FitError("hp_trends: no (arch, N, batch) group has >= 3 learning rates with a finite final loss")
    return out
