"""The Chinchilla fit's identifiability contract (issue 10): designs that cannot identify five parameters are a
FitError naming the short dimension; fits that do not pin the parameters are returned determined=False with the
reason; derived allocation exponents and compute-optimal allocations carry bootstrap CIs that cover the truth."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from ant.laws.chinchilla import EXPONENT_BOUNDS, ChinchillaFit
from ant.laws.fits import FitError, fit_chinchilla

TRUE = {"E": 1.8, "A": 480.0, "B": 2100.0, "alpha": 0.35, "beta": 0.37}  # ~ Chinchilla's refit


def _law(N, D, p=TRUE):
    return p["E"] + p["A"] / N ** p["alpha"] + p["B"] / D ** p["beta"]


def _grid(sizes, budgets, *, per_param: bool = True, seeds: int = 1, noise: float = 0.0, seed: int = 0):
    """Every size x every budget (tokens per parameter, or absolute tokens), `seeds` noisy repeats of each."""
    N = np.repeat(np.asarray(sizes, dtype=float), len(budgets))
    D = np.tile(np.asarray(budgets, dtype=float), len(sizes)) * (N if per_param else 1.0)
    N, D = np.tile(N, seeds), np.tile(D, seeds)
    L = _law(N, D) * np.exp(noise * np.random.default_rng(seed).standard_normal(N.size))
    return N, D, L


@pytest.mark.parametrize(
    "design, msg",
    [
        # the project's small sweep: 3 sizes x 2 absolute budgets x 2 seeds is 6 points, not 12
        (_grid([1e6, 2e6, 4e6], [8e4, 1.6e5], per_param=False, seeds=2, noise=0.01),
         r"2 distinct token budgets D \(need >= 3.*6 distinct \(N, D\) points \(need >= 8; 12 rows"),
        (_grid([1e7, 1e8], [5, 10, 20, 40, 80], noise=0.01), r"2 distinct model sizes N \(need >= 3"),
        (_grid([1e8], [1, 2, 5, 10, 20, 40, 80, 160], noise=0.01), r"1 distinct model sizes N \(need >= 3"),
        # 8 sizes at one tokens-per-parameter ratio: 8 distinct N and D, but D = 20 N confounds the two terms
        (_grid(np.geomspace(1e7, 1e10, 8), [20], noise=0.01), "N and D vary together"),
    ],
)  # fmt: skip
def test_under_determined_designs_are_refused_naming_the_missing_dimension(design, msg):
    with pytest.raises(FitError, match="under-determined: .*" + msg):
        fit_chinchilla(*design)


def test_the_contract_counts_distinct_points_not_rows():
    N, D, L = _grid([1e7, 1e8, 1e9], [10, 40], seeds=3, noise=0.01)  # 18 rows, 6 points
    with pytest.raises(FitError, match=r"6 distinct \(N, D\) points"):
        fit_chinchilla(N, D, L)
    N2, D2, L2 = _grid([1e7, 1e8, 1e9], [10, 40, 160], noise=0.01)  # 9 points: accepted
    assert fit_chinchilla(N2, D2, L2, top_k=10).n_distinct == 9


# ------------------------------------------------------------------------------------------- a realistic design
@pytest.fixture(scope="module")
def good():
    """8 sizes x 3 budgets (5, 20, 80 tokens/param) of the known law, 0.5 % noise, 40 resamples."""
    N, D, L = _grid(np.geomspace(1e7, 1e10, 8), [5, 20, 80], noise=0.005, seed=1)
    return fit_chinchilla(N, D, L, bootstrap=40, top_k=10, seed=0)


def test_a_realistic_design_recovers_the_law_and_is_determined(good):
    assert good.determined and good.reasons == [] and good.ci_checked
    assert good.params["E"] == pytest.approx(TRUE["E"], rel=0.02)
    for k in ("alpha", "beta"):
        assert good.params[k] == pytest.approx(TRUE[k], abs=0.03), k
    for k in ("A", "B"):  # A, B trade off against the exponents: recovered to tens of %, inside their CIs
        assert good.params[k] == pytest.approx(TRUE[k], rel=0.5), k
    for k, v in TRUE.items():
        assert good.ci[k][0] <= v <= good.ci[k][1], k


def test_allocation_exponents_with_cis_cover_the_truth(good):
    a_true = TRUE["beta"] / (TRUE["alpha"] + TRUE["beta"])
    ab = good.allocation_exponents()
    a, a_lo, a_hi = ab["a"]
    b, b_lo, b_hi = ab["b"]
    assert a == pytest.approx(good.beta / (good.alpha + good.beta)) and a + b == pytest.approx(1.0)
    assert a == pytest.approx(a_true, abs=0.03)
    assert a_lo <= a_true <= a_hi and a_hi - a_lo < 0.15
    assert (b_lo, b_hi) == pytest.approx((1 - a_hi, 1 - a_lo))
    lo90, hi90 = good.allocation_exponents(level=0.5)["a"][1:]  # a narrower level gives a narrower interval
    assert a_lo <= lo90 <= hi90 <= a_hi


def test_optimal_allocation_ci_is_consistent_and_covers_the_true_optimum(good):
    C = np.array([1e20, 1e22])
    out = good.optimal_allocation_ci(C)
    n_mid, d_mid = good.optimal_allocation(C)
    np.testing.assert_allclose(out["N"][0], n_mid, rtol=1e-12)
    np.testing.assert_allclose(out["D"][0], d_mid, rtol=1e-12)
    np.testing.assert_allclose(6 * out["N"][0] * out["D"][0], C, rtol=1e-9)
    np.testing.assert_allclose(out["tokens_per_param"][0], d_mid / n_mid, rtol=1e-9)
    truth = ChinchillaFit(**TRUE, objective=0.0, n=0, n_starts=0).optimal_allocation(C)
    for k, t in zip(("N", "D"), truth):
        mid, lo, hi = out[k]
        assert mid.shape == C.shape and np.all(lo < mid) and np.all(mid < hi), k
        assert np.all((lo <= t) & (t <= hi)), k
    scalar = good.optimal_allocation_ci(1e21)["tokens_per_param"]
    assert np.ndim(scalar[0]) == 0 and scalar[1] < scalar[0] < scalar[2]


def test_without_bootstrap_only_the_bounds_are_judged_and_cis_are_nan():
    N, D, L = _grid(np.geomspace(1e7, 1e10, 8), [5, 20, 80], noise=0.005, seed=1)
    f = fit_chinchilla(N, D, L, top_k=10)
    assert f.determined and not f.ci_checked and f.samples is None
    a = f.allocation_exponents()["a"]
    assert math.isfinite(a[0]) and math.isnan(a[1]) and math.isnan(a[2])
    mid, lo, hi = f.optimal_allocation_ci([1e21])["N"]
    assert np.isfinite(mid).all() and np.isnan(lo).all() and np.isnan(hi).all()
    d = f.to_dict()
    assert d["determined"] is True and d["reasons"] == [] and d["ci_checked"] is False


# ------------------------------------------------------------------------------------------- not determined
def test_a_weakly_identified_design_is_returned_not_determined():
    """4 sizes within a factor 3 and 3 budgets within a factor 4, 1 % noise: E, A and alpha trade off freely."""
    N, D, L = _grid(np.geomspace(1e7, 3e7, 4), [10, 20, 40], noise=0.01, seed=0)
    f = fit_chinchilla(N, D, L, bootstrap=30, top_k=10, boot_top_k=1)
    assert not f.determined and f.ci_checked
    assert any("spans more than a decade" in r for r in f.reasons), f.reasons
    lo, hi = f.ci["A"]
    assert hi / lo > 100  # decades, not a close call
    d = json.loads(json.dumps(f.to_dict()))
    assert d["determined"] is False and d["reasons"] == f.reasons


def test_a_term_the_data_cannot_see_is_not_determined_even_without_bootstrap():
    """Losses that do not depend on N at all: the N term goes to a bound (A -> 0 or alpha -> 0) or stops anywhere
    on the flat ridge where it is invisible (scipy 1.17 stops at alpha 1.09, A 4.3): either way not determined."""
    N, D, _ = _grid(np.geomspace(1e7, 1e10, 8), [5, 20, 80])
    L = 1.8 + 2100.0 / D**0.37
    f = fit_chinchilla(N, D, L, top_k=10)
    assert not f.determined and not f.ci_checked
    at_bound = any("search bound" in r and r.split(" =")[0] in ("log A", "alpha") for r in f.reasons)
    assert at_bound or any("A/N^alpha term is below e^-10" in r for r in f.reasons), f.reasons
    assert not any("B/D^beta" in r for r in f.reasons)  # the D term carries the data: it is seen


def test_the_invisible_term_rule_reads_the_smallest_size_in_the_data():
    """A/N^alpha at the smallest N decides: e^(log A - alpha log N_min) below e^-10 is invisible, above is not."""
    from ant.laws.chinchilla import _invisible_terms

    N, D = np.array([1e7, 1e9]), np.array([1e9, 1e10])
    x = np.array([np.log(4.25), np.log(2100.0), np.log(1.8), 1.09, 0.37])  # log A, log B, log E, alpha, beta
    [reason] = _invisible_terms(x, N, D)  # 4.25 / 1e7^1.09 = e^-16.1
    assert reason.startswith("the A/N^alpha term")
    assert _invisible_terms(x, np.array([1e3, 1e9]), D) == []  # at N = 1e3 the term is e^-6.1: visible


def test_the_search_is_bounded_where_the_old_fit_ran_off():
    """A steep synthetic law far outside the box cannot return beta ~ 15 (what 3 x 2 x 2 seeds used to give)."""
    N, D, _ = _grid(np.geomspace(1e7, 1e8, 4), [5, 10, 20, 40])
    L = 1.8 + 480.0 / N**0.35 + 1e30 / D**4.0  # beta = 4 is outside [0, 3]
    f = fit_chinchilla(N, D, L, top_k=10)
    assert EXPONENT_BOUNDS[0] <= f.beta <= EXPONENT_BOUNDS[1]
    assert not f.determined and any(r.startswith("beta = 3 at its upper search bound") for r in f.reasons), f.reasons


# ------------------------------------------------------------------------------------------- consumers
def test_the_report_prints_no_number_for_an_undetermined_fit():
    from ant.analysis.chinchilla_fit import chinchilla_section

    ch = {
        "per_arch": {
            "gptplus": {"determined": False, "reasons": ["under-determined: 2 distinct token budgets D (need >= 3)"],
                        "n": 12, "sizes": [1e6, 2e6, 4e6], "budgets": [8e4, 1.6e5]},
            "angpt": {"determined": False, "reasons": ["alpha = 3 at its upper search bound [0, 3]"], "E": 1e-7,
                      "A": 1e214, "B": 1e77, "alpha": 39.0, "beta": 15.0, "n": 12, "sizes": [1e6, 2e6, 4e6],
                      "budgets": [8e4, 1.6e5, 3.2e5]},
        }
    }  # fmt: skip
    text = "\n".join(chinchilla_section(ch))
    assert "GPT+: not determined (under-determined: 2 distinct token budgets D" in text
    assert "anGPT: not determined (alpha = 3 at its upper search bound" in text
    for number in ("1e+214", "1e+77", "alpha=39", "beta=15", "E=1e-07"):
        assert number not in text


def test_fit_laws_and_the_residual_figure_carry_the_verdict(tmp_path):
    """chinchilla_fit.chinchilla records an under-determined design with its reason (no numbers); fit_residuals draws
    the residuals of the determined fit and the runs of the other."""
    from ant.analysis import chinchilla_fit, fit_residuals
    from ant.analysis.common import Context
    from ant.laws.synthetic import DEFAULT_LAWS, write_run

    root = tmp_path / "results"
    design = {"gptplus": ([1e6, 2e6, 4e6, 8e6], [2e7, 4e7, 8e7], [0]), "angpt": ([1e6, 2e6, 4e6], [8e4, 1.6e5], [0, 1])}
    for arch, (sizes, budgets, seeds) in design.items():
        law = DEFAULT_LAWS[arch]  # runs at its optimal LR and batch, so the final loss is L(N, D)
        for N, tok, s in itertools.product(sizes, budgets, seeds):
            bs, lr = round(float(law.bs_opt(N))), float(law.lr_opt(N))
            write_run(root / "runs", law, arch=arch, size=f"n{N:.0e}", num_params=N, tokens=int(tok), batch_size=bs,
                      lr=lr, seed=s, n_evals=2)  # fmt: skip
    ctx = Context(root)
    ch = chinchilla_fit.chinchilla(ctx, boot=0, workers=1, reference=False)
    bad, ok = ch["per_arch"]["angpt"], ch["per_arch"]["gptplus"]
    assert bad["determined"] is False and "2 distinct token budgets D" in bad["reasons"][0] and "alpha" not in bad
    assert ok["determined"] is True and ok["alpha"] == pytest.approx(DEFAULT_LAWS["gptplus"].alpha, rel=0.05)
    ctx.save_json("chinchilla", ch)
    numbers = fit_residuals.compute(ctx)
    assert set(numbers["per_fit"]) == {"angpt", "gptplus"}
    assert "residual" not in numbers["per_fit"]["angpt"]
    assert numbers["per_fit"]["gptplus"]["rms_log"] < 0.01  # the law generated the data: a near-exact fit
    fit_residuals.plot(ctx, numbers)
    assert (root / "figures" / "fit_residuals.png").stat().st_size > 10_000
