"""The report's verdict rules (ant.analysis.study_verdicts) on constructed runs: C1 per budget, paired by seed,
'smaller than the paper's' wherever the interval excludes 1.40x (even when it includes 1), one summary number only
where the budgets agree; C6's paired interval."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ant.analysis.study_verdicts import (
    judge_ratio,
    paired_difference,
    per_budget_speedup,
    regime_of,
    summary_if_agree,
)

N = 5e4
BUDGETS = (5, 10, 20, 40)


def runs(arch_speedup, seeds=(0, 1, 2, 3), noise=0.01, seed=0):
    """Final losses L(D) = 1.5 + 30 D^-0.3 for the reference; the candidate reaches L(s D) at D (a speedup s that
    may depend on the budget). Per-seed noise shared by both archs of a seed (a paired design)."""
    rng = np.random.default_rng(seed)
    rows = []
    for s in seeds:
        shift = 0.3 * noise * rng.standard_normal()
        for tpp in BUDGETS:
            d = tpp * N
            for arch in ("gptplus", "angpt"):
                sp = arch_speedup(tpp) if arch == "angpt" else 1.0
                loss = 1.5 + 30 * (sp * d) ** -0.3 + shift + noise * rng.standard_normal()
                rows.append(
                    {"arch": arch, "size": "tiny1", "num_params": N, "tokens": d, "seed": s, "final_val_loss": loss}
                )
    return pd.DataFrame(rows)


def split(df):
    return df[df["arch"] == "gptplus"], df[df["arch"] == "angpt"]


def test_a_constant_speedup_is_recovered_per_budget_and_summarised():
    # over 15 noise draws the 95 % intervals covered 1.2 in 98 % of budgets, the ratios' mean error -0.1 %
    rows = per_budget_speedup(*split(runs(lambda t: 1.2, noise=0.003)))
    inner = rows[rows["bound"] == ""]
    assert len(inner) >= 2
    assert all(r == pytest.approx(1.2, rel=0.04) for r in inner["ratio"])
    assert ((inner["lo"] < 1.2) & (inner["hi"] > 1.2)).sum() >= len(inner) - 1
    s, why = summary_if_agree(rows)
    assert s == pytest.approx(1.2, rel=0.03) and why == ""


def test_smaller_than_the_papers_even_where_the_direction_is_undetermined():
    assert judge_ratio(0.9, 1.2, 1.40) == ("not determined", "smaller than the paper's 1.40x")
    assert judge_ratio(1.05, 1.3, 1.40) == ("faster", "smaller than the paper's 1.40x")
    assert judge_ratio(1.45, 1.6, 1.40) == ("faster", "larger than the paper's 1.40x")
    assert judge_ratio(1.2, 1.6, 1.40) == ("faster", "")
    assert judge_ratio(0.8, 0.95, 1.40, bound="lower") == ("not determined", "")  # a lower bound shows no 'smaller'
    rows = per_budget_speedup(*split(runs(lambda t: 1.0)))
    for r in rows[rows["bound"] == ""].itertuples():
        assert judge_ratio(r.lo, r.hi, 1.40, r.bound)[1] == "smaller than the paper's 1.40x"


def test_budgets_that_disagree_get_no_summary_number():
    rows = per_budget_speedup(*split(runs(lambda t: 1.5 if t <= 5 else 0.85)))
    s, why = summary_if_agree(rows)
    assert s is None and "changes with the budget" in why


def test_regimes():
    assert [regime_of(t) for t in (2.5, 5, 10, 20, 40, 80)] == ["≤ 5", "≤ 5", "10", "20", "≥ 40", "≥ 40"]


def test_paired_difference_interval():
    a = pd.DataFrame({"tokens": [1, 1, 2, 2], "seed": [0, 1, 0, 1], "final_val_loss": [0.98, 0.97, 0.99, 0.98]})
    b = a.assign(final_val_loss=[1.0, 1.0, 1.0, 1.0])
    d = paired_difference(a, b, ["tokens", "seed"])
    assert d["n"] == 4 and d["hi"] < 0 and d["mean"] == pytest.approx(-0.02)
    assert math.isfinite(d["lo"])
