"""Convergence speedup (paper-notes §5.2, Fig. 3): how many times more tokens the reference architecture needs to
reach the candidate's final validation loss.

Data: one row per run (tokens, final loss, optional seed). Each budget is a full run with its own schedule, so the
reference's loss-vs-budget curve is made of final losses, averaged over the seeds of each budget (mean m_j of k_j
seeds at budget D_j). A candidate budget D with mean loss L needs D_ref(L) reference tokens; its ratio is
r = D_ref / D (> 1: the candidate is faster). Two estimators of D_ref are reported side by side:

1. interpolation (`table.ratio`, `interp`): the mean reference curve interpolated linearly in log tokens (first
   crossing). Defined only inside the reference's loss range. A candidate loss below every reference mean is a
   LOWER BOUND, r >= D_max / D (status "lower bound": the reference needs more than its largest budget); a loss
   above the mean at the smallest reference budget is an UPPER BOUND, r <= D_min / D ("upper bound").
2. fitted curve (`table.fit_ratio`, `fit`): L_ref(D) = E + B0 (D / D0)^-b (D0: geometric mean of the reference
   budgets) fitted to the reference means by least squares on relative error, weights k_j / m_j^2; inverted,
   D_ref = D0 (B0 / (L - E))^(1/b). Ratios outside [D_min, D_max] are "extrapolated". The fit is NOT DETERMINED,
   and gives no number, with < 4 reference budgets, E at its bound 0 (below 0.1 % of the smallest reference loss),
   b at a bound of [0.01, 3], a reference loss that does not fall with tokens (B0 <= 0), or a candidate loss at or
   below the fitted E (a loss the fitted reference never reaches).

Summary of an estimator: the geometric mean of its ratios over EVERY candidate budget, exp(mean_j ln r_j) -- the
mean of log ratios, so 1.4x faster at one budget and 1.4x slower at another cancel. In the interpolation summary
censored budgets enter at their bound, so with any lower bound (and no upper bound) the summary is itself a lower
bound (`bound="lower"`), with any upper bound an upper bound; bounds in both directions give no summary. The
headline (`summary`, `estimator`, `ci`) is the fitted-curve summary when the fit is determined, else the
interpolation summary, and `censored` says when the headline is a bound.

Interval: parametric bootstrap, percentile interval at `level`. Noise model: one run's final loss has relative sd
sigma, the same for both architectures (same training set-up), so a budget mean of k seeds has sd sigma m / sqrt(k).
sigma pools the seed spread within every budget of both architectures (k_j - 1 degrees of freedom each) with the
residuals of the reference fit (n_ref - 3 dof): one seed per budget still gives an interval when the reference has
>= 4 budgets, and more seeds shrink it twice (sigma / sqrt(k), and more dof). Each replicate draws sigma* from the
scaled-inverse-chi^2 distribution of the estimate (few dof widen the interval rather than pretend), perturbs every
budget mean of both architectures, and recomputes both estimators. With no dof there is no interval (`ci_reason`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ant.laws.fits import FitError
from ant.runfolder import jsonable as _finite  # JSON-safe scalar: NaN / inf -> None, numpy -> Python

OK, LOWER, UPPER = "ok", "lower bound", "upper bound"
EXTRAPOLATED, NOT_DETERMINED = "extrapolated", "not determined"
INTERP, FITTED = "interpolation", "fitted curve"
B_RANGE = (0.01, 3.0)  # bounds of the fitted exponent b; an optimum on either is "at a bound"
MIN_FIT_BUDGETS = 4  # 3 parameters + 1 degree of freedom for the residual scale
SUMMARY_DEFINITION = (
    "geometric mean over all candidate budgets of D_ref/D (exp of the mean log ratio); interpolation: censored "
    "budgets enter at their bound, so the summary is a bound when any budget is; fitted curve: every budget, "
    "extrapolated ones included; headline = fitted curve when determined, else interpolation"
)
_GRID = np.geomspace(*B_RANGE, 241)  # coarse search over b; refined per fit on a 41-point grid between neighbours


# ---------------------------------------------------------------------------------------------- reference fit
def _ls_at(b: np.ndarray, x: np.ndarray, y: np.ndarray, w: np.ndarray):
    """E, B0, rss, E clamped at 0?, flat? of the weighted least squares y ~ E + B0 exp(-b x) at fixed b.
    b: (R, K); x = ln(D / D0): (n,); y: (R, n); w: (n,). Closed form: the model is linear in (E, B0)."""
    X = np.exp(-b[..., None] * x)  # (R, K, n)
    sw, sx, sxx = w.sum(), (X * w).sum(-1), (X * X * w).sum(-1)
    sy, sxy = (y * w).sum(-1)[:, None], np.einsum("rkn,rn,n->rk", X, y, w)
    with np.errstate(divide="ignore", invalid="ignore"):
        B0 = (sw * sxy - sx * sy) / (sw * sxx - sx**2)
        E = (sy - B0 * sx) / sw
        clamped = E < 0  # a loss has E >= 0: refit through the origin
        B0 = np.where(clamped, sxy / sxx, B0)
        E = np.where(clamped, 0.0, E)
    flat = ~(B0 > 0)  # no decrease with tokens: the constant fit
    B0, E = np.where(flat, 0.0, B0), np.where(flat, sy / sw, E)
    rss = (w * (y[:, None, :] - E[..., None] - B0[..., None] * X) ** 2).sum(-1)
    return E, B0, rss, clamped & ~flat, flat


def _fit_curves(x: np.ndarray, y: np.ndarray, w: np.ndarray) -> dict[str, np.ndarray]:
    """Profile least squares over b, one fit per row of y (R, n): dict of (R,) arrays E, B0, b, rss, at_bound."""
    R, lg = len(y), np.log(_GRID)
    *_, rss, _, _ = _ls_at(np.broadcast_to(_GRID, (R, len(_GRID))), x, y, w)
    g, r = np.argmin(rss, axis=1), np.arange(R)
    lo, hi = lg[np.maximum(g - 1, 0)], lg[np.minimum(g + 1, len(_GRID) - 1)]
    for _ in range(2):  # two zooms: b to ~4e-5 relative, enough to tell E = 0 from E > 0 on noise-free data
        fine = np.exp(lo[:, None] + (hi - lo)[:, None] * np.linspace(0, 1, 41))
        E, B0, rss, clamped, flat = _ls_at(fine, x, y, w)
        i = np.argmin(rss, axis=1)
        step = (hi - lo) / 40
        lo, hi = np.log(fine[r, i]) - step, np.log(fine[r, i]) + step
    edge = (g == 0) | (g == len(_GRID) - 1)
    return {"E": E[r, i], "B0": B0[r, i], "b": fine[r, i], "rss": rss[r, i], "clamped": clamped[r, i],
            "flat": flat[r, i], "edge": edge}  # fmt: skip


def _invert(fit: dict[str, np.ndarray], D0: float, L: np.ndarray) -> np.ndarray:
    """Reference tokens at which the fitted curve reaches loss L (R, m); inf where it never does (L <= E)."""
    E, B0, b = (fit[k][:, None] for k in ("E", "B0", "b"))
    with np.errstate(divide="ignore", invalid="ignore"):
        d = D0 * (B0 / (L - E)) ** (1 / b)
    return np.where((L > E) & (B0 > 0), d, np.inf)


# ---------------------------------------------------------------------------------------------- interpolation
def _interp(log_tok: np.ndarray, ref: np.ndarray, L: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First crossing of each candidate loss L (R, m) on each reference curve ref (R, n), linear in log tokens.
    Returns reference tokens (at the bound when censored) and codes 0 ok, 1 lower bound, 2 upper bound."""
    reached = ref[:, None, :] <= L[..., None]  # (R, m, n)
    j = reached.argmax(-1)
    any_ = reached.any(-1)
    prev = np.take_along_axis(ref, np.maximum(j - 1, 0), axis=1)
    cur = np.take_along_axis(ref, j, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = np.where(j > 0, (prev - L) / (prev - cur), 0.0)
    lt = log_tok[np.maximum(j - 1, 0)] + f * (log_tok[j] - log_tok[np.maximum(j - 1, 0)])
    code = np.where(~any_, 1, np.where((j == 0) & (ref[:, :1] < L), 2, 0))
    tok = np.where(code == 1, np.exp(log_tok[-1]), np.where(code == 2, np.exp(log_tok[0]), np.exp(lt)))
    return tok, code


def _geomean(r: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.exp(np.log(r).mean(-1))


# ---------------------------------------------------------------------------------------------- result
@dataclass
class Estimate:
    """One estimator's summary over the candidate budgets (see the module docstring)."""

    summary: float  # geometric-mean ratio; NaN when not determined
    ci: tuple[float, float]  # percentile bootstrap interval; (NaN, NaN) when none; hi = inf: unbounded above
    # (to_dict: [None, None] = no interval, [lo, None] = unbounded above)
    bound: str | None = None  # interpolation: "lower" | "upper" when the summary is a bound
    determined: bool = True
    reason: str = ""  # why not determined / what to watch
    params: dict = field(default_factory=dict)  # fitted curve: E, B0, D0, b, ...

    def to_dict(self) -> dict:
        return {"summary": _finite(self.summary), "ci": [_finite(c) for c in self.ci], "bound": self.bound,
                "censored": self.bound is not None, "determined": self.determined, "reason": self.reason,
                **{k: _finite(v) for k, v in self.params.items()}}  # fmt: skip


@dataclass
class Speedup:
    table: pd.DataFrame  # per candidate budget: tokens, loss, n_seeds, ref_tokens, ratio, status, fit_* (+ CIs)
    interp: Estimate
    fit: Estimate
    level: float
    n_boot: int  # replicates drawn (0: no interval)
    noise: dict  # sigma_rel, dof, source
    ci_reason: str = ""  # why there is no interval

    @property
    def estimator(self) -> str:
        return FITTED if self.fit.determined else INTERP

    @property
    def headline(self) -> Estimate:
        return self.fit if self.fit.determined else self.interp

    @property
    def summary(self) -> float:
        return self.headline.summary

    mean_ratio = summary  # the name callers used before the summary became a geometric mean

    @property
    def ci(self) -> tuple[float, float]:
        return self.headline.ci

    @property
    def censored(self) -> bool:
        return self.headline.bound is not None

    def to_dict(self) -> dict:
        s = _finite(self.summary)
        return {
            "summary": s,
            "mean_ratio": s,  # same number, kept for older readers of fig3_speedup.json
            "speedup_pct": None if s is None else 100 * (s - 1),
            "ci": [_finite(c) for c in self.ci],
            "level": self.level,
            "n_boot": self.n_boot,
            "estimator": self.estimator,
            "censored": self.censored,
            "bound": self.headline.bound,
            "summary_definition": SUMMARY_DEFINITION,
            "ci_reason": self.ci_reason,
            "interpolation": self.interp.to_dict(),
            "fit": self.fit.to_dict(),
            "noise": {k: _finite(v) for k, v in self.noise.items()},
            "per_budget": [{k: _finite(v) for k, v in row.items()} for row in self.table.to_dict(orient="records")],
        }


# ---------------------------------------------------------------------------------------------- main
def _check(df: pd.DataFrame, name: str, loss: str) -> pd.DataFrame:
    for c in ("tokens", loss):
        if c not in df:
            raise FitError(f"convergence_speedup: {name} lacks column {c!r} (needs tokens, {loss}, optional seed)")
    x = df[[c for c in ("tokens", loss, "seed") if c in df]].copy()
    x = x[np.isfinite(x[loss].astype(float)) & (x["tokens"].astype(float) > 0)]
    return x.assign(seed=0) if "seed" not in x else x


def _means(df: pd.DataFrame, loss: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, int]:
    """Sorted budgets, mean losses, seed counts, within-budget sum of squared relative deviations and its dof."""
    g = df.groupby("tokens")[loss]
    m, k = g.mean(), g.size()
    dev = ((df[loss] / df["tokens"].map(m) - 1) ** 2).sum()
    return m.index.to_numpy(float), m.to_numpy(float), k.to_numpy(float), float(dev), int((k - 1).sum())


def _interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    s = samples[~np.isnan(samples)]
    if s.size == 0:
        return (np.nan, np.nan)
    a = 50 * (1 - level)  # order statistics, no interpolation: inf (unbounded replicates) stays inf
    return float(np.percentile(s, a, method="lower")), float(np.percentile(s, 100 - a, method="higher"))


def convergence_speedup(
    ref: pd.DataFrame,
    cand: pd.DataFrame,
    *,
    loss: str = "final_val_loss",
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> Speedup:
    """`ref`, `cand`: one row per run (one architecture and model size each) with columns tokens, `loss` and
    optionally seed. Both estimators, per budget and summarised, with bootstrap intervals (module docstring)."""
    ref, cand = _check(ref, "ref", loss), _check(cand, "cand", loss)
    if ref["tokens"].nunique() < 2:
        raise FitError(f"convergence_speedup: the reference needs runs at >= 2 token budgets, got "
                       f"{ref['tokens'].nunique()}")  # fmt: skip
    if cand.empty:
        raise FitError("convergence_speedup: the candidate has no run with a finite loss")
    if not 0 < level < 1:
        raise FitError(f"convergence_speedup: level must be in (0, 1), got {level}")
    rD, rm, rk, r_dev, r_dof = _means(ref, loss)
    cD, cm, ck, c_dev, c_dof = _means(cand, loss)
    D0 = float(np.exp(np.log(rD).mean()))
    x, w = np.log(rD / D0), rk / rm**2

    # interpolation
    itok, icode = (a[0] for a in _interp(np.log(rD), rm[None], cm[None]))
    iratio = itok / cD
    n_lo, n_up = int((icode == 1).sum()), int((icode == 2).sum())
    bound = "lower" if n_lo and not n_up else "upper" if n_up and not n_lo else None
    interp = Estimate(float(_geomean(iratio)), (np.nan, np.nan), bound, params={"n_ok": int((icode == 0).sum()),
                      "n_lower_bound": n_lo, "n_upper_bound": n_up})  # fmt: skip
    if n_lo and n_up:
        interp.summary, interp.determined = np.nan, False
        interp.reason = f"{n_lo} budget(s) are lower bounds and {n_up} upper bounds: their mean bounds nothing"
    elif bound:
        art = "an" if bound == "upper" else "a"
        interp.reason = f"{max(n_lo, n_up)} of {len(cD)} budgets censored: the summary is {art} {bound} bound"

    # fitted reference curve
    pfit = _fit_curves(x, rm[None], w)
    ftok = _invert(pfit, D0, cm[None])[0]
    fratio = ftok / cD
    p = {k: float(v[0]) for k, v in pfit.items() if k in ("E", "B0", "b")}
    reasons = []
    if len(rD) < MIN_FIT_BUDGETS:  # the other checks would only describe an arbitrary curve through the points
        reasons.append(f"{len(rD)} reference budgets (needs >= {MIN_FIT_BUDGETS} for E, B, b and a residual)")
    elif pfit["flat"][0]:
        reasons.append("the reference loss does not decrease with tokens")
    else:
        if pfit["clamped"][0] or p["E"] < 1e-3 * rm.min():  # E = 1e-4 on a loss of 3 is the bound, not a value
            reasons.append(f"E at its bound 0 (E = {p['E']:.2g})")
        if pfit["edge"][0]:
            reasons.append(f"b at a bound of [{B_RANGE[0]}, {B_RANGE[1]}] (b = {p['b']:.3g})")
        if np.isinf(ftok).any():
            reasons.append(f"{int(np.isinf(ftok).sum())} candidate loss(es) at or below the fitted E = {p['E']:.4g}")
    fit_ok = not reasons
    n_ext = int(((ftok < rD[0] * (1 - 1e-9)) | (ftok > rD[-1] * (1 + 1e-9))).sum()) if fit_ok else 0
    fit = Estimate(float(_geomean(fratio)) if fit_ok else np.nan, (np.nan, np.nan), None, fit_ok,
                   "; ".join(reasons) or (f"{n_ext} of {len(cD)} budgets extrapolated" if n_ext else ""),
                   {**p, "D0": D0, "n_budgets": len(rD), "n_extrapolated": n_ext})  # fmt: skip

    # noise scale: seed spread of both architectures + residuals of the reference fit
    dev, dof, src = r_dev + c_dev, r_dof + c_dof, []
    if r_dof + c_dof:
        src.append(f"seed spread ({r_dof + c_dof} dof)")
    if len(rD) >= MIN_FIT_BUDGETS and not pfit["flat"][0]:
        dev, dof = dev + float(pfit["rss"][0]), dof + len(rD) - 3
        src.append(f"reference fit residuals ({len(rD) - 3} dof)")
    sigma = math.sqrt(dev / dof) if dof else np.nan
    noise = {"sigma_rel": sigma, "dof": dof, "source": " + ".join(src) or "none"}

    table = pd.DataFrame({"tokens": cD, "loss": cm, "n_seeds": ck.astype(int), "ref_tokens": itok, "ratio": iratio,
                          "status": np.array([OK, LOWER, UPPER])[icode], "ratio_lo": np.nan, "ratio_hi": np.nan,
                          "fit_ref_tokens": ftok if fit_ok else np.nan, "fit_ratio": fratio if fit_ok else np.nan,
                          "fit_status": NOT_DETERMINED, "fit_ratio_lo": np.nan, "fit_ratio_hi": np.nan})  # fmt: skip
    if fit_ok:
        ext = (ftok < rD[0] * (1 - 1e-9)) | (ftok > rD[-1] * (1 + 1e-9))
        table["fit_status"] = np.where(ext, EXTRAPOLATED, OK)

    ci_reason, R = "", 0
    if not dof:
        ci_reason = (
            f"no degrees of freedom for the noise: one seed per budget and {len(rD)} reference budgets "
            f"(an interval needs >= 2 seeds at a budget or >= {MIN_FIT_BUDGETS} reference budgets)"
        )
    elif n_boot > 0:
        R, rng = n_boot, np.random.default_rng(seed)
        sig = sigma * np.sqrt(dof / rng.chisquare(dof, R))[:, None]
        rb = rm * (1 + sig * rng.standard_normal((R, len(rD))) / np.sqrt(rk))
        cb = cm * (1 + sig * rng.standard_normal((R, len(cD))) / np.sqrt(ck))
        ib = _interp(np.log(rD), rb, cb)[0] / cD
        interp.ci = _interval(_geomean(ib), level) if interp.determined else (np.nan, np.nan)
        table["ratio_lo"], table["ratio_hi"] = zip(*(_interval(c, level) for c in ib.T))
        if fit_ok:
            bfit = _fit_curves(x, rb, w)
            fb = _invert(bfit, D0, cb) / cD
            fit.ci = _interval(_geomean(fb), level)
            table["fit_ratio_lo"], table["fit_ratio_hi"] = zip(*(_interval(c, level) for c in fb.T))
            fit.params["boot_at_bound_frac"] = float((bfit["clamped"] | bfit["edge"] | bfit["flat"]).mean())
            fit.params["boot_unbounded_frac"] = float(np.isinf(fb).any(1).mean())
    return Speedup(table, interp, fit, level, R, noise, ci_reason)
