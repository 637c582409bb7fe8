"""Compute frontier: min loss per log-compute bin, L(C) = A C^-alpha, N_opt(C), D_opt(C)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ant.laws.fits import FitError
from ant.laws.frontier import compute_frontier

A_TRUE, ALPHA, N0, A_N = 30.0, 0.055, 0.5, 0.46


def _curves(n_sizes: int = 60) -> pd.DataFrame:
    """Curves of many sizes whose lower envelope is exactly L = A C^-alpha at N = N0 C^aN."""
    rows = []
    for N in np.geomspace(1e6, 1e9, n_sizes):
        c_star = (N / N0) ** (1 / A_N)  # the budget at which N is compute-optimal
        C = np.geomspace(c_star / 2, c_star * 2, 40)
        n_opt = N0 * C**A_N
        loss = A_TRUE * C**-ALPHA * (1 + 0.05 * np.log(N / n_opt) ** 2)
        rows.append(pd.DataFrame({"num_params": N, "tokens": C / (6 * N), "flops": C, "val_loss": loss}))
    return pd.concat(rows, ignore_index=True)


def test_recovers_loss_law_and_allocation_within_1pct():
    f = compute_frontier(_curves())
    assert f.alpha == pytest.approx(ALPHA, rel=0.01)
    assert pytest.approx(A_TRUE, rel=0.01) == f.A
    assert f.n_opt.exponent == pytest.approx(A_N, rel=0.01)
    assert f.d_opt.exponent == pytest.approx(1 - A_N, rel=0.01)
    np.testing.assert_allclose(f.points["C"], 6 * f.points["N"] * f.points["D"], rtol=1e-9)
    lo, hi = f.n_opt.exponent_ci
    assert lo < f.n_opt.exponent < hi
    d = f.to_dict()
    assert d["alpha_ci"][0] < d["alpha"] < d["alpha_ci"][1]


def test_envelope_keeps_the_minimum_per_bin():
    df = _curves(10)
    f = compute_frontier(df, n_bins=50)
    assert len(f.points) <= 50
    # every envelope point is the lowest loss among all points in its bin
    lc = np.log(df["flops"])
    edges = np.linspace(lc.min(), lc.max(), 51)
    b = np.clip(np.searchsorted(edges, lc, side="right") - 1, 0, 49)
    mins = df.groupby(b)["val_loss"].min().sort_values(ascending=False).to_numpy()
    np.testing.assert_allclose(np.sort(f.points["loss"])[::-1], mins)


def test_compute_defaults_to_6nd():
    df = _curves(10).drop(columns="flops")
    f = compute_frontier(df)
    assert f.alpha == pytest.approx(ALPHA, rel=0.05)


def test_degenerate_input():
    df = _curves(10)
    with pytest.raises(FitError, match="at least 2 model sizes"):
        compute_frontier(df[df["num_params"] == df["num_params"].iloc[0]])
    with pytest.raises(FitError, match="missing columns"):
        compute_frontier(df.drop(columns="val_loss"))
    nan = df.copy()
    nan["val_loss"] = np.nan
    with pytest.raises(FitError):
        compute_frontier(nan)
