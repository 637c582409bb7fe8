"""Curve fits with uncertainty: power laws (log-log least squares) and Chinchilla approach 3.

Chinchilla approach 3 (Hoffmann et al. 2022, as refitted by Besiroglu et al. 2024; points in ant/laws/assets):

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
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import optimize, stats
from threadpoolctl import threadpool_limits

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


class FitError(ValueError):
    """The data cannot support the requested fit (too few points, NaNs, a single size, ...)."""


# ---------------------------------------------------------------------------------------------- input checks
def _clean(name: str, x, *, positive: bool = True) -> np.ndarray:
    a = np.asarray(x, dtype=float).ravel()
    if a.size == 0:
        raise FitError(f"{name}: no data points")
    if not np.all(np.isfinite(a)):
        raise FitError(f"{name}: {int((~np.isfinite(a)).sum())} non-finite values (NaN/inf); drop them first")
    if positive and np.any(a <= 0):
        raise FitError(f"{name}: all values must be > 0 for a log-log fit, got min {a.min():g}")
    return a


def _same_length(**arrays: np.ndarray) -> None:
    sizes = {k: v.size for k, v in arrays.items()}
    if len(set(sizes.values())) != 1:
        raise FitError(f"inputs differ in length: {sizes}")


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
    x, y = _clean("x", x), _clean("y", y)
    _same_length(x=x, y=y)
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


# ---------------------------------------------------------------------------------------------- Chinchilla
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


def _minimise(starts: np.ndarray, lN, lD, lL, delta, w8=None) -> tuple[np.ndarray, float, int]:
    """L-BFGS-B from every start; the best successful run (lowest objective) wins."""
    best_x, best_f, n_ok = None, math.inf, 0
    for x0 in starts:
        res = optimize.minimize(
            _objective_and_grad, x0, args=(lN, lD, lL, delta, w8), jac=True, method="L-BFGS-B", options=LBFGS_OPTIONS
        )
        # ABNORMAL_TERMINATION_IN_LNSRCH at a converged point is common on this flat objective; accept it when the
        # gradient is tiny, as the optimum is then reached to machine precision.
        ok = res.success or float(np.max(np.abs(res.jac))) < 1e-9
        if ok:
            n_ok += 1
            if res.fun < best_f:
                best_x, best_f = res.x, float(res.fun)
    if best_x is None:
        raise FitError("L-BFGS-B failed from every initialisation")
    return best_x, best_f, n_ok


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
    samples: np.ndarray | None = None  # (n_boot, 5) rows of (E, A, B, alpha, beta)

    PARAMS = ("E", "A", "B", "alpha", "beta")

    @property
    def params(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self.PARAMS}

    def predict(self, N, D) -> np.ndarray:
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        return self.E + self.A / N**self.alpha + self.B / D**self.beta

    def optimal_allocation(self, C) -> tuple[np.ndarray, np.ndarray]:
        """Compute-optimal (N, D) under C = 6 N D (Hoffmann et al. eq. 4)."""
        C = np.asarray(C, dtype=float)
        a, b = self.alpha, self.beta
        G = (a * self.A / (b * self.B)) ** (1 / (a + b))
        return G * (C / 6) ** (b / (a + b)), (C / 6) ** (a / (a + b)) / G

    def to_dict(self) -> dict:
        d = {**self.params, "objective": self.objective, "n": self.n, "n_starts": self.n_starts}
        if self.ci:
            d["level"] = self.level
            d["ci"] = {k: list(v) for k, v in self.ci.items()}
            d["se"] = dict(self.se)
            d["n_boot"] = 0 if self.samples is None else int(len(self.samples))
        return d


def _to_params(x: np.ndarray) -> tuple[float, float, float, float, float]:
    a, b, e, al, be = (float(v) for v in x)
    try:
        return math.exp(e), math.exp(a), math.exp(b), al, be
    except OverflowError:
        # log A or log B ran off to > 709: the data do not pin down that term (e.g. too few sizes or budgets)
        raise FitError(
            f"Chinchilla fit diverged (log A = {a:.3g}, log B = {b:.3g}, log E = {e:.3g}): the data do not "
            "determine L = E + A/N^alpha + B/D^beta; use more model sizes and token budgets"
        ) from None


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
    standard errors; the result depends on (seed, workers), not on timing."""
    N, D, L = _clean("N", N), _clean("D", D), _clean("loss", loss)
    _same_length(N=N, D=D, loss=L)
    if N.size < 6:
        raise FitError(f"Chinchilla approach 3 has 5 parameters and needs at least 6 points, got {N.size}")
    if np.unique(N).size < 2:
        raise FitError("all points have the same N (a single model size): A and alpha are undetermined")
    if np.unique(D).size < 2:
        raise FitError("all points have the same D (a single token budget): B and beta are undetermined")
    # L-BFGS-B calls BLAS on 5-vectors thousands of times; a threaded OpenBLAS on a busy machine turned that into
    # spin-waiting (a 1 s fit took 20 s under load). One thread per process is faster everywhere.
    with threadpool_limits(limits=1):
        return _fit_chinchilla(N, D, L, bootstrap, top_k, boot_top_k, delta, level, seed, workers, progress)


def _fit_chinchilla(N, D, L, bootstrap, top_k, boot_top_k, delta, level, seed, workers, progress) -> ChinchillaFit:
    lN, lD, lL = np.log(N), np.log(D), np.log(L)
    grid = _grid_points()
    H = _grid_huber(grid, lN, lD, lL, delta)
    starts = grid if top_k is None else _best_starts(grid, H, top_k)
    x, f, _ = _minimise(starts, lN, lD, lL, delta)
    fit = ChinchillaFit(*_to_params(x), objective=f, n=int(N.size), n_starts=len(starts), level=level)
    if bootstrap > 0:
        fit.samples = _bootstrap(x, grid, H, lN, lD, lL, delta, bootstrap, boot_top_k, seed, workers, progress)
        lo, hi = np.nanpercentile(fit.samples, [50 * (1 - level), 50 * (1 + level)], axis=0)
        sd = np.nanstd(fit.samples, axis=0, ddof=1)
        fit.ci = {k: (float(lo[i]), float(hi[i])) for i, k in enumerate(fit.PARAMS)}
        fit.se = {k: float(sd[i]) for i, k in enumerate(fit.PARAMS)}
    return fit


def _best_starts(grid: np.ndarray, H: np.ndarray, k: int, w8: np.ndarray | None = None) -> np.ndarray:
    vals = H.sum(axis=1) if w8 is None else np.einsum("ij,j->i", H, w8)  # einsum: no threaded BLAS (see above)
    return grid[np.argsort(vals, kind="stable")[: min(k, len(grid))]]


def _bootstrap_chunk(args) -> np.ndarray:
    """Refit `n` resamples; a top-level function so that worker processes can run it."""
    with threadpool_limits(limits=1):
        return _bootstrap_chunk_inner(*args)


def _bootstrap_chunk_inner(x_hat, grid, H, lN, lD, lL, delta, top_k, seed, n, progress) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.full((n, 5), np.nan)
    bar = _progress(n, "bootstrap") if progress else None
    for i in range(n):
        w8 = np.bincount(rng.integers(0, lN.size, lN.size), minlength=lN.size).astype(float)
        # A resample stays close to the full data, so its optimum is a good start; the best few grid points of
        # the resample guard against an optimum that moved to another basin.
        starts = np.vstack([x_hat, _best_starts(grid, H, top_k, w8)])
        try:
            x, _, _ = _minimise(starts, lN, lD, lL, delta, w8)
            out[i] = _to_params(x)
        except FitError:
            pass  # a failed resample stays NaN and is ignored by the nan-percentiles
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


def _bootstrap(x_hat, grid, H, lN, lD, lL, delta, n_boot, top_k, seed, workers, progress) -> np.ndarray:
    if workers <= 1:
        return _bootstrap_chunk_inner(x_hat, grid, H, lN, lD, lL, delta, top_k, seed, n_boot, progress)
    from concurrent.futures import ProcessPoolExecutor

    sizes = [len(c) for c in np.array_split(np.arange(n_boot), workers)]
    seeds = np.random.SeedSequence(seed).spawn(workers)
    jobs = [
        (x_hat, grid, H, lN, lD, lL, delta, top_k, s, n, progress and j == 0)
        for j, (s, n) in enumerate(zip(seeds, sizes))
    ]
    with ProcessPoolExecutor(workers) as ex:
        return np.vstack(list(ex.map(_bootstrap_chunk, jobs)))


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)
