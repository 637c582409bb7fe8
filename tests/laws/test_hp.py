"""Two-stage optimal LR / batch (Akima over log LR, then over log batch) and the BS(N), LR(N) power laws, one per
budget regime, with edge optima left out of the fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ant.laws.collect import load
from ant.laws.fits import FitError
from ant.laws.hp import assign_regimes, hp_trends, lr_sensitivity
from ant.laws.synthetic import SynthLaw, write_hp_sweep

LAW = SynthLaw(lr_coef=0.065, lr_exp=-0.178, bs_coef=1.1e-6, bs_exp=0.984, p_lr=0.1, p_bs=0.05)
R20 = "20 tokens/param"

SIZES = tuple(np.geomspace(3e7, 5e8, 5))
LR_GRID = tuple(np.logspace(-3.5, -1.5, 17))


def _sweep(law=LAW, sizes=SIZES, lr_grid=LR_GRID, bs_grid=None, tpp=20.0):
    """Fixed absolute LR grid (like the paper's), so the optima fall between grid points."""
    rows = []
    for N in sizes:
        bss = bs_grid if bs_grid is not None else law.bs_opt(N) * np.geomspace(0.25, 4, 9) * 1.07
        for bs in bss:
            for lr in lr_grid:
                loss = float(law.loss(N, tpp * N, lr, bs))
                rows.append({"arch": "angpt", "num_params": N, "tokens": round(tpp * N), "batch_size": bs, "lr": lr,
                             "final_val_loss": loss})  # fmt: skip
    return pd.DataFrame(rows)


def test_recovers_bs_and_lr_power_laws_within_1pct():
    t = hp_trends(_sweep())["angpt"][R20]
    assert (t.regime, t.by, t.budget) == (R20, "tokens_per_param", pytest.approx(20.0))
    assert t.bs_fit.exponent == pytest.approx(0.984, rel=0.01)
    assert t.lr_fit.exponent == pytest.approx(-0.178, rel=0.01)
    assert t.bs_fit.coef == pytest.approx(1.1e-6, rel=0.05)  # a coefficient at N^0.98 amplifies small errors
    assert t.lr_fit.coef == pytest.approx(0.065, rel=0.05)
    assert t.bs_fit.r2 > 0.999 and t.lr_fit.r2 > 0.99
    np.testing.assert_allclose(t.per_size["lr_opt"], LAW.lr_opt(t.per_size["N"]), rtol=0.01)
    np.testing.assert_allclose(t.per_size["bs_opt"], LAW.bs_opt(t.per_size["N"]), rtol=0.01)
    assert not t.per_size["bs_at_edge"].any() and not t.per_batch["lr_at_edge"].any()
    assert t.n_excluded == 0 and t.per_size["in_fit"].all()


# Each regime its own law: longer runs want a lower LR and a larger batch, with other exponents (paper units:
# N in parameters, batch in 2048-token sequences). 20 tokens/param is the paper's (§5.1).
MIXED = {
    "angpt": {20: SynthLaw(bs_coef=1.1e-6, bs_exp=0.984, lr_coef=0.065, lr_exp=-0.178, noise=5e-4),
              80: SynthLaw(bs_coef=7.8e-6, bs_exp=0.9, lr_coef=0.147, lr_exp=-0.25, noise=5e-4)},
    "gptplus": {20: SynthLaw(bs_coef=9e-5, bs_exp=0.729, lr_coef=42.0, lr_exp=-0.482, noise=5e-4),
                80: SynthLaw(bs_coef=5.8e-4, bs_exp=0.65, lr_coef=88.0, lr_exp=-0.55, noise=5e-4)},
}  # fmt: skip
PAPER_SIZES = {"32M": 3.2e7, "62M": 6.2e7, "125M": 1.25e8, "250M": 2.5e8, "0.5B": 5e8}


@pytest.fixture(scope="module")
def mixed_runs(tmp_path_factory):
    """Run folders (ant.train format) of two regimes x two archs x 5 sizes x 3 batches x 5 LRs, read back."""
    root = write_hp_sweep(tmp_path_factory.mktemp("hp") / "results", MIXED, PAPER_SIZES, bs_factors=(1 / 3, 1, 3))
    runs, _ = load(root)
    return runs


def test_mixed_budget_runs_give_each_regime_its_own_exponents(mixed_runs):
    tr = hp_trends(mixed_runs)
    assert {a: list(r) for a, r in tr.items()} == {a: ["20 tokens/param", "80 tokens/param"] for a in MIXED}
    for arch, per in MIXED.items():
        for tpp, law in per.items():
            t = tr[arch][f"{tpp} tokens/param"]
            assert t.n_interior == 5 and t.n_excluded == 0
            # the issue asks for +-0.1; on 0.05 % noise the procedure does far better
            assert t.bs_fit.exponent == pytest.approx(law.bs_exp, abs=0.05), (arch, tpp)
            assert t.lr_fit.exponent == pytest.approx(law.lr_exp, abs=0.05), (arch, tpp)


def test_by_absolute_tokens_groups_equal_budgets(mixed_runs):
    """Absolute budgets: 80 x 125M and 20 x 0.5B are both 10B tokens, 80 x 62M is within 1 % of 20 x 250M."""
    tr = hp_trends(mixed_runs, by="tokens", arch="angpt")["angpt"]
    assert list(tr) == ["640M tokens", "1.24B tokens", "2.5B tokens", "4.96B tokens", "10B tokens", "20B tokens",
                        "40B tokens"]  # fmt: skip
    assert sorted(tr["10B tokens"].per_size["N"]) == [1.25e8, 5e8]
    assert sorted(tr["4.96B tokens"].per_size["N"]) == [6.2e7, 2.5e8]
    assert all(t.bs_fit is None for t in tr.values())  # <= 2 sizes per absolute budget in this design
    with pytest.raises(FitError, match=r"by: unknown value 'steps' \(allowed: tokens_per_param, tokens\)"):
        hp_trends(mixed_runs, by="steps")


def test_a_longer_run_no_longer_moves_the_optimum():
    """Pooling budgets per (N, batch) let one 4x longer run (0.37 nats lower loss) drag that size's optimal LR to
    its own LR (on the pooled code: lr_opt 2.7e-3 -> 5.6e-3 at N=6e7)."""
    df = _sweep(sizes=SIZES[:3])
    N, bs = SIZES[1], sorted(df.loc[df["num_params"] == SIZES[1], "batch_size"].unique())[4]
    lr = LR_GRID[10]  # 5.6e-3, about 2x the optimum
    longer = {"arch": "angpt", "num_params": N, "tokens": round(80 * N), "batch_size": bs, "lr": lr,
              "final_val_loss": float(LAW.loss(N, 80 * N, lr, bs))}  # fmt: skip
    base = hp_trends(df)["angpt"][R20]
    more = hp_trends(pd.concat([df, pd.DataFrame([longer])]))["angpt"]
    assert list(more) == [R20]  # one run at 80 tokens/param has no LR grid: no regime of its own
    pd.testing.assert_frame_equal(more[R20].per_size, base.per_size)
    pd.testing.assert_frame_equal(more[R20].per_batch, base.per_batch)


def test_budgets_within_tolerance_are_one_regime():
    """Whole optimizer steps round 20 N up by up to one batch: still 20 tokens/param; 2x is another regime."""
    df = _sweep(sizes=SIZES[:3])
    jitter = 1 + 0.04 * (np.arange(len(df)) % 5) / 4  # 0-4 % more tokens
    x = assign_regimes(df.assign(tokens=(df["tokens"] * jitter).round()))
    assert x["regime"].unique().tolist() == [R20] and x["budget"].nunique() == 1
    t = hp_trends(df.assign(tokens=(df["tokens"] * jitter).round()))["angpt"]
    assert list(t) == [R20] and t[R20].bs_fit.exponent == pytest.approx(0.984, rel=0.01)
    y = assign_regimes(pd.concat([df, df.assign(tokens=df["tokens"] * 2)]))
    assert sorted(y["regime"].unique()) == ["20 tokens/param", "40 tokens/param"]
    # the requested budget (config) wins over the tokens that ran
    z = assign_regimes(df.assign(**{"cfg.train.tokens": df["tokens"], "tokens": df["tokens"] * 1.3}))
    assert z["regime"].unique().tolist() == [R20]


def test_edge_optima_are_excluded_from_the_fit_and_counted():
    sizes = SIZES[:4]
    lr_grid_low = np.logspace(-3.9, -3.4, 5)  # every LR below the optimum at all sizes
    df = _sweep(sizes=sizes)
    df_edge_lr = _sweep(sizes=[SIZES[4]], lr_grid=lr_grid_low)
    big = SIZES[4] * 2
    df_edge_bs = _sweep(sizes=[big], bs_grid=LAW.bs_opt(big) * np.array([2.0, 3.0, 4.0]))  # batches all too large
    t = hp_trends(pd.concat([df, df_edge_lr, df_edge_bs]))["angpt"][R20]
    assert t.n_excluded == 2 and t.n_interior == 4
    ex = {round(e["N"]): e["reason"] for e in t.excluded}
    assert ex.keys() == {round(SIZES[4]), round(big)}
    assert "best LR at the edge" in ex[round(SIZES[4])] and "batch optimum at the edge" in ex[round(big)]
    assert t.bs_fit.n == 4 and t.lr_fit.n == 4  # fitted on the interior optima only
    assert t.bs_fit.exponent == pytest.approx(0.984, rel=0.01)
    assert t.lr_fit.exponent == pytest.approx(-0.178, rel=0.02)
    d = t.to_dict()
    assert d["n_excluded"] == 2 and len(d["excluded"]) == 2 and d["regime"] == R20


def test_fewer_than_three_interior_optima_give_no_power_law():
    df = _sweep(lr_grid=np.logspace(-3.9, -3.4, 3), sizes=[1e8, 2e8, 4e8])  # all LRs below the optimum
    t = hp_trends(df)["angpt"][R20]
    assert t.per_batch["lr_at_edge"].all() and t.n_excluded == 3 and t.bs_fit is None and t.lr_fit is None
    assert any("0 size(s) with an interior optimum" in n for n in t.notes)
    df2 = pd.concat([df, pd.DataFrame([{"arch": "angpt", "num_params": 9e8, "tokens": 1.8e10, "batch_size": 64,
                                        "lr": 1e-3, "final_val_loss": 3.0}])])  # fmt: skip
    assert any("need >= 3" in n for n in hp_trends(df2)["angpt"][R20].notes)


def test_seeds_are_averaged_and_failed_runs_ignored():
    df = _sweep(sizes=[1e8, 2e8, 4e8])
    noisy = df.copy()
    noisy["final_val_loss"] += 0.01  # a second seed, shifted: same optimum
    bad = df.iloc[:5].copy()
    bad["final_val_loss"], bad["status"] = np.nan, "diverged"
    both = pd.concat([df.assign(status="completed"), noisy.assign(status="completed"), bad])
    a, b = hp_trends(df)["angpt"][R20], hp_trends(both)["angpt"][R20]
    np.testing.assert_allclose(a.per_size["lr_opt"], b.per_size["lr_opt"], rtol=1e-9)


def test_two_sizes_give_optima_but_no_power_law():
    t = hp_trends(_sweep(sizes=[1e8, 2e8]))["angpt"][R20]
    assert len(t.per_size) == 2 and t.bs_fit is None
    assert any("need >= 3" in n for n in t.notes)


def test_lr_sensitivity_reads_the_akima_curve():
    lrs = np.geomspace(1e-3, 1e-1, 9)  # half-decade x 4 around lr* = 1e-2 (a grid point)
    s = lr_sensitivity(lrs, 3.0 + 0.1 * np.log(lrs / 1e-2) ** 2)
    assert s["lr_best"] == pytest.approx(1e-2, rel=0.01) and not s["lr_at_edge"]
    assert s["up"] == pytest.approx(0.1 * np.log(3) ** 2, rel=0.03)
    assert s["down"] == pytest.approx(0.1 * np.log(3) ** 2, rel=0.03)
    assert s["up_rel"] == pytest.approx(s["up"] / 3.0, rel=0.01)
    narrow = lr_sensitivity(lrs[2:6], 3.0 + 0.1 * np.log(lrs[2:6] / 1e-2) ** 2)  # 3e-3..3e-2: 3x above is outside
    assert narrow["up"] is None and narrow["down"] is not None
    edge = lr_sensitivity(lrs[:3], 3.0 - np.log(lrs[:3]))
    assert edge["lr_at_edge"] and edge["up"] is None and edge["down"] is None
    with pytest.raises(FitError, match=">= 3 distinct"):
        lr_sensitivity([1e-3, 1e-3, 2e-3], [3.0, 3.1, 3.2])


def test_degenerate_input():
    with pytest.raises(FitError, match="missing columns"):
        hp_trends(pd.DataFrame({"arch": ["angpt"], "lr": [1e-3]}))
    df = _sweep(sizes=[1e8], lr_grid=[1e-3, 2e-3])
    with pytest.raises(FitError, match=">= 3 learning rates"):
        hp_trends(df)
    with pytest.raises(FitError, match="tol"):
        hp_trends(_sweep(sizes=[1e8]), tol=-0.1)
