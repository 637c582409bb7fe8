"""Two-stage optimal LR / batch (Akima over log LR, then over log batch) and the BS(N), LR(N) power laws."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ant.laws.fits import FitError
from ant.laws.hp import hp_trends
from ant.laws.synthetic import SynthLaw

LAW = SynthLaw(lr_coef=0.065, lr_exp=-0.178, bs_coef=1.1e-6, bs_exp=0.984, p_lr=0.1, p_bs=0.05)


SIZES = tuple(np.geomspace(3e7, 5e8, 5))
LR_GRID = tuple(np.logspace(-3.5, -1.5, 17))


def _sweep(law=LAW, sizes=SIZES, lr_grid=LR_GRID, bs_grid=None):
    """Fixed absolute grids (like the paper's), so the optima fall between grid points."""
    rows = []
    for N in sizes:
        bss = bs_grid if bs_grid is not None else law.bs_opt(N) * np.geomspace(0.25, 4, 9) * 1.07
        for bs in bss:
            for lr in lr_grid:
                loss = float(law.loss(N, 20 * N, lr, bs))
                rows.append({"arch": "angpt", "num_params": N, "batch_size": bs, "lr": lr, "final_val_loss": loss})
    return pd.DataFrame(rows)


def test_recovers_bs_and_lr_power_laws_within_1pct():
    t = hp_trends(_sweep())["angpt"]
    assert t.bs_fit.exponent == pytest.approx(0.984, rel=0.01)
    assert t.lr_fit.exponent == pytest.approx(-0.178, rel=0.01)
    assert t.bs_fit.coef == pytest.approx(1.1e-6, rel=0.05)  # a coefficient at N^0.98 amplifies small errors
    assert t.lr_fit.coef == pytest.approx(0.065, rel=0.05)
    assert t.bs_fit.r2 > 0.999 and t.lr_fit.r2 > 0.99
    np.testing.assert_allclose(t.per_size["lr_opt"], LAW.lr_opt(t.per_size["N"]), rtol=0.01)
    np.testing.assert_allclose(t.per_size["bs_opt"], LAW.bs_opt(t.per_size["N"]), rtol=0.01)
    assert not t.per_size["bs_at_edge"].any() and not t.per_batch["lr_at_edge"].any()


def test_edge_optimum_is_flagged_and_too_few_lrs_are_noted():
    df = _sweep(lr_grid=np.logspace(-3.5, -3.0, 3), sizes=[1e8, 2e8, 4e8])  # all LRs below the optimum
    t = hp_trends(df)["angpt"]
    assert t.per_batch["lr_at_edge"].all()
    df2 = pd.concat([df, pd.DataFrame([{"arch": "angpt", "num_params": 9e8, "batch_size": 64, "lr": 1e-3,
                                        "final_val_loss": 3.0}])])  # fmt: skip
    t2 = hp_trends(df2)["angpt"]
    assert any("need >= 3" in n for n in t2.notes)


def test_seeds_are_averaged_and_failed_runs_ignored():
    df = _sweep(sizes=[1e8, 2e8, 4e8])
    noisy = df.copy()
    noisy["final_val_loss"] += 0.01  # a second seed, shifted: same optimum
    bad = df.iloc[:5].copy()
    bad["final_val_loss"], bad["status"] = np.nan, "diverged"
    both = pd.concat([df.assign(status="completed"), noisy.assign(status="completed"), bad])
    a, b = hp_trends(df)["angpt"], hp_trends(both)["angpt"]
    np.testing.assert_allclose(a.per_size["lr_opt"], b.per_size["lr_opt"], rtol=1e-9)


def test_two_sizes_give_optima_but_no_power_law():
    t = hp_trends(_sweep(sizes=[1e8, 2e8]))["angpt"]
    assert len(t.per_size) == 2 and t.bs_fit is None
    assert any("need >= 3" in n for n in t.notes)


def test_degenerate_input():
    with pytest.raises(FitError, match="missing columns"):
        hp_trends(pd.DataFrame({"arch": ["angpt"], "lr": [1e-3]}))
    df = _sweep(sizes=[1e8], lr_grid=[1e-3, 2e-3])
    with pytest.raises(FitError, match=">= 3 learning rates"):
        hp_trends(df)
