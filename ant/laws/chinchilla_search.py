"""Chinchilla approach 3's search (ant/laws/chinchilla.py has the model, the contract and the verdict): the
Huber objective in log-sum-exp form with its analytic gradient, the grid of initialisations, L-BFGS-B from the best
of them inside the search box, and the bootstrap refits.

The data of one fit are built once into a frozen `Problem` (log N, log D, log L, the Huber delta, the search box,
the grid and its Huber terms) and passed whole; a bootstrap resample is the same Problem with per-point weights.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
from scipy import optimize
from threadpoolctl import threadpool_limits

from ant.laws.fitdata import FitError

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

# The search box (chinchilla.py's docstring says why these bounds).
EXPONENT_BOUNDS = (0.0, 3.0)
LOG_COEF_BOUNDS = (-10.0, 100.0)
LOG_E_BELOW_MIN_LOSS = 7.0
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


@dataclass(frozen=True)
class Problem:
    """One approach-3 fit's data in the optimiser's coordinates, built once (`Problem.build`) and passed whole
    through the fit, the bootstrap and its worker processes (it pickles). A bootstrap resample is the same problem
    with per-point `weights` (resample counts; None: every point once), see `resample`."""

    log_n: np.ndarray
    log_d: np.ndarray
    log_loss: np.ndarray
    delta: float  # Huber threshold on log L_hat - log L
    bounds: list[tuple[float, float]]  # L-BFGS-B box for (a, b, e, alpha, beta), see search_bounds
    grid: np.ndarray  # the 4500 initialisations, clipped into `bounds`
    grid_huber: np.ndarray  # (n_grid, n_points) Huber terms, see _grid_huber
    weights: np.ndarray | None = None

    @classmethod
    def build(cls, N: np.ndarray, D: np.ndarray, L: np.ndarray, delta: float = HUBER_DELTA) -> Problem:
        lN, lD, lL = np.log(N), np.log(D), np.log(L)
        bounds = search_bounds(L)
        lo, hi = np.array(bounds).T
        grid = np.clip(_grid_points(), lo, hi)  # on the published points no grid value is outside the box
        return cls(lN, lD, lL, delta, bounds, grid, _grid_huber(grid, lN, lD, lL, delta))

    @property
    def n(self) -> int:
        return int(self.log_n.size)

    def resample(self, weights: np.ndarray) -> Problem:
        return replace(self, weights=weights)

    def best_starts(self, k: int) -> np.ndarray:
        """The `k` grid points with the lowest (weighted) objective."""
        H, w8 = self.grid_huber, self.weights
        vals = H.sum(axis=1) if w8 is None else np.einsum("ij,j->i", H, w8)  # einsum: no threaded BLAS (see below)
        return self.grid[np.argsort(vals, kind="stable")[: min(k, len(self.grid))]]


def _objective_and_grad(p: np.ndarray, prob: Problem):
    """Objective and its analytic gradient at p = (a, b, e, alpha, beta), weighted by prob.weights when set.
    Written out term by term (no stacking): this function is most of the bootstrap's run time."""
    a, b, e, al, be = p
    lN, lD, delta, w8 = prob.log_n, prob.log_d, prob.delta, prob.weights
    t1 = a - al * lN
    t2 = b - be * lD
    m = np.maximum(np.maximum(t1, t2), e)
    w1, w2, w3 = np.exp(t1 - m), np.exp(t2 - m), np.exp(e - m)
    s = w1 + w2 + w3
    r = m + np.log(s) - prob.log_loss  # log L_hat - log L
    g = np.clip(r, -delta, delta)  # Huber'(r)
    h = g * (r - 0.5 * g)  # Huber(r): 0.5 r^2 inside [-delta, delta], delta (|r| - delta/2) outside
    if w8 is not None:
        h, g = h * w8, g * w8
    gs = g / s  # d pred / d t_j = w_j / s (softmax weights)
    g1, g2 = gs * w1, gs * w2
    # Element-wise products, not `@`: BLAS calls on 240-vectors cost more than the arithmetic, and a threaded BLAS
    # on a busy machine made the fit 10x slower.
    return h.sum(), np.array([g1.sum(), g2.sum(), (gs * w3).sum(), -(g1 * lN).sum(), -(g2 * lD).sum()])


def minimise(prob: Problem, starts: np.ndarray) -> tuple[np.ndarray, float, int]:
    """L-BFGS-B from every start inside the box prob.bounds; the best successful run (lowest objective) wins."""
    best_x, best_f, n_ok, bounds = None, math.inf, 0, prob.bounds
    for x0 in starts:
        res = optimize.minimize(
            _objective_and_grad, x0, args=(prob,), jac=True, method="L-BFGS-B", bounds=bounds, options=LBFGS_OPTIONS
        )
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


def to_params(x: np.ndarray) -> tuple[float, float, float, float, float]:
    a, b, e, al, be = (float(v) for v in x)
    try:
        return math.exp(e), math.exp(a), math.exp(b), al, be
    except OverflowError:
        # Cannot happen inside the search bounds; kept as a guard for callers that pass their own coordinates.
        raise FitError(
            f"Chinchilla fit diverged (log A = {a:.3g}, log B = {b:.3g}, log E = {e:.3g}): the data do not "
            "determine L = E + A/N^alpha + B/D^beta; use more model sizes and token budgets"
        ) from None


# ---------------------------------------------------------------------------------------------- bootstrap
def _bootstrap_chunk(args) -> np.ndarray:
    """Refit `n` resamples; a top-level function so that worker processes can run it."""
    with threadpool_limits(limits=1):
        return _bootstrap_chunk_inner(*args)


def _bootstrap_chunk_inner(prob: Problem, x_hat: np.ndarray, top_k: int, seed, n: int, progress: bool) -> np.ndarray:
    """`n` resamples of prob's points (with replacement, from `seed`), each refitted; rows (E, A, B, alpha, beta)."""
    rng = np.random.default_rng(seed)
    out = np.full((n, 5), np.nan)
    bar = _progress(n, "bootstrap") if progress else None
    for i in range(n):
        re = prob.resample(np.bincount(rng.integers(0, prob.n, prob.n), minlength=prob.n).astype(float))
        # A resample stays close to the full data, so its optimum is a good start; the best few grid points of
        # the resample guard against an optimum that moved to another basin.
        starts = np.vstack([x_hat, re.best_starts(top_k)])
        try:
            x, _, _ = minimise(re, starts)
            out[i] = to_params(x)
        except FitError:
            pass  # a failed resample stays NaN: excluded from the CIs and counted by _ci_reasons
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    return out


def bootstrap_refits(
    prob: Problem, x_hat: np.ndarray, n_boot: int, top_k: int, *, seed: int, workers: int, progress: bool
) -> np.ndarray:
    """`n_boot` bootstrap refits, split over `workers` processes (one seed stream each: reproducible per workers)."""
    if workers <= 1:
        return _bootstrap_chunk_inner(prob, x_hat, top_k, seed, n_boot, progress)
    from concurrent.futures import ProcessPoolExecutor

    sizes = [len(c) for c in np.array_split(np.arange(n_boot), workers)]
    seeds = np.random.SeedSequence(seed).spawn(workers)
    jobs = [(prob, x_hat, top_k, s, n, progress and j == 0) for j, (s, n) in enumerate(zip(seeds, sizes))]
    with ProcessPoolExecutor(workers) as ex:
        return np.vstack(list(ex.map(_bootstrap_chunk, jobs)))


def _progress(total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False)
