"""IsoFLOP by design (issue 24, item 4; Chinchilla approach 2 with final losses): choose, per compute level, the
sizes that bracket the expected optimum, then read N_opt(C) off the runs' final losses, with an interval from a
bootstrap over runs, and approach 3 (ant.laws.chinchilla) beside it.

Design (`design_isoflop`): a level C trains size N for D = C / F(N) tokens (F: training FLOPs per token of that
size). The expected optimum N_guess(C) is where D / N equals `tpp_guess` (20, the paper's and Chinchilla's regime);
each level takes the `per_level` sizes of the ladder nearest N_guess in log N, at least one on each side (a level
whose sizes all lie on one side of its optimum cannot locate it), within `tpp_range` tokens per parameter. A level
that cannot hold `per_level` sizes is one clear error naming it.

Estimate (`isoflop_nopt`): per level, a parabola of loss in ln N through every size (mean over seeds), vertex inside
the level's sizes and opening upwards, else the level is dropped with its reason; N_opt = N0 C^a by least squares
over the kept levels. Interval: the whole procedure on resampled runs — with >= 2 runs (seeds) at a (level, size)
they are resampled within it; with one, a leverage-corrected parabola residual pooled over the levels is drawn for
it (`_parabola_residuals`). Each run is one unit either way: the evaluations of one run are never resampled as if
independent, which is what made the committed study's L(C) interval too narrow.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ant.errors import ConfigError
from ant.laws.fits import FitError

MIN_PER_LEVEL = 4


@dataclass(frozen=True)
class DesignPoint:
    level: float  # training FLOPs
    size: str
    num_params: float
    tokens: int
    tokens_per_param: float


def design_isoflop(
    levels: list[float],
    ladder: dict[str, float],
    flops_per_token: Callable[[str], float],
    *,
    per_level: int = MIN_PER_LEVEL,
    tpp_guess: float = 20.0,
    tpp_range: tuple[float, float] = (1.5, 400.0),
) -> list[DesignPoint]:
    """`ladder`: size name -> N; `flops_per_token(size)`: training FLOPs per token. Returns per_level points per
    level, sizes ascending."""
    if per_level < MIN_PER_LEVEL:
        raise ConfigError("per_level", f"an IsoFLOP level needs >= {MIN_PER_LEVEL} sizes, got {per_level}",
                          f">= {MIN_PER_LEVEL}")  # fmt: skip
    if not levels or any(not (c > 0 and math.isfinite(c)) for c in levels):
        raise ConfigError("levels", f"need positive finite compute levels, got {levels!r}")
    if len(ladder) < per_level:
        raise ConfigError("ladder", f"{len(ladder)} sizes cannot give {per_level} per level", f">= {per_level} sizes")
    names = sorted(ladder, key=ladder.__getitem__)
    out: list[DesignPoint] = []
    for C in sorted(levels):
        rows = []
        for s in names:
            n = float(ladder[s])
            d = C / flops_per_token(s)
            rows.append((s, n, d, d / n))
        # the optimum expected at tpp_guess: where D/N crosses it (log-linear between the neighbouring sizes)
        tpp = np.array([r[3] for r in rows])
        ok = [r for r in rows if tpp_range[0] <= r[3] <= tpp_range[1]]
        if len(ok) < per_level:
            msg = f"level {C:.3g} FLOPs: only {len(ok)} sizes train {tpp_range[0]:g}-{tpp_range[1]:g} tokens/param"
            raise ConfigError("levels", msg, f"a level that {per_level} sizes reach")
        lg = float(np.exp(np.interp(-math.log(tpp_guess), -np.log(tpp), np.log([r[1] for r in rows]))))
        below = sorted((r for r in ok if r[1] <= lg), key=lambda r: -r[1])
        above = sorted((r for r in ok if r[1] > lg), key=lambda r: r[1])
        if not below or not above:
            side = "below" if not below else "above"
            raise ConfigError("levels", f"level {C:.3g} FLOPs: no size {side} its expected optimum N ≈ {lg:.3g}",
                              "levels whose expected optimum lies inside the ladder")  # fmt: skip
        pick = [below.pop(0), above.pop(0)]
        while len(pick) < per_level and (below or above):  # alternate outwards, nearest in log N first
            cands = [x[0] for x in (below, above) if x]
            nxt = min(cands, key=lambda r: abs(math.log(r[1] / lg)))
            (below if nxt in below else above).remove(nxt)
            pick.append(nxt)
        if len(pick) < per_level:
            raise ConfigError("levels", f"level {C:.3g} FLOPs: {len(pick)} sizes", f">= {per_level}")
        for s, n, d, t in sorted(pick, key=lambda r: r[1]):
            out.append(DesignPoint(float(C), s, n, int(round(d)), t))
    return out


def budget_hps(
    num_params: float,
    tokens: float,
    bs_law: Callable[[float], float],
    lr_law: Callable[[float], float],
    *,
    tpp: float = 20.0,
) -> tuple[int, float]:
    """The batch chosen per budget (issue 24's C4; fixed before the runs, docs/study.md "IsoFLOP with the batch
    chosen per budget"): `bs_law(N)` and `lr_law(N)` are the optimal batch and LR fitted at `tpp` tokens/param
    (ant.laws.hp). The batch follows the tokens, not the size: a point training D tokens takes the batch the law
    gives where D = tpp * N, i.e. bs_law(D / tpp) (the critical batch grows with the data, Zhang et al. 2024,
    "How does critical batch size scale in pre-training?"). The LR is the size's fitted LR, moved by Adam's
    square-root rule for the batch change (Malladi et al. 2022): lr_law(N) * sqrt(batch / bs_law(N)). At D = tpp * N
    both are the size's fitted optimum. The batch is whole sequences (>= 1); the LR is kept to 3 significant digits
    so that run ids stay readable."""
    if not (num_params > 0 and tokens > 0):
        raise ConfigError("budget_hps", f"need N > 0 and tokens > 0, got N={num_params!r}, tokens={tokens!r}")
    b_n = float(bs_law(num_params))
    batch = max(1, int(round(float(bs_law(tokens / tpp)))))
    lr = float(lr_law(num_params)) * math.sqrt(batch / b_n)
    return batch, float(f"{lr:.3g}")


# ---------------------------------------------------------------------------------------------- estimate
@dataclass
class IsoFlopEstimate:
    a: float  # N_opt ∝ C^a
    ci: tuple[float, float]
    levels: pd.DataFrame  # level, n_sizes, N_opt, kept, reason
    n_boot_ok: float  # share of resamples that gave an exponent
    reasons: list[str] = field(default_factory=list)
    lack_of_fit_sd: float | None = None  # rms of the pooled residuals the bootstrap draws (None: no level of 4+)

    @property
    def determined(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict:
        lv = self.levels
        return {"a": self.a, "ci": list(self.ci), "determined": self.determined, "reasons": self.reasons,
                "boot_ok": self.n_boot_ok,
                "levels": {k: lv[k].tolist() for k in lv.columns}}  # fmt: skip


def vertex(lN: np.ndarray, loss: np.ndarray) -> tuple[float, str, str]:
    """One level's parabola over log N: its vertex (NaN unless inside the level's sizes), why not, and where a
    level without one has its optimum: "low" (past the smallest size: the vertex lies below it, or, where the
    parabola opens downwards, the smallest size has the lower loss of the two ends), "high", or "" (< 3 sizes, or
    the vertex inside)."""
    if len(np.unique(lN)) < 3:
        return math.nan, "< 3 sizes", ""
    c2, c1, _ = np.polyfit(lN, loss, 2)
    ends = loss[np.argmin(lN)], loss[np.argmax(lN)]
    if not c2 > 0:
        return math.nan, "the parabola opens downwards", "low" if ends[0] < ends[1] else "high"
    v = -c1 / (2 * c2)
    if not lN.min() < v < lN.max():
        return (
            math.nan,
            "the vertex lies outside the level's sizes (an edge optimum)",
            "low" if v <= lN.min() else "high",
        )
    return v, "", ""


def _levels(df: pd.DataFrame) -> pd.DataFrame:
    lvl, n, loss = (df[k].to_numpy(float) for k in ("level", "num_params", "loss"))
    rows = []
    for C in np.unique(lvl):
        at = lvl == C
        sizes, inv = np.unique(n[at], return_inverse=True)
        m = np.bincount(inv, weights=loss[at]) / np.bincount(inv)  # mean over seeds per size
        v, why, _ = vertex(np.log(sizes), m)
        rows.append({"level": float(C), "n_sizes": len(sizes), "N_opt": math.exp(v) if np.isfinite(v) else math.nan,
                     "kept": bool(np.isfinite(v)), "reason": why})  # fmt: skip
    return pd.DataFrame(rows)


def _slope(lv: pd.DataFrame) -> float:
    k = lv[lv["kept"]]
    if len(k) < 3:
        return math.nan
    return float(np.polyfit(np.log(k["level"]), np.log(k["N_opt"]), 1)[0])


def _parabola_residuals(x: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Each run's fitted loss on its level's parabola (mean over seeds per size), and the pooled modified residuals
    to resample: raw residuals of a 3-parameter parabola through 4 sizes have 1 dof and are ~2x too small (a
    residual bootstrap from them gave 95 % intervals that held a known exponent 52-56 % of the time, 25 constructed
    draws), so each is divided by sqrt(1 - leverage) (Davison & Hinkley 1997, eq. 6.9), centred, and pooled over
    the levels (one noise scale: the runs share a set-up); a level of 3 sizes has no residual information."""
    fitted = np.full(len(x), np.nan)
    pooled = []
    for _, g in x.groupby("level"):
        m = g.groupby("num_params")["loss"].mean()
        if len(m) < 3:
            continue
        lx = np.log(m.index.to_numpy(float))
        p = np.polyfit(lx, m.to_numpy(float), 2)
        fitted[g.index] = np.polyval(p, np.log(g["num_params"].to_numpy(float)))
        if len(m) > 3 and len(m) == len(g):  # one run per size: the runs are the parabola's points
            X = np.vander(lx, 3)
            h = np.einsum("ij,jk,ik->i", X, np.linalg.pinv(X.T @ X), X)
            r = (m.to_numpy(float) - np.polyval(p, lx)) / np.sqrt(np.clip(1 - h, 1e-9, None))
            pooled.extend(r - r.mean())
    return fitted, np.asarray(pooled, dtype=float)


def isoflop_nopt(df: pd.DataFrame, *, loss: str = "final_val_loss", boot: int = 500, level: float = 0.95,
                 seed: int = 0) -> IsoFlopEstimate:  # fmt: skip
    """`df`: one row per run with columns `level` (its design compute), num_params and `loss`."""
    for col in ("level", "num_params", loss):
        if col not in df:
            raise FitError(f"isoflop_nopt: missing column {col!r} (need level, num_params, {loss})")
    x = df[["level", "num_params"]].assign(loss=pd.to_numeric(df[loss], errors="coerce")).dropna()
    x = x.reset_index(drop=True)
    lv = _levels(x)
    a = _slope(lv)
    reasons = [] if np.isfinite(a) else [f"{int(lv['kept'].sum())} of {len(lv)} levels give an N_opt (need 3)"]
    fitted, resid = _parabola_residuals(x)
    cells = [g.index.to_numpy() for _, g in x.groupby(["level", "num_params"])]
    rng = np.random.default_rng(seed)
    samples = []
    for _ in range(boot):
        idx, lossb = [], x["loss"].to_numpy().copy()
        for ix in cells:
            if len(ix) >= 2:
                idx.extend(rng.choice(ix, len(ix)))
            else:
                idx.extend(ix)
        idx = np.asarray(idx)
        single = np.array([len(ix) == 1 for ix in cells for _ in ix])
        if len(resid):  # one run per cell: a residual drawn for each run (a run is the unit)
            have = np.isfinite(fitted)
            lossb[have] = fitted[have] + rng.choice(resid, int(have.sum()))
        xb = x.iloc[idx].assign(loss=np.where(single, lossb[idx], x["loss"].to_numpy()[idx]))
        samples.append(_slope(_levels(xb)))
    s = np.asarray(samples, dtype=float)
    ok = np.isfinite(s)
    q = (1 - level) / 2
    ci = (float(np.quantile(s[ok], q)), float(np.quantile(s[ok], 1 - q))) if ok.sum() >= 20 else (math.nan,) * 2
    if boot and ok.mean() < 0.8:
        reasons.append(f"only {ok.mean():.0%} of bootstrap resamples give >= 3 levels")
    sd = float(np.sqrt(np.mean(resid**2))) if len(resid) else None
    return IsoFlopEstimate(a, ci, lv, float(ok.mean()) if boot else math.nan, reasons, sd)


def approach3_beside(df: pd.DataFrame, *, loss: str = "final_val_loss", bootstrap: int = 100) -> dict:
    """Chinchilla approach 3 on the same runs (N, tokens, loss): its allocation exponent a = β / (α + β), or the
    reasons it is not determined. A dict for the report."""
    from ant.laws.chinchilla import fit_chinchilla  # late: the grid search allocates a few MB

    try:
        fit = fit_chinchilla(df["num_params"], df["tokens"], df[loss], bootstrap=bootstrap)
    except FitError as e:
        return {"determined": False, "reasons": [str(e)]}
    a = fit.beta / (fit.alpha + fit.beta)
    ci = (math.nan, math.nan)
    if fit.samples is not None:
        al, be = fit.samples[:, 3], fit.samples[:, 4]
        r = be / (al + be)
        r = r[np.isfinite(r)]
        if len(r) >= 20:
            ci = (float(np.quantile(r, 0.025)), float(np.quantile(r, 0.975)))
    return {"determined": fit.determined, "reasons": list(fit.reasons), "a": a, "ci": list(ci),
            "alpha": fit.alpha, "beta": fit.beta}  # fmt: skip
