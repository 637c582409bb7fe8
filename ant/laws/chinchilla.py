"""Chinchilla approach 3 (Hoffmann et al. 2022, as refitted by Besiroglu et al. 2024; points in ant/laws/assets):

    L(N, D) = E + A / N^alpha + B / D^beta,   fitted in the log-sum-exp form
    log L_hat = LSE(a - alpha log N, b - beta log D, e),   A = e^a, B = e^b, E = e^e,

minimising sum_i Huber_delta(log L_hat_i - log L_i) with delta = 1e-3, by L-BFGS-B with analytic gradients from a
grid of initialisations (a, b in {0, 5, ..., 25}, e in {-1, -0.5, ..., 1}, alpha, beta in {0, 0.5, ..., 2}),
keeping the best successful run. The objective is multi-modal and very flat along A/B, so the optimiser runs to
tight tolerances: with default tolerances it stops early and lands elsewhere (B ~ 1.3e4).

Speed: evaluating the objective at all 4500 grid points is one vectorised numpy expression; L-BFGS-B then starts
from the `top_k` best grid points only (the full grid is available with top_k=None). tests/laws/test_fits.py checks
that both land on the same optimum on the published data. Bootstrap refits start from the full-data optimum plus
the best few grid points of the resample.

Identifiability contract (issue 10). Five parameters are only pinned down by a design that varies both axes:
at fixed D the N-direction is a three-parameter curve c + A N^-alpha, so it needs >= 3 distinct sizes N (likewise
>= 3 distinct token budgets D for B, beta), and the whole surface needs >= 8 distinct (N, D) points (5 parameters
plus 3 degrees of freedom; seeds repeat a point, they do not add one), not all on one line in (log N, log D) (one
tokens-per-parameter ratio confounds the N and D terms). Otherwise fit_chinchilla raises
`FitError("under-determined: ...")` naming the short dimension; e.g. 3 sizes x 2 budgets x 2 seeds used to
return E ~ 1e-7, B ~ 1e77, beta ~ 15 without complaint.

A design that passes can still leave the parameters unidentified, so every fit carries `determined` and
`reasons`. The search is bounded (L-BFGS-B box): alpha, beta in [0, 3] (published LM exponents are 0.07-0.7),
log A, log B in [-10, 100] (A/N^alpha below e^-10 is invisible in a loss; e^100 leaves room for alpha = 3 up to
N ~ 1e13), log E in [log(min loss) - 7, log(max loss)] (E is a floor below the losses; E < min loss / 1100 means
the data show no floor). A fit is not determined when
  - any parameter ends within 1e-4 of the bound width of a search bound (the data push it out of the sane range);
  - a term (A/N^alpha or B/D^beta) is below e^-10 at every data point: invisible, so its pair is unidentified
    wherever on the flat ridge the optimizer stopped;
  - with a bootstrap (`ci_checked`): the CI of E, A or B spans more than a decade (hi/lo > 10), the CI of alpha
    or beta is wider than 0.5 (the exponent unknown to +-0.25, more than the spread between published fits, and
    the allocation exponent a = beta/(alpha+beta) then unknown to about +-0.2), or more than 10 % of the resamples
    failed. Without a bootstrap only the bounds are judged: `ci_checked` is False and says the CI test was not made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from ant.laws.chinchilla_search import (
    COORDS,
    EXPONENT_BOUNDS,
    HUBER_DELTA,
    Problem,
    bootstrap_refits,
    minimise,
    to_params,
)
from ant.laws.fitdata import FitError, clean, same_length

__all__ = ["EXPONENT_BOUNDS", "ChinchillaFit", "Problem", "check_design", "fit_chinchilla"]

# Identifiability contract and "determined" thresholds (module docstring says why).
MIN_SIZES, MIN_BUDGETS, MIN_POINTS = 3, 3, 8
BOUND_TOL = 1e-4  # relative to the bound's width
MAX_CI_RATIO = 10.0  # E, A, B
MAX_EXPONENT_CI_WIDTH = 0.5  # alpha, beta
MAX_FAILED_FRACTION = 0.1


# ---------------------------------------------------------------------------------------------- result
def _log_allocation(A, B, alpha, beta, logC6) -> tuple[np.ndarray, np.ndarray]:
    """log N_opt, log D_opt under C = 6 N D (Hoffmann et al. eq. 4), in logs so that A = e^100 cannot overflow.
    Broadcasts parameter arrays of shape (k, 1) against log(C/6) of shape (m,)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        s = alpha + beta
        log_g = (np.log(alpha) + np.log(A) - np.log(beta) - np.log(B)) / s
        log_n = log_g + beta / s * logC6
    return log_n, logC6 - log_n


@dataclass
class ChinchillaFit:
    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float
    n: int
    n_starts: int
    # Bootstrap summary (empty without bootstrap): name -> (low, high) percentile interval, name -> std error.
    level: float = 0.95
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    se: dict[str, float] = field(default_factory=dict)
    samples: np.ndarray | None = None  # (n_boot, 5) rows of (E, A, B, alpha, beta); NaN rows = failed resamples
    # Identifiability verdict (module docstring): False with one reason per failed check.
    determined: bool = True
    reasons: list[str] = field(default_factory=list)
    ci_checked: bool = False  # the bootstrap-CI checks were made (False: bounds only, no bootstrap)
    n_distinct: int = 0  # distinct (N, D) points
    bounds: dict[str, tuple[float, float]] = field(default_factory=dict)  # search box, keyed as COORDS

    PARAMS = ("E", "A", "B", "alpha", "beta")

    @property
    def params(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self.PARAMS}

    def predict(self, N, D) -> np.ndarray:
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return self.E + self.A / N**self.alpha + self.B / D**self.beta

    def optimal_allocation(self, C) -> tuple[np.ndarray, np.ndarray]:
        """Compute-optimal (N, D) under C = 6 N D (Hoffmann et al. eq. 4)."""
        log_n, log_d = _log_allocation(self.A, self.B, self.alpha, self.beta, np.log(np.asarray(C, dtype=float) / 6))
        return np.exp(log_n), np.exp(log_d)

    def _quantiles(self, level: float | None) -> list[float]:
        lv = self.level if level is None else level
        return [50 * (1 - lv), 50 * (1 + lv)]

    def allocation_exponents(self, level: float | None = None) -> dict[str, tuple[float, float, float]]:
        """N_opt ∝ C^a with a = beta/(alpha+beta) and D_opt ∝ C^b with b = alpha/(alpha+beta), each as (value, lo,
        hi): a percentile interval over the bootstrap samples at `level` (default: the fit's), NaN without them."""
        a = self.beta / (self.alpha + self.beta) if self.alpha + self.beta > 0 else math.nan
        a_lo = a_hi = math.nan
        S = self._finite_samples()
        with np.errstate(invalid="ignore", divide="ignore"):
            sa = S[:, 4] / (S[:, 3] + S[:, 4])
        if np.isfinite(sa).any():
            a_lo, a_hi = (float(q) for q in np.nanpercentile(sa, self._quantiles(level)))
        return {"a": (a, a_lo, a_hi), "b": (1 - a, 1 - a_hi, 1 - a_lo)}  # b = 1 - a, sample by sample

    def optimal_allocation_ci(self, C, level: float | None = None) -> dict[str, tuple[np.ndarray, ...]]:
        """At compute C (scalar or array): {"N": (mid, lo, hi), "D": (...), "tokens_per_param": (...)}, mid from the
        fit, lo/hi percentiles of the bootstrap samples' allocations (NaN without a bootstrap)."""
        logC6 = np.log(np.asarray(C, dtype=float) / 6)
        log_n, log_d = _log_allocation(self.A, self.B, self.alpha, self.beta, logC6)
        mids = {"N": log_n, "D": log_d, "tokens_per_param": log_d - log_n}
        S = self._finite_samples().reshape((-1, 5) + (1,) * logC6.ndim)  # parameters broadcast against C
        s_n, s_d = _log_allocation(S[:, 1], S[:, 2], S[:, 3], S[:, 4], logC6)
        boot = {"N": s_n, "D": s_d, "tokens_per_param": s_d - s_n}
        out = {}
        for k, mid in mids.items():
            v = np.where(np.isfinite(boot[k]), boot[k], np.nan)
            lo = hi = np.full(logC6.shape, np.nan)
            if np.isfinite(v).any():
                lo, hi = np.nanpercentile(v, self._quantiles(level), axis=0)
            out[k] = (np.exp(mid), np.exp(lo), np.exp(hi))
        return out

    def _finite_samples(self) -> np.ndarray:
        if self.samples is None:
            return np.empty((0, 5))
        return self.samples[np.isfinite(self.samples).all(axis=1)]

    def to_dict(self) -> dict:
        d = {**self.params, "objective": self.objective, "n": self.n, "n_distinct": self.n_distinct,
             "n_starts": self.n_starts, "determined": self.determined, "reasons": list(self.reasons),
             "ci_checked": self.ci_checked, "bounds": {k: list(v) for k, v in self.bounds.items()}}  # fmt: skip
        if self.ci:
            d["level"] = self.level
            d["ci"] = {k: list(v) for k, v in self.ci.items()}
            d["se"] = dict(self.se)
            d["n_boot"] = 0 if self.samples is None else int(len(self.samples))
        d["allocation"] = {k: list(v) for k, v in self.allocation_exponents().items()}
        return d


# ---------------------------------------------------------------------------------------------- checks
def check_design(N: np.ndarray, D: np.ndarray) -> int:
    """The identifiability contract: raises FitError("under-determined: ...") naming every short dimension;
    returns the number of distinct (N, D) points."""
    n_sizes, n_budgets = np.unique(N).size, np.unique(D).size
    n_points = np.unique(np.stack([N, D], axis=1), axis=0).shape[0]
    short = []
    if n_sizes < MIN_SIZES:
        short.append(f"{n_sizes} distinct model sizes N (need >= {MIN_SIZES}: A and alpha are undetermined)")
    if n_budgets < MIN_BUDGETS:
        short.append(f"{n_budgets} distinct token budgets D (need >= {MIN_BUDGETS}: B and beta are undetermined)")
    if n_points < MIN_POINTS:
        short.append(f"{n_points} distinct (N, D) points (need >= {MIN_POINTS}; {N.size} rows, seeds included)")
    elif _collinear(np.log(N), np.log(D)):
        short.append(
            f"N and D vary together: log D is a linear function of log N at all {n_points} points (e.g. one "
            "tokens-per-parameter ratio), so the N and D terms cannot be told apart; vary D at fixed N"
        )
    if short:
        raise FitError(
            "under-determined: " + "; ".join(short) + " — L = E + A/N^alpha + B/D^beta has 5 parameters; add model "
            "sizes and token budgets"
        )
    return int(n_points)


def _collinear(lN: np.ndarray, lD: np.ndarray) -> bool:
    """log D = c0 + c1 log N at every point, to rounding: the design moves along one line in (log N, log D)."""
    X = np.stack([np.ones_like(lN), lN], axis=1)
    resid = lD - X @ np.linalg.lstsq(X, lD, rcond=None)[0]
    return bool(np.ptp(resid) <= 1e-6)


def _bound_reasons(x: np.ndarray, bounds) -> list[str]:
    out = []
    for name, v, (lo, hi) in zip(COORDS, x, bounds):
        tol = BOUND_TOL * (hi - lo)
        side = "lower" if v - lo <= tol else "upper" if hi - v <= tol else None
        if side:
            hint = " (the data show no loss floor)" if name == "log E" and side == "lower" else ""
            out.append(f"{name} = {v:.4g} at its {side} search bound [{lo:.4g}, {hi:.4g}]{hint}")
    return out


def _invisible_terms(x: np.ndarray, N: np.ndarray, D: np.ndarray) -> list[str]:
    """A term A/N^alpha (or B/D^beta) below e^-10 at every point of the data is invisible in the losses (the
    reason log A's search bound sits at -10): A and alpha then slide along a flat ridge, and where on it the
    optimizer stops depends on the scipy build (an alpha of 1.09 with A = 4.3 is as good a fit as A -> 0), so the
    pair is not determined whether or not it reached a bound."""
    log_a, log_b, _, alpha, beta = (float(v) for v in x)
    out = []
    for name, log_c, exp, v in (("A/N^alpha", log_a, alpha, N), ("B/D^beta", log_b, beta, D)):
        largest = log_c - exp * float(np.log(np.min(v)))  # log of the term at the smallest N (or D) in the data
        if largest < -10:
            out.append(f"the {name} term is below e^-10 at every point of the data (largest e^{largest:.3g}): "
                       "it is invisible in the losses, its parameters are not determined")  # fmt: skip
    return out


def _ci_reasons(fit: ChinchillaFit) -> list[str]:
    out = []
    n_failed = int((~np.isfinite(fit.samples).all(axis=1)).sum())
    if n_failed > MAX_FAILED_FRACTION * len(fit.samples):
        out.append(f"{n_failed} of {len(fit.samples)} bootstrap refits failed")
    for k in ("E", "A", "B"):
        lo, hi = fit.ci[k]
        if not (lo > 0 and hi / lo <= MAX_CI_RATIO):
            out.append(f"{k}'s {fit.level:.0%} CI [{lo:.3g}, {hi:.3g}] spans more than a decade")
    for k in ("alpha", "beta"):
        lo, hi = fit.ci[k]
        if not hi - lo <= MAX_EXPONENT_CI_WIDTH:
            out.append(f"{k}'s {fit.level:.0%} CI [{lo:.3g}, {hi:.3g}] is wider than {MAX_EXPONENT_CI_WIDTH}")
    return out


# ---------------------------------------------------------------------------------------------- fit
def fit_chinchilla(
    N,
    D,
    loss,
    *,
    bootstrap: int = 0,
    top_k: int | None = 100,
    boot_top_k: int = 2,
    delta: float = HUBER_DELTA,
    level: float = 0.95,
    seed: int = 0,
    workers: int = 1,
    progress: bool = False,
) -> ChinchillaFit:
    """Fit L = E + A/N^alpha + B/D^beta (approach 3). `top_k=None` runs L-BFGS-B from all 4500 grid points;
    an integer starts it from the best `top_k` grid points by objective value. `bootstrap` > 0 resamples the
    points with replacement that many times (split over `workers` processes) and reports percentile CIs and
    standard errors; the result depends on (seed, workers), not on timing. Raises FitError on a design that cannot
    identify the parameters; returns `determined=False` with `reasons` when the fit itself does not pin them."""
    N, D, L = clean("N", N), clean("D", D), clean("loss", loss)
    same_length(N=N, D=D, loss=L)
    n_distinct = check_design(N, D)
    # L-BFGS-B calls BLAS on 5-vectors thousands of times; a threaded OpenBLAS on a busy machine turned that into
    # spin-waiting (a 1 s fit took 20 s under load). One thread per process is faster everywhere.
    with threadpool_limits(limits=1):
        prob = Problem.build(N, D, L, delta)
        starts = prob.grid if top_k is None else prob.best_starts(top_k)
        x, f, _ = minimise(prob, starts)
        fit = ChinchillaFit(*to_params(x), objective=f, n=prob.n, n_starts=len(starts), level=level)
        fit.bounds = dict(zip(COORDS, prob.bounds))
        fit.reasons = _bound_reasons(x, prob.bounds) + _invisible_terms(x, N, D)
        if bootstrap > 0:
            fit.samples = bootstrap_refits(
                prob, x, bootstrap, boot_top_k, seed=seed, workers=workers, progress=progress
            )
            _add_bootstrap_summary(fit, bootstrap)
    fit.determined = not fit.reasons
    fit.n_distinct = n_distinct
    return fit


def _add_bootstrap_summary(fit: ChinchillaFit, bootstrap: int) -> None:
    """Percentile CIs and standard errors from fit.samples, and the CI checks of the `determined` verdict."""
    ok = fit._finite_samples()
    if len(ok) >= 2:
        q_lo, q_hi = np.percentile(ok, fit._quantiles(None), axis=0)
        sd = np.std(ok, axis=0, ddof=1)
        fit.ci = {k: (float(q_lo[i]), float(q_hi[i])) for i, k in enumerate(fit.PARAMS)}
        fit.se = {k: float(sd[i]) for i, k in enumerate(fit.PARAMS)}
        fit.reasons += _ci_reasons(fit)
        fit.ci_checked = True
    else:
        fit.reasons.append(f"only {len(ok)} of {bootstrap} bootstrap refits succeeded")
