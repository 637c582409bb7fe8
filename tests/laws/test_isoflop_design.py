"""The IsoFLOP design helper (ant.laws.isoflop_design): >= 4 sizes per compute level bracketing the expected optimum,
and N_opt(C) recovered from final losses of a known Chinchilla surface, with a bootstrap-over-runs interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ant.errors import ConfigError
from ant.laws.isoflop_design import design_isoflop, isoflop_nopt

# A Chinchilla surface (Hoffmann et al. fit, rescaled to tiny N): N_opt ∝ C^(beta / (alpha + beta)) under C = 6 N D
E, A, B, ALPHA, BETA = 1.2, 40.0, 60.0, 0.34, 0.28
TRUE_A = BETA / (ALPHA + BETA)
LADDER = {f"s{i}": float(1e4 * 1.6**i) for i in range(12)}  # 10k ... 1.8M, 1.6x apart like the study's rungs


def fpt(size: str) -> float:
    return 6 * LADDER[size]


def surface(n, d, rng, noise):
    return (E + A / n**ALPHA + B / d**BETA) * (1 + noise * rng.standard_normal(np.shape(n)))


def runs(levels, seeds=1, noise=0.003, seed=0):
    rng = np.random.default_rng(seed)
    pts = design_isoflop(levels, LADDER, fpt, per_level=5)
    rows = [
        {
            "level": p.level,
            "num_params": p.num_params,
            "tokens": p.tokens,
            "seed": s,
            "final_val_loss": float(surface(p.num_params, p.tokens, rng, noise)),
        }
        for p in pts
        for s in range(seeds)
    ]
    return pts, pd.DataFrame(rows)


def test_every_level_gets_at_least_four_sizes_bracketing_its_optimum():
    levels = [2e11 * 2**k for k in range(5)]
    pts = design_isoflop(levels, LADDER, fpt)
    for c in levels:
        at = [p for p in pts if p.level == c]
        assert len(at) >= 4
        tpp = [p.tokens_per_param for p in at]
        assert min(tpp) < 20 < max(tpp)  # bracketing the expected optimum (20 tokens/param)
    spread = [p.tokens_per_param for p in pts]
    assert min(spread) < 5 and max(spread) > 50


def test_recovers_a_known_n_opt_exponent():
    levels = [1e12 * 2**k for k in range(5)]
    _, df = runs(levels, seeds=2)
    est = isoflop_nopt(df, boot=300)
    assert est.determined, est.reasons
    assert est.a == pytest.approx(TRUE_A, abs=0.05)
    lo, hi = est.ci
    assert lo < TRUE_A < hi and hi - lo < 0.3


def test_one_run_per_cell_still_gets_an_interval_over_runs():
    levels = [1e12 * 2**k for k in range(5)]
    _, df = runs(levels, seeds=1, seed=3)
    est = isoflop_nopt(df, boot=300)
    assert est.determined and np.isfinite(est.ci).all()
    assert est.ci[0] < est.a < est.ci[1]


def test_a_level_the_ladder_cannot_bracket_is_one_clear_error():
    with pytest.raises(ConfigError, match="levels"):
        design_isoflop([1e20], LADDER, fpt)
    with pytest.raises(ConfigError, match="per_level"):
        design_isoflop([1e12], LADDER, fpt, per_level=3)


def test_the_batch_follows_the_tokens_and_the_lr_follows_the_batch_by_the_square_root():
    from ant.laws.isoflop_design import budget_hps

    bs = lambda n: 2.0 * (n / 1e4)  # noqa: E731  batch ∝ N at 20 tokens/param
    lr = lambda n: 0.01 * (n / 1e4) ** -0.5  # noqa: E731
    # at 20 tokens/param: the size's own fitted optimum
    assert budget_hps(4e4, 20 * 4e4, bs, lr) == (8, 0.005)
    # 4x the tokens at the same size: the batch of the size trained at 4x (4x larger), the LR x sqrt(4)
    assert budget_hps(4e4, 80 * 4e4, bs, lr) == (32, 0.01)
    # a quarter of the tokens: a quarter of the batch, half the LR; and never below one sequence
    assert budget_hps(4e4, 5 * 4e4, bs, lr) == (2, 0.0025)
    b, r = budget_hps(4e4, 0.5 * 4e4, bs, lr)
    assert b == 1 and r == pytest.approx(0.005 * (1 / 8) ** 0.5, rel=5e-3)  # 3 significant digits
    # the LR keeps 3 significant digits (readable run ids) and the batch is whole sequences
    b, r = budget_hps(3e4, 33 * 3e4, bs, lr)
    assert isinstance(b, int) and r == float(f"{r:.3g}")
    with pytest.raises(ConfigError, match="budget_hps"):
        budget_hps(0.0, 1e6, bs, lr)


def test_a_level_without_an_interior_vertex_says_on_which_side_its_optimum_lies():
    from ant.laws.isoflop_design import vertex

    lN = np.log([1e4, 2e4, 4e4, 8e4])
    v, why, side = vertex(lN, (lN - np.log(3e4)) ** 2)  # the minimum inside
    assert np.isclose(v, np.log(3e4)) and why == "" and side == ""
    assert vertex(lN, (lN - np.log(5e3)) ** 2)[2] == "low"  # the vertex below the smallest size
    assert vertex(lN, (lN - np.log(2e5)) ** 2)[2] == "high"
    assert vertex(lN, -((lN - np.log(2e4)) ** 2))[1:] == ("the parabola opens downwards", "high")  # ends: 8e4 lower
    assert vertex(lN[:2], lN[:2])[1:] == ("< 3 sizes", "")
