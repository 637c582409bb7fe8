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
  - with a bootstrap (`ci_checked`): the CI of E, A or B spans more than a decade (hi/lo > 10), the CI of alpha
    or beta is wider than 0.5 (the exponent unknown to +-0.25, more than the spread between published fits, and
    the allocation exponent a = beta/(alpha+beta) then unknown to about +-0.2), or more than 10 % of the resamples
    failed. Without a bootstrap only the bounds are judged: `ci_checked` is False and says the CI test was not made.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize
from threadpoolctl import threadpool_limits

from ant.laws.fits import FitError, _clean, _same_length

HUBER_DELTA = 1e-3
GRID = {
    "a": np.arange(0.0, 30.0, 5.0),  # 0, 5, ..., 25
    "b": np.arange(0.0, 30.0, 5.0),
    "e": np.arange(-1.0, 1.5, 0.5),  # -1, -0.5, ..., 1
    "alpha": np.arange(0.0, 2.5, 0.5),  # 0, 0.5, ..., 2
    "beta": np.arange(0.0, 2.5, 0.5),
}
# L-BFGS-B settings that run to convergence (scipy's defaults stop on this flat objective before the optimum).
LBFGS_OPTIONS = {"maxiter": 10000, "maxfun": 20000, "ftol": 1e-15, "gtol": 1e-12, "maxcor": 20}

# Identifiability contract and "determined" thresholds (module docstring says why).
MIN_SIZES, MIN_BUDGETS, MIN_POINTS = 3, 3, 8
EXPONENT_BOUNDS = (0.0, 3.0)
LOG_COEF_BOUNDS = (-10.0, 100.0)
LOG_E_BELOW_MIN_LOSS = 7.0
BOUND_TOL = 1e-4  # relative to the bound's width
MAX_CI_RATIO = 10.0  # E, A, B
MAX_EXPONENT_CI_WIDTH = 0.5  # alpha, beta
MAX_FAILED_FRACTION = 0.1
# Optimiser coordinates (a, b, e, alpha, beta) and how a reason names them.
COORDS = ("log A", "log B", "log E", "alpha", "beta")


# ---------------------------------------------------------------------------------------------- objective
def _grid_points() -> np.ndarray:
    """All 6*6*5*5*5 = 4500 initialisations as rows (a, b, e, alpha, beta)."""
    mesh = np.meshgrid(GRID["a"], GRID["b"], GRID["e"], GRID["alpha"], GRID["beta"], indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def _huber(r: np.ndarray, delta: float) -> np.ndarray:
    ar = np.abs(r)
    return np.where(ar <= delta, 0.5 * r * r, delta * (ar - 0.5 * delta))


def _grid_huber(grid: np.ndarray, lN, lD, lL, delta: float) -> np.ndarray:
    """Huber terms of every grid point at every data point, shape (n_grid, n_points). The objective of grid point
    k on a bootstrap resample is then a weighted row sum (weights = resample counts): one mat-vec per resample."""
    out = np.empty((len(grid), lN.size))
    for rows in np.array_split(np.arange(len(grid)), 10):  # chunks keep the temporaries small
        P = grid[rows]
        t1 = P[:, 0:1] - P[:, 3:4] * lN
        t2 = P[:, 1:2] - P[:, 4:5] * lD
        out[rows] = _huber(np.logaddexp(np.logaddexp(t1, t2), P[:, 2:3]) - lL, delta)
    return out


def _objective_and_grad(p: np.ndarray, lN, lD, lL, delta: float, w8: np.ndarray | None = None):
    """Objective and its analytic gradient. `w8` are per-point weights (bootstrap counts); None means 1.
    Written out term by term (no stacking): this function is most of the bootstrap's run time."""
    a, b, e, al, be = p
    t1 = a - al * lN
    t2 = b - be * lD
    m = np.maximum(np.maximum(t1, t2), e)
    w1, w2, w3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(e - m)
    s = w1 + w2 + w3
    r = m + np.log(s) - lL  # log L_hat - log L
    g = np.clip(r, -delta, delta)  # Huber'(r)
    h = g * (r - 0.5 * g)  # Huber(r): 0.5 r^2 inside [-delta, delta], delta (|r| - delta/2) outside
    if w8 is not None:
        h, g = h * w8, g * w8
    gs = g / s  # d pred / d t_j = w_j / s (softmax weights)
    g1, g2 = gs * w1, gs * w2
    # Element-wise products, not `@`: BLAS calls on 240-vectors cost more than the arithmetic, and a threaded BLAS
    # on a busy machine made the fit 10x slower.
    return h.sum(), np.array([g1.sum(), g2.sum(), (gs * w3).sum(), -(g1 * lN).sum(), -(g2 * lD).sum()])


def _minimise(starts: np.ndarray, lN, lD, lL, delta, bounds, w8=None) -> tuple[np.ndarray, float, int]:
    """L-BFGS-B from every start inside the box `bounds`; the best successful run (lowest objective) wins."""
    best_x, best_f, n_ok = None, math.inf, 0
    for x0 in starts:
        res = optimize.minimize(
            _objective_and_grad, x0, args=(lN, lD, lL, delta, w8), jac=True, method="L-BFGS-B", bounds=bounds,
            options=LBFGS_OPTIONS,
        )  # fmt: skip
        # ABNORMAL_TERMINATION_IN_LNSRCH at a converged point is common on this flat objective; accept it when the
        # projected gradient is tiny, as the optimum is then reached to machine precision.
        ok = res.success or float(np.max(np.abs(_projected(res.jac, res.x, bounds)))) < 1e-9
        if ok:
            n_ok += 1
            if res.fun < best_f:
                best_x, best_f = res.x, float(res.fun)
    if best_x is None:
        raise FitError("L-BFGS-B failed from every initialisation")
    return best_x, best_f, n_ok


def _projected(grad: np.ndarray, x: np.ndarray, bounds) -> np.ndarray:
    """The gradient without components that push into an active bound (those are optimal, not unconverged)."""
    lo, hi = np.array(bounds).T
    g = np.array(grad, dtype=float)
    g[((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0))] = 0.0
    return g


def search_bounds(loss: np.ndarray) -> list[tuple[float, float]]:
    """The L-BFGS-B box for (a, b, e, alpha, beta); only E's range depends on the data (its loss scale)."""
    l_min, l_max = float(np.log(loss.min())), float(np.log(loss.max()))
    return [LOG_COEF_BOUNDS, LOG_COEF_BOUNDS, (l_min - LOG_E_BELOW_MIN_LOSS, l_max), EXPONENT_BOUNDS, EXPONENT_BOUNDS]


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


def _to_params(x: np.ndarray) -> tuple[float, float, float, float, float]:
    a, b, e, al, be = (float(v) for v in x)
    try:
        return math.exp(e), math.exp(a), math.exp(b), al, be
    except OverflowError:
        # Cannot happen inside the search bounds; kept as a guard for callers that pass their own coordinates.
        raise FitError(
            f"Chinchilla fit diverged (log A = {a:.3g}, log B = {b:.3g}, log E = {e:.3g}): the data do not "
            "determine L = E + A/N^alpha + B/D^beta; use more model sizes and token budgets"
        ) from None


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
    N, D, L = _clean("N", N), _clean("D", D), _clean("loss", loss)
    _same_length(N=N, D=D, loss=L)
    n_distinct = check_design(N, D)
    # L-BFGS-B calls BLAS on 5-vectors thousands of times; a threaded OpenBLAS on a busy machine turned that into
    # spin-waiting (a 1 s fit took 20 s under load). One thread per process is faster everywhere.
    with threadpool_limits(limits=1):
        fit = _fit_chinchilla(N, D, L, bootstrap, top_k, boot_top_k, delta, level, seed, workers, progress)
    fit.n_distinct = n_distinct
    return fit


def _fit_chinchilla(N, D, L, bootstrap, top_k, boot_top_k, delta, level, seed, workers, progress) -> ChinchillaFit:
    lN, lD, lL = np.log(N), np.log(D), np.log(L)
    bounds = search_bounds(L)
    lo, hi = np.array(bounds).T
    grid = np.clip(_grid_points(), lo, hi)  # on the published points no grid value is outside the box
    H = _grid_huber(grid, lN, lD, lL, delta)
    starts = grid if top_k is None else _best_starts(grid, H, top_k)
    x, f, _ = _minimise(starts, lN, lD, lL, delta, bounds)
    fit = ChinchillaFit(*_to_params(x), objective=f, n=int(N.size), n_starts=len(starts), level=level)
    fit.bounds = dict(zip(COORDS, bounds))
    fit.reasons = _bound_reasons(x, bounds)
    if bootstrap > 0:
        fit.samples = _bootstrap(x, grid, H, lN, lD, lL, delta, bounds, bootstrap, boot_top_k, seed, workers,
                                 progress)  # fmt: skip
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
    fit.determined = not fit.reasons
    return fit


def _best_starts(grid: np.ndarray, H: np.ndarray, k: int, w8: np.ndarray | None = None) -> np.ndarray:
    vals = H.sum(axis=1) if w8 is None else np.einsum("ij,j->i", H, w8)  # einsum: no threaded BLAS (see above)
    return grid[np.argsort(vals, kind="stable")[: min(k, len(grid))]]


def _bootstrap_chunk(args) -> np.ndarray:
    """Refit `n` resamples; a top-level function so that worker processes can run it."""
    with threadpool_limits(limits=1):
        return _bootstrap_chunk_inner(*args)


def _bootstrap_chunk_inner(x_hat, grid, H, lN, lD, lL, delta, bounds, top_k, seed, n, progress) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.full((n, 5), np.nan)
    bar = _progress(n, "bootstrap") if progress else None
    for i in range(n):
        w8 = np.bincount(rng.integers(0, lN.size, lN.size), minlength=lN.size).astype(float)
        # A resample stays close to the full data, so its optimum is a good start; the best few grid points of
        # the resample guard against an optimum that moved to another basin.
        starts = np.vstack([x_hat, _best_starts(grid, H, top_k, w8)])
        try:
            x, _, _ = _minimise(starts, lN, lD, lL, delta, bounds, w8)
            out[i] = _to_params(x)
        except FitError:
            pass  # a failed resample stays NaN: excluded from the CIs and counted by _ci_reasons
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


def _bootstrap(x_hat, grid, H, lN, lD, lL, delta, bounds, n_boot, top_k, seed, workers, progress) -> np.ndarray:
    if workers <= 1:
        return _bootstrap_chunk_inner(x_hat, grid, H, lN, lD, lL, delta, bounds, top_k, seed, n_boot, progress)
    from concurrent.futures import ProcessPoolExecutor

    sizes = [len(c) for c in np.array_split(np.arange(n_boot), workers)]
    seeds = np.random.SeedSequence(seed).spawn(workers)
    jobs = [
        (x_hat, grid, H, lN, lD, lL, delta, bounds, top_k, s, n, progress and j == 0)
        for j, (s, n) in enumerate(zip(seeds, sizes))
    ]
    with ProcessPoolExecutor(workers) as ex:
        return np.vstack(list(ex.map(_bootstrap_chunk, jobs)))


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)
