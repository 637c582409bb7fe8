"""Convergence speedup: reference budget needed for the candidate's loss, 'no reference', seed bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ant.laws.fits import FitError
from ant.laws.speedup import ABOVE_REF, NO_REF, OK, convergence_speedup
from ant.laws.synthetic import SynthLaw

N = 5e8


def _runs(law: SynthLaw, budgets, seeds=(0,), noise=0.0, rng_seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(rng_seed)
    rows = [
        {"tokens": D, "seed": s, "final_val_loss": float(law.loss(N, D)) * (1 + noise * rng.standard_normal())}
        for D in budgets
        for s in seeds
    ]
    return pd.DataFrame(rows)


def test_recovers_a_known_data_efficiency_within_1pct():
    ref = _runs(SynthLaw(), np.geomspace(5e9, 2e11, 40))
    cand = _runs(SynthLaw(speedup=1.4), np.geomspace(5e9, 7e10, 6))
    s = convergence_speedup(ref, cand)
    assert (s.table["status"] == OK).all()
    assert s.mean_ratio == pytest.approx(1.4, rel=0.01)
    np.testing.assert_allclose(s.table["ratio"], 1.4, rtol=0.01)


def test_no_reference_and_above_reference_are_flagged_not_guessed():
    ref = _runs(SynthLaw(), np.geomspace(5e9, 7e10, 8))
    cand = _runs(SynthLaw(speedup=1.4), [5e9, 2e10, 7e10])  # 7e10 x 1.4 is beyond the largest reference budget
    s = convergence_speedup(ref, cand)
    assert list(s.table["status"]) == [OK, OK, NO_REF]
    assert np.isnan(s.table["ratio"].iloc[-1])
    worse = _runs(SynthLaw(speedup=0.5), [5e9, 2e10])  # worse than the reference's smallest budget
    assert convergence_speedup(ref, worse).table["status"].iloc[0] == ABOVE_REF


def test_seed_bootstrap_ci_covers_the_truth():
    ref = _runs(SynthLaw(), np.geomspace(5e9, 2e11, 12), seeds=range(4), noise=0.002, rng_seed=1)
    cand = _runs(SynthLaw(speedup=1.3), np.geomspace(5e9, 7e10, 6), seeds=range(4), noise=0.002, rng_seed=2)
    s = convergence_speedup(ref, cand, n_boot=300)
    lo, hi = s.ci
    assert s.n_boot == 300 and lo < s.mean_ratio < hi
    assert lo < 1.3 < hi
    single = convergence_speedup(ref[ref.seed == 0], cand[cand.seed == 0])
    assert np.isnan(single.ci[0])  # no seeds to resample: no CI pretended


def test_degenerate_input():
    ref = _runs(SynthLaw(), [1e10])
    cand = _runs(SynthLaw(), [1e10])
    with pytest.raises(FitError, match=">= 2 token budgets"):
        convergence_speedup(ref, cand)
    with pytest.raises(FitError, match="lacks column"):
        convergence_speedup(ref.drop(columns="tokens"), cand)
    ref2 = _runs(SynthLaw(), [1e10, 2e10])
    with pytest.raises(FitError, match="no run with a finite loss"):
        convergence_speedup(ref2, cand.assign(final_val_loss=np.nan))
