"""Verdict rules the study report applies (issue 24, items 5 and 7), on plain tables so tests can construct them.

C1 per budget regime. For each candidate run (budget D, seed s) the tokens D_ref the reference needs to reach the
candidate's final loss are read off the reference's final losses of the same seed over its budgets (linear in log
D between the two budgets that bracket the loss): the ratio D_ref / D, paired by seed. Per budget, the geometric
mean over seeds with a 95 % Student-t interval on the log ratios (n − 1 dof; seeds are the independent units).
A loss beyond the reference's range makes that seed's ratio a bound (≥ or ≤) and the budget's estimate a bound.

Verdict per budget (`judge_ratio`): 'faster' or 'slower' where the interval excludes 1, and — independently —
'smaller than the paper's' / 'larger than the paper's' wherever it excludes the paper's number (1.40x for anGPT vs
GPT+): a speedup can be undetermined in direction and still be smaller than the paper's. One summary number over
budgets only where the per-budget intervals share a common value (`summary_if_agree`): a geometric mean over
budgets whose ratios disagree hides the finding (the committed study: 1.46 at 2.5 and 0.88 at 20 tokens/param).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ant.analysis.study_common import AGREE, DISAGREE, UNDETERMINED, pct

REGIMES = ((0, 5.5, "≤ 5"), (5.5, 14, "10"), (14, 28, "20"), (28, math.inf, "≥ 40"))
MIN_REF_BUDGETS = 3  # reference budgets per size for a per-budget verdict (PCHIP needs 3; see c1_per_regime)


def regime_of(tpp: float) -> str:
    """The issue's budget regimes, in tokens per parameter: ≤ 5, 10, 20, ≥ 40."""
    return next(name for lo, hi, name in REGIMES if lo <= tpp < hi)


def _tokens_to_reach(ref: pd.DataFrame, loss: float) -> tuple[float, str]:
    """Tokens the reference (one seed: tokens, final_val_loss over budgets) needs to reach `loss`; ('', value) when
    interpolated, ('lower', D_max) when the reference never gets there, ('upper', D_min) when it is already below.
    Monotone cubic (PCHIP) in log D: linear interpolation of a convex loss curve overstates the tokens needed by
    1-2 % between budgets 2x apart, enough to call an exact 1.40x 'larger than the paper's' with tight seeds."""
    from scipy.interpolate import PchipInterpolator

    r = ref.groupby("tokens", as_index=False)["final_val_loss"].mean().sort_values("tokens")
    d, y = np.log(r["tokens"].to_numpy(float)), r["final_val_loss"].to_numpy(float)
    if loss < y.min():
        return float(np.exp(d[np.argmin(y)])), "lower"
    if loss > y[0]:
        return float(np.exp(d[0])), "upper"
    grid = np.linspace(d[0], d[-1], 4001)
    vals = PchipInterpolator(d, y)(grid) if len(d) >= 3 else np.interp(grid, d, y)
    k = int(np.argmax(vals <= loss))  # first budget whose interpolated loss reaches it
    if k == 0:
        return float(np.exp(grid[0])), ""
    t = (loss - vals[k - 1]) / (vals[k] - vals[k - 1]) if vals[k] != vals[k - 1] else 0.0
    return float(np.exp(grid[k - 1] + t * (grid[k] - grid[k - 1]))), ""


def per_budget_speedup(ref: pd.DataFrame, cand: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """ref, cand: one size's runs (tokens, num_params, seed, final_val_loss), each at its own tuned HPs. One row per
    candidate budget: tokens_per_param, regime, seeds, ratio, lo, hi, bound ('' / 'lower' / 'upper')."""
    from scipy import stats

    rows = []
    for tokens, g in cand.groupby("tokens"):
        logs, bounds, seeds = [], set(), []
        for _, c in g.iterrows():
            rs = ref[ref["seed"] == c["seed"]]
            if rs["tokens"].nunique() < 2:
                continue
            d_ref, b = _tokens_to_reach(rs, float(c["final_val_loss"]))
            logs.append(math.log(d_ref / float(tokens)))
            seeds.append(int(c["seed"]))
            if b:
                bounds.add(b)
        if not logs:
            continue
        x = np.array(logs)
        m = float(x.mean())
        if len(x) >= 2 and x.std(ddof=1) > 0:
            h = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
        else:
            h = math.nan if len(x) < 2 else 0.0
        tpp = float(tokens) / float(g["num_params"].iloc[0])
        rows.append({"tokens": float(tokens), "tokens_per_param": tpp, "regime": regime_of(tpp), "seeds": seeds,
                     "ratio": math.exp(m), "lo": math.exp(m - h) if np.isfinite(h) else None,
                     "hi": math.exp(m + h) if np.isfinite(h) else None,
                     "bound": "mixed" if len(bounds) > 1 else next(iter(bounds), "")})  # fmt: skip
    return pd.DataFrame(rows)


def judge_ratio(lo: float | None, hi: float | None, paper: float | None, bound: str = "") -> tuple[str, str]:
    """(direction, relation to the paper) of one interval. Direction: faster / slower / not determined (CI
    includes 1, or no CI). Relation: 'smaller than the paper's 1.40x' wherever the CI lies below the paper's
    number, 'larger ...' above it, '' otherwise. A lower bound can only show 'faster' and 'larger'; an upper bound
    only 'slower' and 'smaller'."""
    if lo is None or hi is None:
        return "not determined", ""
    if bound == "lower":
        hi = math.inf
    elif bound == "upper":
        lo = 0.0
    elif bound == "mixed":
        lo, hi = 0.0, math.inf
    direction = "faster" if lo > 1 else "slower" if hi < 1 else "not determined"
    rel = ""
    if paper is not None:
        if hi < paper:
            rel = f"smaller than the paper's {paper:.2f}x"
        elif lo > paper:
            rel = f"larger than the paper's {paper:.2f}x"
    return direction, rel


def summary_if_agree(rows: pd.DataFrame) -> tuple[float | None, str]:
    """The geometric mean over budgets where every per-budget interval shares a value; else None and why."""
    ok = rows[rows["lo"].notna() & rows["hi"].notna() & rows["bound"].eq("")]
    if len(ok) < 2:
        return None, "fewer than 2 budgets with an interval"
    if ok["lo"].max() > ok["hi"].min():
        a, b = ok.loc[ok["lo"].idxmax()], ok.loc[ok["hi"].idxmin()]
        return None, (f"the ratio changes with the budget ({a['ratio']:.2f}x at {a['tokens_per_param']:.3g} vs "
                      f"{b['ratio']:.2f}x at {b['tokens_per_param']:.3g} tokens/param, intervals apart)")  # fmt: skip
    return float(np.exp(np.log(ok["ratio"]).mean())), ""


def paired_difference(a: pd.DataFrame, b: pd.DataFrame, key: list[str], level: float = 0.95) -> dict:
    """Mean relative difference a/b − 1 of final losses paired on `key` (e.g. budget and seed) with a Student-t
    interval over the pairs: C6's wsd − cosine."""
    from scipy import stats

    m = a.merge(b, on=key, suffixes=("_a", "_b"))
    r = (m["final_val_loss_a"] / m["final_val_loss_b"] - 1).to_numpy(float)
    if len(r) < 2:
        return {"n": len(r), "mean": float(r.mean()) if len(r) else None, "lo": None, "hi": None}
    h = float(stats.t.ppf(0.5 + level / 2, len(r) - 1) * r.std(ddof=1) / math.sqrt(len(r)))
    return {"n": len(r), "mean": float(r.mean()), "lo": float(r.mean() - h), "hi": float(r.mean() + h)}


# ---------------------------------------------------------------------------------------------- C1 in the report
PAPER_REGIME_MIN = 10  # the paper trains at >= 10 tokens/param (5B-70B tokens at 0.5B parameters)


def c1_per_regime(best: pd.DataFrame, paper: float, ref: str = "gptplus", cand: str = "angpt") -> dict:
    """Per size with >= 2 reference budgets: the per-budget table, its verdicts and the summary rule. `best`: the
    runs at each (arch, size, budget)'s best (lr, batch) (analysis.common.best_hp_runs)."""
    out: dict = {}
    for size, g in best.groupby("size"):
        r, c = g[g["arch"] == ref], g[g["arch"] == cand]
        if r["tokens"].nunique() < 2 or c.empty:
            continue
        rows = per_budget_speedup(r, c)
        if rows.empty:
            continue
        judged = [judge_ratio(x.lo, x.hi, paper, x.bound) for x in rows.itertuples()]
        if r["tokens"].nunique() < MIN_REF_BUDGETS:
            # two budgets: interpolation between them is linear in log D, which on a convex loss curve overstates
            # the tokens needed (+5 % at a true 1.40x between budgets 4x apart, constructed data): no verdict
            judged = [("not determined", "") for _ in judged]
        rows = rows.assign(direction=[j[0] for j in judged], vs_paper=[j[1] for j in judged])
        summary, why = summary_if_agree(rows)
        if r["tokens"].nunique() < MIN_REF_BUDGETS:
            summary, why = None, f"{r['tokens'].nunique()} GPT+ budgets (need >= {MIN_REF_BUDGETS} to interpolate)"
        out[str(size)] = {"num_params": float(c["num_params"].iloc[0]), "rows": rows.to_dict(orient="records"),
                          "summary": summary, "summary_reason": why,
                          "ref_budgets": int(r["tokens"].nunique())}  # fmt: skip
    return out


def c1_verdict(per: dict, paper: float) -> tuple[str | None, str]:
    """The headline word from the per-budget rows at the paper's budgets (>= 10 tokens/param): 'smaller than the
    paper's' where some interval lies below the paper's number and none above (likewise 'larger'); None when the
    per-budget rows decide nothing (the caller keeps its direction verdict)."""
    rel = [r["vs_paper"] for d in per.values() for r in d["rows"] if r["tokens_per_param"] >= PAPER_REGIME_MIN * 0.95]
    small, large = sum(v.startswith("smaller") for v in rel), sum(v.startswith("larger") for v in rel)
    if small and not large:
        return (
            f"smaller than the paper's {paper:.2f}x",
            f"at {small} of {len(rel)} (size, budget) cells at >= 10 tokens/param the interval lies below "
            f"{paper:.2f}x, at none above",
        )
    if large and not small:
        return (
            f"larger than the paper's {paper:.2f}x",
            f"at {large} of {len(rel)} cells at >= 10 tokens/param the interval lies above {paper:.2f}x",
        )
    return None, ""


def c1_lines(per: dict, paper: float) -> list[str]:
    """The per-budget table of the C1 section (markdown)."""
    from ant.analysis.study_common import human, table  # late: the markdown table only; the rules need none

    rows = []
    for size, d in per.items():
        for r in d["rows"]:
            sign = {"lower": "≥ ", "upper": "≤ ", "mixed": "~ "}.get(r["bound"], "")
            ci = f"[{r['lo']:.3g}, {r['hi']:.3g}]" if r["lo"] is not None else "(one seed)"
            rows.append([f"{size} ({human(d['num_params'])})", f"{r['tokens_per_param']:.3g}", r["regime"],
                         ", ".join(map(str, r["seeds"])), f"{sign}{r['ratio']:.3g}x {ci}", r["direction"],
                         r["vs_paper"] or "—"])  # fmt: skip
        s = f"{d['summary']:.3g}x" if d["summary"] is not None else f"none: {d['summary_reason']}"
        rows.append([f"{size}: one number", "", "", "", s, "", ""])
    return [
        "Per budget regime, paired by seed (`ant.analysis.study_verdicts`): for each anGPT run, the tokens the GPT+ "
        "run of the same seed needs to reach its final loss (interpolated over GPT+'s budgets), over anGPT's; "
        "geometric mean over seeds with a Student-t interval (n − 1 dof). 'smaller/larger than the paper's' wherever "
        f"the interval excludes {paper:.2f}x; one number per size only where the budgets' intervals share a value. "
        "≥ marks a bound (a seed beat every GPT+ budget).",
        "",
        *table(
            ["size", "tokens/param", "regime", "seeds", "anGPT vs GPT+ [95 % CI]", "direction", "vs the paper"], rows
        ),  # fmt: skip
    ]


# ---------------------------------------------------------------------------------------------- C2
def sens_mean(s: dict, sides: list[str]) -> float | None:
    """Mean relative loss increase over the given sides (up_rel, down_rel) of one lr_sensitivity result."""
    vals = [s[k] for k in sides if s.get(k) is not None]
    return sum(vals) / len(vals) if vals and len(vals) == len(sides) else None


def spread(vals: list) -> str:
    v = [x for x in vals if x is not None]
    return f"{100 * min(v):.2f}–{100 * max(v):.2f} %" if len(v) >= 2 else "—"


def compare_sensitivity(a: dict, g: dict) -> tuple[str, str, dict]:
    """anGPT (a) vs GPT+ (g) sensitivity at one size: the sides (3x, 1/3x) inside the LR grid for both."""
    sides = [k for k in ("up_rel", "down_rel") if a.get(k) is not None and g.get(k) is not None]
    if not sides:
        return UNDETERMINED, "not determined (an optimum on the LR grid edge, or 3x lr* outside the grid)", {}
    va, vg = sens_mean(a, sides), sens_mean(g, sides)
    sa = [x for x in (sens_mean(p, sides) for p in a.get("per_seed", [])) if x is not None]
    sg = [x for x in (sens_mean(p, sides) for p in g.get("per_seed", [])) if x is not None]
    d = {"sides": sides, "angpt": va, "gptplus": vg, "angpt_seeds": sa, "gptplus_seeds": sg}
    txt = f"{pct(va)} vs {pct(vg)}"
    if len(sa) < 2 or len(sg) < 2:
        na, ng = len(a.get("per_seed", [])), len(g.get("per_seed", []))
        if na >= 2 and ng >= 2:  # the seeds exist; their own optima do not give both sides (issue 24: tiny1)
            why = (f"{len(sa)} of {na} anGPT and {len(sg)} of {ng} GPT+ seeds give a sensitivity: the others' own "
                   f"optimum lies on the LR grid's edge, or {d['sides'] and '3x'} lr* outside it")  # fmt: skip
            return UNDETERMINED, f"{txt} (not determined: {why})", d
        return UNDETERMINED, f"{txt} (not determined: < 2 seeds, no spread)", d
    if max(sa) < min(sg):
        return AGREE, f"{txt} (anGPT less sensitive; seed spreads apart)", d
    if min(sa) > max(sg):
        return DISAGREE, f"{txt} (GPT+ less sensitive; seed spreads apart)", d
    return UNDETERMINED, f"{txt} (within the seed spread)", d
