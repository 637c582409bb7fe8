"""Convergence speedup (paper-notes §5.2, Fig. 3): how much larger a token budget the reference architecture
needs to reach the candidate's final validation loss.

Each budget is a full run with its own schedule, so the reference's loss-vs-budget curve is made of final losses
(mean over seeds per budget). For a candidate run with final loss L at budget D, the reference budget D_ref(L) is
found on that curve by linear interpolation in log tokens (first crossing); ratio = D_ref / D. A candidate loss
below every reference run has "no reference"; one above every reference run would need extrapolation below the
smallest reference budget and is marked "above reference" — neither is guessed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ant.laws.fits import FitError

OK, NO_REF, ABOVE_REF = "ok", "no reference", "above reference"


def _ref_curve(ref: pd.DataFrame, loss: str) -> tuple[np.ndarray, np.ndarray]:
    m = ref.groupby("tokens")[loss].mean().sort_index()
    return np.log(m.index.to_numpy(float)), m.to_numpy(float)


def reference_tokens(log_tok: np.ndarray, ref_loss: np.ndarray, target: float) -> tuple[float, str]:
    """Tokens at which the reference curve first reaches `target` (log-token interpolation)."""
    if target < ref_loss.min():
        return np.nan, NO_REF
    if target >= ref_loss[0]:
        return (float(np.exp(log_tok[0])), OK) if target == ref_loss[0] else (np.nan, ABOVE_REF)
    for i in range(1, len(ref_loss)):
        if ref_loss[i] <= target:  # crossing between i-1 and i
            f = (ref_loss[i - 1] - target) / (ref_loss[i - 1] - ref_loss[i])
            return float(np.exp(log_tok[i - 1] + f * (log_tok[i] - log_tok[i - 1]))), OK
    return np.nan, NO_REF  # unreachable: target >= min was checked


@dataclass
class Speedup:
    table: pd.DataFrame  # per candidate budget: tokens, loss, n_seeds, ref_tokens, ratio, status
    mean_ratio: float
    ci: tuple[float, float]
    n_boot: int
    level: float

    def to_dict(self) -> dict:
        return {
            "mean_ratio": self.mean_ratio,
            "mean_speedup_pct": 100 * (self.mean_ratio - 1),
            "ci": list(self.ci),
            "level": self.level,
            "n_boot": self.n_boot,
            "per_budget": self.table.to_dict(orient="records"),
        }


def _check(df: pd.DataFrame, name: str, loss: str) -> pd.DataFrame:
    for c in ("tokens", loss):
        if c not in df:
            raise FitError(f"convergence_speedup: {name} lacks column {c!r}")
    x = df[[c for c in ("tokens", loss, "seed") if c in df]].copy()
    x = x[np.isfinite(x[loss].astype(float)) & (x["tokens"].astype(float) > 0)]
    if "seed" not in x:
        x["seed"] = 0
    return x


def _ratios(ref: pd.DataFrame, cand: pd.DataFrame, loss: str) -> pd.DataFrame:
    lt, rl = _ref_curve(ref, loss)
    rows = []
    for tok, g in cand.groupby("tokens"):
        L = float(g[loss].mean())
        rt, status = reference_tokens(lt, rl, L)
        rows.append(
            {"tokens": float(tok), "loss": L, "n_seeds": len(g), "ref_tokens": rt, "ratio": rt / tok, "status": status}
        )
    return pd.DataFrame(rows)


def _resampled_means(df: pd.DataFrame, loss: str, n_boot: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """(sorted tokens, means[n_boot, n_budgets]) with the seeds of every budget resampled with replacement."""
    toks, cols = [], []
    for tok, g in df.groupby("tokens"):
        v = g[loss].to_numpy(float)
        toks.append(float(tok))
        cols.append(v[rng.integers(0, len(v), (n_boot, len(v)))].mean(axis=1))
    return np.array(toks), np.stack(cols, axis=1)


def _bootstrap(ref: pd.DataFrame, cand: pd.DataFrame, loss: str, n_boot: int, seed: int) -> list[float]:
    if ref.groupby("tokens").size().max() == 1 and cand.groupby("tokens").size().max() == 1:
        return []  # one seed per budget: no seed-level uncertainty to resample
    rng = np.random.default_rng(seed)
    rt, rm = _resampled_means(ref, loss, n_boot, rng)
    ct, cm = _resampled_means(cand, loss, n_boot, rng)
    lt, out = np.log(rt), []
    for b in range(n_boot):
        r = [reference_tokens(lt, rm[b], L) for L in cm[b]]
        ratios = [t / tok for (t, st), tok in zip(r, ct) if st == OK]
        if ratios:
            out.append(float(np.mean(ratios)))
    return out


def convergence_speedup(
    ref: pd.DataFrame,
    cand: pd.DataFrame,
    *,
    loss: str = "final_val_loss",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Speedup:
    """`ref`, `cand`: one row per run (one architecture and size each) with columns tokens, `loss` and optionally
    seed. Mean ratio over the budgets that have a reference; its CI resamples seeds within every budget of both
    architectures (percentile bootstrap)."""
    ref, cand = _check(ref, "ref", loss), _check(cand, "cand", loss)
    if ref["tokens"].nunique() < 2:
        raise FitError(f"the reference needs runs at >= 2 token budgets, got {ref['tokens'].nunique()}")
    if cand.empty:
        raise FitError("the candidate has no run with a finite loss")
    table = _ratios(ref, cand, loss)
    valid = table["status"] == OK
    mean = float(table.loc[valid, "ratio"].mean()) if valid.any() else np.nan
    boots = _bootstrap(ref, cand, loss, n_boot, seed) if valid.any() and n_boot > 0 else []
    if boots:
        ci = tuple(float(v) for v in np.percentile(boots, [50 * (1 - level), 50 * (1 + level)]))
    else:
        ci = (np.nan, np.nan)
    return Speedup(table, mean, ci, len(boots), level)
