"""The study report's claims C5 and C6 (beyond the paper), measured from the committed tables of the noise and
wsd groups (results/study/<group>/runs.parquet, curves.parquet); C7 is in study_readings.py. The estimators are
plain functions of those tables so that tests can check them on constructed columns; study_report.py
calls the claim builders (`c5_noise_scale`, `c6_wsd`) and study_figures.py draws from the numbers they return.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ant.analysis import fig2_hp_trends
from ant.analysis.study_claims import pick_regime
from ant.analysis.study_common import (
    UNDETERMINED,
    Claim,
    Study,
    human,
    num,
    pct,
    seeds_text,
    sizes_text,
    table,
    tokens_text,
    with_ci,
)
from ant.analysis.study_verdicts import paired_difference
from ant.errors import ConfigError
from ant.laws.plotting import label, sort_archs

# The logged gns_* columns are bias-corrected EMAs with ant.train.noise_scale.EMA_BETA (a copy: importing ant.train
# loads torch, seconds the report does not need; tests/analysis/test_study_report.py checks that they agree).
EMA_BETA = 0.98
SCHEDULE = "cfg.optim.schedule"  # optim.schedule as flattened into the runs table (ant.laws.collect)


# ---------------------------------------------------------------------------------------------- C5
def logged_rows(curve: pd.DataFrame) -> pd.DataFrame:
    """A run's logged noise-scale rows (finite gns_trace and gns_g2), in step order."""
    for col in ("gns_trace", "gns_g2", "step"):
        if col not in curve:
            raise ConfigError(f"curves.{col}", "missing: the noise group needs runs with train.noise_scale: true")
    c = curve[np.isfinite(curve["gns_trace"].astype(float)) & np.isfinite(curve["gns_g2"].astype(float))]
    return c.sort_values("step")


def late_rows(curve: pd.DataFrame) -> pd.DataFrame:
    """The last half of a run's logged noise-scale rows."""
    c = logged_rows(curve)
    return c.iloc[len(c) // 2 :]


def interval_means(rows: pd.DataFrame, beta: float = EMA_BETA) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undo the logged EMAs: per logged row, the mean of the per-step |G|² and tr(Σ) estimates since the previous
    row (weights beta^age, nearly uniform over 10 steps), and the row's step gap. The logged value at step s is the
    bias-corrected EMA m_s = r_s / (1 - beta^s) (one update per step), and r_s = beta^g r_(s-g) + (1 - beta) x
    (the gap's estimates, weighted): so the gap's weighted mean is (r_s - beta^g r_(s-g)) / (1 - beta^g). Unlike
    the EMAs themselves these are nearly independent from row to row, which a bootstrap needs."""
    s = rows["step"].to_numpy(float)
    gap = np.diff(np.r_[0.0, s])
    out = []
    for col in ("gns_trace", "gns_g2"):
        raw = rows[col].to_numpy(float) * (1 - beta**s)
        out.append((raw - beta**gap * np.r_[0.0, raw[:-1]]) / (1 - beta**gap))
    return out[0], out[1], gap


def ratio_of_means(curves: list[pd.DataFrame], *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> dict:
    """Late B_simple of one or more runs (whole curves): mean(tr Σ) / mean(|G|²) over the logged rows of each
    run's last half (a ratio of means: the mean of per-row ratios is noisy and biased when |G|² is small).

    Interval: the logged EMAs are correlated over ~50 steps, so resampling them as they are understates the
    uncertainty (on simulated EMA logs, nominal 95 % intervals covered the truth 35-80 % of the time). The
    bootstrap instead resamples the per-gap means behind the EMAs (`interval_means`), in circular blocks of 2
    rows within each run, and its percentile spread, relative to its own point, is put around the estimate."""
    rows = [logged_rows(c) for c in curves]
    rows = [r for r in rows if len(r) >= 2]
    if not rows:
        return {"b_simple": None, "ci": [None, None], "n_rows": 0, "reason": "fewer than 2 logged noise-scale rows"}
    late = [r.iloc[len(r) // 2 :] for r in rows]
    n = sum(len(x) for x in late)
    tr, g2 = (np.concatenate([x[c].to_numpy(float) for x in late]) for c in ("gns_trace", "gns_g2"))
    out = {"n_rows": int(n), "trace_mean": float(tr.mean()), "g2_mean": float(g2.mean()),
           "mean_of_ratios": float(np.mean(tr / g2))}  # fmt: skip
    if not g2.mean() > 0:
        return {**out, "b_simple": None, "ci": [None, None], "reason": "the |G|² estimate is not positive"}
    b = float(tr.mean() / g2.mean())
    rng = np.random.default_rng(seed)
    s_tr, s_g2, p_tr, p_g2 = np.zeros(n_boot), np.zeros(n_boot), 0.0, 0.0
    for r in rows:
        a_tr, a_g2, gap = (x[len(r) // 2 :] for x in interval_means(r))
        w_tr, w_g2, m = a_tr * gap, a_g2 * gap, len(gap)
        p_tr, p_g2 = p_tr + w_tr.sum(), p_g2 + w_g2.sum()
        blk = min(2, m)
        idx = (rng.integers(0, m, size=(n_boot, math.ceil(m / blk)))[:, :, None] + np.arange(blk)) % m
        idx = idx.reshape(n_boot, -1)[:, :m]
        s_tr, s_g2 = s_tr + w_tr[idx].sum(1), s_g2 + w_g2[idx].sum(1)
    if not (p_g2 > 0 and p_tr > 0):
        return {**out, "b_simple": b, "ci": [None, None], "reason": "the per-gap |G|² or tr(Σ) sum is not positive"}
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = np.where(s_g2 > 0, s_tr / s_g2, np.inf) / (p_tr / p_g2)
    a = 50 * (1 - level)
    lo, hi = np.percentile(boot, a, method="lower"), np.percentile(boot, 100 - a, method="higher")
    return {**out, "b_simple": b, "ci": [b * float(lo), b * float(hi) if np.isfinite(hi) else None],
            "n_boot": n_boot, "level": level}  # fmt: skip


def noise_table(st: Study) -> pd.DataFrame:
    """Per (arch, size) of the noise group: late B_simple in sequences and tokens with its interval."""
    runs, curves = st.done("noise"), st.curves("noise")
    rows = []
    if runs.empty or curves.empty:
        return pd.DataFrame()
    for (arch, size), g in runs.groupby(["arch", "size"]):
        r = ratio_of_means([curves[curves["run_id"] == rid] for rid in g["run_id"]])
        seq = float(g["seq_len"].iloc[0])
        lo, hi = r["ci"]
        rows.append({"arch": arch, "size": size, "N": float(g["num_params"].iloc[0]), "seq_len": seq,
                     "batch_size": float(g["batch_size"].iloc[0]), "n_runs": len(g), "b_simple": r["b_simple"],
                     "lo": lo, "hi": hi, "b_tokens": None if r["b_simple"] is None else r["b_simple"] * seq,
                     "n_rows": r["n_rows"], "mean_of_ratios": r.get("mean_of_ratios"),
                     "reason": r.get("reason", "")})  # fmt: skip
    return pd.DataFrame(rows).sort_values(["N", "arch"]).reset_index(drop=True)


def _upper(hi) -> float:
    """An interval's upper end; a missing one is unbounded (the bootstrap's |G|² sum reached 0)."""
    return math.inf if hi is None or pd.isna(hi) else float(hi)


NOISE_HEADER = ["size", "arch", "B_simple, sequences [95 % CI]", "in tokens", "optimal batch (C3)", "tuned batch",
                "mean of ratios", "rows"]  # fmt: skip


def c5_noise_scale(st: Study) -> Claim:
    c = Claim("C5", "gradient noise scale vs optimal batch (beyond the paper)", "— (McCandlish et al. 2018; the "
              "paper: anGPT's optimal batch grows as N^0.984, GPT+'s as N^0.729)")  # fmt: skip
    nt = noise_table(st)
    if nt.empty:
        return c.missing("noise")
    f2 = st.fit(fig2_hp_trends.NAME) or {}
    per = f2.get("per_arch", {})
    regime = pick_regime(per)
    bs_opt = {(a, float(r["N"])): r for a in per for r in per[a].get(regime, {}).get("per_size", [])} if regime else {}
    nt["bs_opt"] = [bs_opt.get((r.arch, r.N), {}).get("bs_opt") for r in nt.itertuples()]
    # an optimum on the batch grid's edge is a bound, not an optimum: the figure draws it apart (issue 24)
    nt["bs_edge"] = [bool(bs_opt.get((r.arch, r.N), {}).get("bs_at_edge", False)) for r in nt.itertuples()]
    nt["tuned"] = [st.tuned_batch(r.arch, r.size) for r in nt.itertuples()]
    rows, larger_bs, cmp = [], [], {}
    for r in nt.itertuples():
        b = with_ci(r.b_simple, r.lo, r.hi) if pd.notna(r.b_simple) else f"n/a ({r.reason})"
        rows.append([r.size, label(r.arch), b, human(r.b_tokens), num(r.bs_opt), num(r.tuned), num(r.mean_of_ratios),
                     r.n_rows])  # fmt: skip
    for size, g in nt.groupby("size", sort=False):
        a, p = (g[g["arch"] == x] for x in ("angpt", "gptplus"))
        if a.empty or p.empty:
            continue
        a, p = a.iloc[0], p.iloc[0]
        if pd.isna(a["b_simple"]) or pd.isna(p["b_simple"]) or pd.isna(a["lo"]) or pd.isna(p["lo"]):
            cmp[size] = "n/a"
        elif a["lo"] > _upper(p["hi"]):
            cmp[size] = "larger"
        elif p["lo"] > _upper(a["hi"]):
            cmp[size] = "smaller"
        else:
            cmp[size] = "overlapping"
        if pd.notna(a["bs_opt"]) and pd.notna(p["bs_opt"]) and a["bs_opt"] > p["bs_opt"]:
            larger_bs.append(size)
    if not bs_opt:
        c.verdict, c.why = UNDETERMINED, "C3's optimal batch is not measured yet (run the hp part)"
    elif not larger_bs:
        c.verdict, c.why = UNDETERMINED, "anGPT's optimal batch is not larger than GPT+'s at any size here"
    else:
        hits = [cmp.get(s) for s in larger_bs]
        if all(h == "larger" for h in hits):
            c.verdict = "coincides"
        elif any(h == "smaller" for h in hits):
            c.verdict = "does not coincide"
        else:
            c.verdict = UNDETERMINED
        c.why = f"anGPT's optimal batch larger at {', '.join(larger_bs)}; its B_simple there: " + ", ".join(
            f"{s} {cmp.get(s, 'n/a')}" for s in larger_bs
        )
    lines = []
    for size, g in nt.groupby("size", sort=False):
        by = g.set_index("arch")
        vals = "; ".join(with_ci(by.at[a, "b_simple"], by.at[a, "lo"], by.at[a, "hi"]) for a in sort_archs(by.index))
        lines.append(f"{size}: {vals}" + (f" (anGPT {cmp[size]})" if size in cmp else ""))
    archs = "; ".join(label(a) for a in sort_archs(nt["arch"]))
    c.ours = f"late B_simple in sequences, {archs}:<br>" + "<br>".join(lines)
    runs = st.done("noise")
    micro = sorted({int(m) for m in runs.get("cfg.train.micro_batch_size", pd.Series(dtype=float)).dropna()})
    mb = f"micro-batches of {'/'.join(map(str, micro))} sequence(s)" if micro else "micro-batch size not recorded"
    batches = "/".join(str(int(b)) for b in sorted(runs["batch_size"].unique()))
    c.scale = f"{sizes_text(runs)}; {tokens_text(runs)}; {seeds_text(runs)}; batch {batches} in {mb}"
    c.numbers = {"per_arch_size": nt.to_dict(orient="records"), "anGPT_vs_GPTplus": cmp, "regime": regime}
    c.figures = ["figures/study_c5_noise_scale.png"]
    c.section = [
        "B_simple = tr(Σ)/|G|² (McCandlish et al. 2018) over the last half of the logged steps: the mean of the "
        "logged tr(Σ) EMAs over the mean of the |G|² EMAs (a ratio of means). 95 % interval: a block bootstrap "
        "over the logged steps of the per-interval means behind the EMAs (the EMAs themselves are correlated over "
        "~50 steps and would understate it). In sequences of the run's seq_len; 'mean of ratios' is the noisier "
        "per-row average, for comparison. Optimal batch: C3 (Fig. 2, per size); tuned: the batch trained "
        "(tuned.yaml).",
        "",
        *table(NOISE_HEADER, rows),
        "Figure: `figures/study_c5_noise_scale.png` (B_simple over training per size; late B_simple vs N with the "
        "optimal and tuned batches).",
    ]
    return c


# ---------------------------------------------------------------------------------------------- C6
def wsd_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (arch, size, budget): wsd minus cosine final loss paired by seed, and the cosine runs' seed spread."""
    if SCHEDULE not in runs:
        raise ConfigError(f"runs.{SCHEDULE}", "missing: cannot tell wsd from cosine runs", "cosine, wsd")
    keys = ["arch", "size", "tokens"]
    cos, wsd = (runs[runs[SCHEDULE] == s] for s in ("cosine", "wsd"))
    pairs = cos[[*keys, "seed", "final_val_loss"]].merge(wsd[[*keys, "seed", "final_val_loss"]],
                                                         on=[*keys, "seed"], suffixes=("_cos", "_wsd"))  # fmt: skip
    pairs["diff"] = pairs["final_val_loss_wsd"] - pairs["final_val_loss_cos"]
    rows = []
    for k, g in pairs.groupby(keys):
        cg = cos.set_index(keys).loc[[k], "final_val_loss"]
        std = float(cg.std(ddof=1)) if len(cg) >= 2 else math.nan
        m, mean_cos = float(g["diff"].mean()), float(cg.mean())
        ok_std = math.isfinite(std) and abs(m) <= std
        holds = bool(ok_std or abs(m) <= 0.01 * mean_cos)
        rows.append({"arch": k[0], "size": k[1], "tokens": float(k[2]), "n_pairs": len(g), "diff_mean": m,
                     "diff_min": float(g["diff"].min()), "diff_max": float(g["diff"].max()), "cos_mean": mean_cos,
                     "cos_std": std, "rel": m / mean_cos, "holds": holds})  # fmt: skip
    return pd.DataFrame(rows)


def trained_tokens(runs: pd.DataFrame) -> pd.Series:
    """Tokens a run folder actually trained: summary.json's trained_tokens, else a wsd branch's decay only
    (tokens x (steps - branch_step) / steps), else its budget."""
    t = runs["tokens"].astype(float)
    if "branch_step" in runs:
        bs = pd.to_numeric(runs["branch_step"], errors="coerce")
        t = t.where(bs.isna(), t * (runs["steps"].astype(float) - bs) / runs["steps"].astype(float))
    if "trained_tokens" in runs:
        t = pd.to_numeric(runs["trained_tokens"], errors="coerce").fillna(t)
    return t


WSD_HEADER = ["size", "arch", "budget", "seed pairs", "mean wsd − cosine", "range", "cosine seed std", "relative",
              "within noise"]  # fmt: skip


def c6_wsd(st: Study) -> Claim:
    c = Claim("C6", "one wsd run, many budgets (beyond the paper)", "— (WSD cool-down branches vs separate cosine "
              "runs; Hägele et al. 2024)")  # fmt: skip
    runs = st.done("wsd")
    if runs.empty:
        return c.missing("wsd")
    t = wsd_table(runs)
    if t.empty:
        return c.missing("wsd", "no (arch, budget, seed) with both a wsd and a cosine run: ")
    wsd = runs[runs[SCHEDULE] == "wsd"]
    cost = {a: {"trained": float(trained_tokens(g).sum()), "budgets": float(g["tokens"].sum())}
            for a, g in wsd.groupby("arch")}  # fmt: skip
    rows = [[r.size, label(r.arch), human(r.tokens), r.n_pairs, f"{r.diff_mean:+.4f}",
             f"{r.diff_min:+.4f} … {r.diff_max:+.4f}", num(r.cos_std, 3), pct(r.rel), "yes" if r.holds else "no"]
            for r in t.itertuples()]  # fmt: skip
    archs = sort_archs(t["arch"].unique())
    fails = t[~t["holds"]]
    c.verdict = "holds" if fails.empty else "does not hold"
    c.why = ("abs(wsd − cosine) ≤ the cosine seed std or 1 % at every budget" if fails.empty else
             "outside the seed std and 1 % at " + ", ".join(f"{label(r.arch)} {human(r.tokens)} ({pct(r.rel)})"
                                                           for r in fails.itertuples()))  # fmt: skip
    # worded as found (issue 24): the direction and size of the difference, with a paired interval per arch
    cos_runs = runs[runs[SCHEDULE] == "cosine"]
    paired = {a: paired_difference(wsd[wsd["arch"] == a], cos_runs[cos_runs["arch"] == a], ["size", "tokens", "seed"])
              for a in archs}  # fmt: skip
    lower, higher = t[t["rel"] < 0], t[t["rel"] > 0]
    if not fails.empty and len(lower) > len(higher):
        lo_pct, hi_pct = 100 * -lower["rel"].max(), 100 * -lower["rel"].min()
        c.verdict = "not interchangeable"
        c.why = (f"branches {lo_pct:.1f}–{hi_pct:.1f} % lower than cosine at {len(lower)} of {len(t)} (arch, budget) "
                 "cells" + "".join(f", {label(r.arch)} {human(r.tokens)} {pct(r.rel)}" for r in higher.itertuples())
                 + "; paired over budgets and seeds: " + ", ".join(
                     f"{label(a)} {100 * p['mean']:+.2f} % [{100 * p['lo']:+.2f}, {100 * p['hi']:+.2f}]"
                     for a, p in paired.items() if p["lo"] is not None))  # fmt: skip
    n_b = t.groupby("arch")["tokens"].nunique()
    if fails.empty and (len(archs) < 2 or n_b.min() < 3):  # the bar: >= 3 budgets for both archs
        c.verdict = UNDETERMINED
        c.why += f", but only {int(n_b.min())} budget(s) and {len(archs)} architecture(s) (needs >= 3 and 2)"
    lines = []
    for a in (a for a in archs if a in cost):
        ta = t[t["arch"] == a]
        share = cost[a]["trained"] / cost[a]["budgets"]
        lines.append(f"{label(a)}: wsd − cosine {', '.join(pct(x) for x in ta['rel'])} at "
                     f"{', '.join(human(x) for x in ta['tokens'])} tokens; trained {human(cost[a]['trained'])} of "
                     f"{human(cost[a]['budgets'])} budget tokens ({share:.0%})")  # fmt: skip
    c.ours = "<br>".join(lines)
    c.scale = f"{sizes_text(runs)}; {tokens_text(runs)}; {seeds_text(runs)}"
    for a, p in paired.items():
        if p["lo"] is not None:
            lines.append(f"{label(a)} paired (wsd/cosine − 1, {p['n']} pairs): {100 * p['mean']:+.2f} % "
                         f"[{100 * p['lo']:+.2f}, {100 * p['hi']:+.2f}]")  # fmt: skip
    c.ours = "<br>".join(lines)
    c.numbers = {"per_budget": t.to_dict(orient="records"), "cost": cost, "paired": paired,
                 "points": runs[["arch", "size", "tokens", "seed", SCHEDULE, "final_val_loss"]]
                 .rename(columns={SCHEDULE: "schedule"}).to_dict(orient="records")}  # fmt: skip
    c.figures = ["figures/study_c6_wsd.png"]
    c.section = [
        "Final loss of each wsd run (a cool-down branch of one trunk per seed) minus the cosine run of the same "
        "(arch, budget, seed). The branches hold where the mean difference is within the cosine runs' seed std "
        "(or 1 %) at every budget for both architectures. Cost: tokens the wsd runs trained (trunk + decays) over "
        "the summed budgets (separate cosine runs train all of them). The paired interval: wsd/cosine − 1 over every "
        "(budget, seed) pair of an architecture, Student-t (`study_verdicts.paired_difference`). Worded as found: "
        "where the branches miss the cosine runs beyond noise, mostly below them, they are 'not interchangeable'.",
        "",
        *table(WSD_HEADER, rows),
        "Figure: `figures/study_c6_wsd.png` (final loss vs budget, cosine vs wsd, seeds as points).",
    ]
    return c
