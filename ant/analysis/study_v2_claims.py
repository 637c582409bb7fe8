"""Study v2's headline rows (issue 24, "Must show"): C3 from the v2 HP grids, C4 as IsoFLOP with approach 3 beside
it, C1 per budget regime paired by seed. Each reads the v2 group's committed runs table only and returns None while
that group holds no runs of its part; the report then keeps the committed (v1) row, and where a v2 row exists the
v1 section follows it under its own heading (study_report.build).

Which v2 runs belong to which claim (the parts share one runs table, results/study/v2/runs.parquet):
- C3: the sizes below the held-out one (study_v2.FIT_SIZES) at ~20 tokens/param, seeds below SPEEDUP_SEEDS (the HP
  grids' seeds 0-2), in cells of >= 3 LRs (ant.laws.hp needs them); edge optima are reported, never fitted.
- C4: the runs at the IsoFLOP design's (size, requested tokens) points (study_v2.isoflop_design), per arch: those
  of v2-isoflop-budget (each arch's batch and LR per point) once it has runs, v2-isoflop's tuned cells beside them.
- C1: seeds SPEEDUP_SEEDS (fresh seeds: the tuned cell won the grid on seeds 0-2), paired by seed.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ant.analysis.study_common import AGREE, DISAGREE, MIXED, UNDETERMINED, Claim, combine, human, num, overlap, table
from ant.analysis.study_common import vs_paper as vs_paper_words
from ant.analysis.study_v2 import (
    ARCHS,
    FIT_SIZES,
    TPP,
    at_point,
    at_tuned,
    isoflop_budget_points,
    isoflop_design,
    requested_tokens,
)
from ant.analysis.study_verdicts import MIN_REF_BUDGETS, c1_lines, c1_per_regime, c1_verdict
from ant.errors import ConfigError
from ant.laws.fits import FitError
from ant.laws.hp import hp_trends
from ant.laws.isoflop_design import approach3_beside, isoflop_nopt, parabola_residuals
from ant.laws.plotting import label
from ant.laws.reference import PAPER_FRONTIER, PAPER_HP, PAPER_SPEEDUP

SPEEDUP_SEEDS = (10, 11, 12, 13)  # sweeps/study2/speedup.yaml
MIN_SIZES = 5  # the C3: >= 5 sizes with interior optima
MIN_SEEDS = 4  # the C1: >= 4 seeds per regime
BOOT = 500  # bootstrap resamples of the IsoFLOP exponent (over runs)
A3_BOOT = 100  # bootstrap resamples of the approach-3 fit (each a grid search: the slow part)


def with_ci(v: float, lo: float, hi: float, digits: int = 3) -> str:
    return f"{v:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


# ---------------------------------------------------------------------------------------------- C3
def hp_runs(runs: pd.DataFrame) -> pd.DataFrame:
    if runs.empty:
        return runs
    tpp = requested_tokens(runs) / runs["num_params"].astype(float)
    r = runs[runs["size"].isin(FIT_SIZES) & tpp.between(TPP * 0.95, TPP * 1.1) & (runs["seed"] < min(SPEEDUP_SEEDS))]
    return r[r.groupby(["arch", "size", "batch_size"])["lr"].transform("nunique") >= 3] if len(r) else r


def lr_with_size(arch: str, fit, per_size: pd.DataFrame) -> str:
    """What the optimal LR does with size, plainly: falls / rises where the exponent's CI excludes 0, else no trend
    beyond noise; the interior optima's end points and the paper's exponent beside it."""
    inside = per_size[per_size["in_fit"]].sort_values("N")
    ends = (f" ({num(inside['lr_opt'].iloc[0])} at {human(inside['N'].iloc[0])} → {num(inside['lr_opt'].iloc[-1])} at "
            f"{human(inside['N'].iloc[-1])})") if len(inside) >= 2 else ""  # fmt: skip
    paper = PAPER_HP[arch]["lr"][1]
    if fit is None:
        return f"{label(arch)}'s optimal LR vs size: not determined (< 3 interior optima){ends}"
    lo, hi = sorted(fit.exponent_ci)
    word = "falls with size" if hi < 0 else "rises with size" if lo > 0 else "shows no trend beyond noise"
    theirs = "stays near constant" if arch == "angpt" else "falls"
    return (f"{label(arch)}'s optimal LR {word}: N^{with_ci(fit.exponent, lo, hi)}{ends}; the paper: N^{paper} "
            f"({theirs}); ours is {vs_paper_words(lo, hi, paper)}")  # fmt: skip


def c3_v2(st) -> Claim | None:
    r = hp_runs(st.done("v2"))
    if r.empty:
        return None
    p = PAPER_HP
    c = Claim("C3", "optimal batch and LR vs N (Fig. 2)",
              f"anGPT BS ∝ N^{p['angpt']['bs'][1]}, LR ∝ N^{p['angpt']['lr'][1]}; GPT+ BS ∝ N^{p['gptplus']['bs'][1]}, "
              f"LR ∝ N^{p['gptplus']['lr'][1]} (32M–1B, 20 tokens/param)")  # fmt: skip
    trends = hp_trends(r, by="tokens_per_param")
    rows, cells, numbers, fits, excluded, lr_line = [], [], {}, {}, [], ""
    for arch in ARCHS:
        t = next(iter(trends.get(arch, {}).values()), None)
        if t is None:
            continue
        numbers[arch] = t.to_dict()
        excluded += [f"{label(arch)} {human(e['N'])}: {e['reason']}" for e in t.excluded]
        for key, fit in (("bs", t.bs_fit), ("lr", t.lr_fit)):
            fits[(arch, key)] = fit
            if fit is None:
                rows.append([label(arch), key.upper(), "not determined", "—", t.n_interior, t.n_excluded,
                             "< 3 sizes with interior optima"])  # fmt: skip
                cells.append(f"{label(arch)} {key.upper()}: not determined ({t.n_interior} interior optima)")
                continue
            lo, hi = sorted(fit.exponent_ci)
            where = vs_paper_words(lo, hi, p[arch][key][1])
            few = f"; {t.n_interior} sizes, the design asks >= {MIN_SIZES}" if t.n_interior < MIN_SIZES else ""
            rows.append([label(arch), key.upper(), with_ci(fit.exponent, lo, hi), num(fit.r2, 2), t.n_interior,
                         t.n_excluded, where + few])  # fmt: skip
            cells.append(f"{label(arch)} {key.upper()} ∝ N^{with_ci(fit.exponent, lo, hi)} ({where})")
        if arch == "angpt":
            lr_line = lr_with_size(arch, t.lr_fit, t.per_size)
            cells.append(lr_line)
    parts = []
    for key, word in (("bs", "optimal batch grows faster with N"), ("lr", "optimal LR falls more slowly with N")):
        fa, fg = fits.get(("angpt", key)), fits.get(("gptplus", key))
        if not (fa and fg):
            parts.append((UNDETERMINED, f"{key.upper()}: not determined (a fit is missing)"))
        elif overlap(sorted(fa.exponent_ci), sorted(fg.exponent_ci)):
            parts.append((UNDETERMINED, f"{key.upper()}: exponent CIs overlap"))
        elif fa.exponent > fg.exponent:
            parts.append((AGREE, f"{key.upper()}: anGPT's {word} (CIs apart)"))
        else:
            parts.append((DISAGREE, f"{key.upper()}: the opposite of the paper (CIs apart)"))
    c.verdict = combine([v for v, _ in parts])
    c.why = "; ".join(w for _, w in parts) + f"; {len(excluded)} (arch, size) optima on a grid edge, not fitted"
    c.ours = "<br>".join(cells)
    c.scale = (f"v2: {r['size'].nunique()} sizes {human(r['num_params'].min())}–{human(r['num_params'].max())} "
               f"(all parameters), {TPP} tokens/param, sequences of {int(r['seq_len'].iloc[0])} bytes, "
               f"{r['seed'].nunique()} seed(s)")  # fmt: skip
    c.numbers = {"per_arch": numbers}
    per = []
    for arch in ARCHS:
        d = numbers.get(arch)
        for x in (d or {}).get("per_size", []):
            per.append([label(arch), human(x["N"]), num(x["bs_opt"]), num(x["lr_opt"]), num(x["loss_opt"], 4),
                        "yes" if x["in_fit"] else f"no ({x['exclude_reason']})"])  # fmt: skip
    c.section = [
        f"Study v2 (`results/study/v2/`): two-stage Akima optima (`ant.laws.hp`) at {TPP} tokens/param, power laws "
        "over the sizes whose LR and batch optima are both interior (95 % CIs); an optimum on the edge of the "
        "(extended) grid is listed and never fitted. N counts all parameters, as the paper does; batches are in "
        "sequences of the v2 length, so only the exponents compare.",
        "",
        *table(["arch", "law", "exponent [95 % CI]", "R²", "sizes in fit", "excluded (edge)", "paper"], rows),
        *(["", lr_line + ".", ""] if lr_line else []),
        *(table(["arch", "N", "optimal batch", "optimal LR", "loss", "in fit"], per) if per else []),
    ]
    return c


# ---------------------------------------------------------------------------------------------- C4
def isoflop_runs(runs: pd.DataFrame, points=None, tuned: dict | None = None) -> pd.DataFrame:
    """The completed runs at the IsoFLOP design's points (study_v2.at_point), with their `level`. Where a point holds
    runs at more than one (batch, LR), the tuned cell's are kept (`tuned`: v2 tuned.yaml); a point without one holds
    its fallback run (study_v2.isoflop_fallbacks), marked `fallback`."""
    if runs.empty:
        return runs
    points = isoflop_design() if points is None else points
    level = pd.Series(np.nan, index=runs.index)
    for p in points:
        level[at_point(runs, p.size, p.tokens)] = p.level
    r = runs.assign(level=level)[level.notna()]
    r = r.assign(fallback=~at_tuned(r, tuned) if tuned else False)
    has_tuned = r.groupby(["arch", "level", "size"])["fallback"].transform(lambda f: bool((~f).any()))
    return r[~(r["fallback"] & has_tuned)]


def isoflop_budget_runs(runs: pd.DataFrame, points: list[dict] | None = None,
                        whole_levels: bool = True) -> tuple[pd.DataFrame, list[str]]:  # fmt: skip
    """The completed runs of part v2-isoflop-budget (each arch at its own batch and LR per design point,
    study_v2.isoflop_budget_points), with their `level`, at the levels whose every point (both architectures) holds a
    finished run (every level with `whole_levels` False); and notes for the report (diverged runs, levels not
    trained yet). `runs`: every v2 run, any status."""
    if runs.empty:
        return runs, []
    if points is None:
        try:
            points = isoflop_budget_points(runs)
        except (ConfigError, FitError):  # no HP laws, so no budget design (constructed tables, early parts)
            return runs.iloc[:0], []
    level = pd.Series(np.nan, index=runs.index)
    have: dict[float, list[bool]] = {}
    for q in points:
        same_lr = pd.Series(np.isclose(runs["lr"].to_numpy(float), q["lr"]), index=runs.index)
        at = runs["arch"].eq(q["arch"]) & at_point(runs, q["size"], q["tokens"])
        at &= runs["batch_size"].eq(q["batch_size"]) & same_lr
        level[at] = q["level"]
        have.setdefault(q["level"], []).append(bool(at.any()))
    if not any(any(h) for h in have.values()):
        return runs.iloc[:0], []  # the part has not trained
    full = [lv for lv, h in have.items() if all(h) or not whole_levels]
    r = runs.assign(level=level)[level.isin(full)]
    notes = []
    if len(full) < len(have):
        missing = [f"{lv:.3g}" for lv, h in sorted(have.items()) if not all(h)]
        notes.append(f"levels not trained yet: {', '.join(missing)} FLOPs")
    bad = r[~r["status"].eq("completed")]
    if len(bad):
        notes.append(
            f"{len(bad)} run(s) left out ({', '.join(sorted(set(bad['status'])))}): "
            + "; ".join(f"{label(x.arch)} {x.size} at {x.level:.3g} seed {x.seed}" for x in bad.itertuples())
        )
    return r[r["status"].eq("completed")], notes


def tuned_design_runs(st, points=None, budget_points=None) -> pd.DataFrame:
    """v2-isoflop's runs (tuned cells and fallbacks), never the batch-per-budget part's runs at the same points:
    those are not at the tuned cell either, and `isoflop_runs` would take them for fallbacks."""
    done = st.done("v2")
    level = isoflop_budget_runs(done, budget_points, whole_levels=False)[0].index
    return isoflop_runs(done.drop(index=level), points, st.tuned_of("v2"))


def isoflop_both(g: pd.DataFrame):
    """The C4 rule (docs/study.md, fixed before v2-isoflop-budget ran): `isoflop_nopt` on the runs (seeds resampled
    within each point) and on the points' seed means (pooled parabola residuals resampled, so lack of fit counts);
    determined only if both are, the interval their union. With one run a point they are one bootstrap, run once."""
    runs_est = isoflop_nopt(g, boot=BOOT)
    means = g.groupby(["level", "num_params"], as_index=False)["final_val_loss"].mean()
    one_each = len(means) == len(g)  # the same data: a second bootstrap would only redraw (and widen) the interval
    lof_est = runs_est if one_each else isoflop_nopt(means, boot=BOOT)
    reasons = runs_est.reasons + [f"{x} (the points' seed means, lack of fit resampled)" for x in lof_est.reasons
                                  if x not in runs_est.reasons]  # fmt: skip
    ci = (min(runs_est.ci[0], lof_est.ci[0]), max(runs_est.ci[1], lof_est.ci[1]))
    resid = parabola_residuals(means.rename(columns={"final_val_loss": "loss"}))[1]
    d = runs_est.to_dict() | {"ci": list(ci), "determined": not reasons, "reasons": reasons,
                              "ci_runs": list(runs_est.ci), "ci_lack_of_fit": list(lof_est.ci),
                              "boot_ok_lack_of_fit": lof_est.n_boot_ok,
                              "lack_of_fit_sd": float(np.sqrt(np.mean(resid**2))) if len(resid) else None}  # fmt: skip
    return runs_est, d


def _isoflop_rows(r: pd.DataFrame, design: str) -> tuple[list, list, dict, dict, list]:
    """Per arch: the table row, the headline cells, the numbers, the determined CIs and the verdict words."""
    rows, cells, numbers, cis, verdicts = [], [], {}, {}, []
    for arch in ARCHS:
        g = r[r["arch"] == arch]
        if g.empty:
            continue
        paper = PAPER_FRONTIER[arch]["aN"]
        try:
            est, d = isoflop_both(g)
        except FitError as e:
            est, d = None, {"determined": False, "reasons": [str(e)]}
        a3 = approach3_beside(g, bootstrap=A3_BOOT)
        numbers[arch] = {"isoflop": d, "approach3": a3}
        if d["determined"]:
            lo, hi = sorted(d["ci"])
            cis[arch] = (lo, hi)
            where = vs_paper_words(lo, hi, paper)
            verdicts.append(where.split(" the paper")[0])
            iso = with_ci(d["a"], lo, hi)
            cells.append(f"{label(arch)} IsoFLOP a = {iso} ({where})")
        else:
            iso = "not determined"
            where = "; ".join(d["reasons"])
            cells.append(f"{label(arch)} IsoFLOP a: not determined ({where})")
        a3s = (with_ci(a3["a"], *sorted(a3["ci"])) if a3.get("determined") and np.isfinite(a3["ci"]).all()
               else num(a3["a"]) if a3.get("determined") else "not determined")  # fmt: skip
        cells.append(f"{label(arch)} approach 3 a = {a3s}")
        kept = int(est.levels["kept"].sum()) if est is not None else 0
        seeds = int(g.groupby(["level", "size"])["seed"].nunique().min())
        sd = d.get("lack_of_fit_sd")
        rows.append([design, label(arch), iso, a3s, f"{kept} of {g['level'].nunique()}", len(g), seeds,
                     "—" if sd is None else f"{sd:.3f}", where])  # fmt: skip
    return rows, cells, numbers, cis, verdicts


C4_HEAD = ["design", "arch", "IsoFLOP a [95 % CI]", "approach 3 a", "levels with a vertex", "runs", "seeds a point",
           "lack of fit (sd)", "vs the paper"]  # fmt: skip


def c4_v2(st, points=None, budget_points=None) -> Claim | None:
    """C4 from the batch-per-budget IsoFLOP (v2-isoflop-budget) once it has runs, the tuned-batch one (v2-isoflop)
    beside it; from the tuned-batch one alone before."""
    budget_r, notes = isoflop_budget_runs(st.runs("v2"), budget_points)
    tuned_r = tuned_design_runs(st, points, budget_points)
    if tuned_r.empty and budget_r.empty:
        return None
    r = budget_r if len(budget_r) else tuned_r
    pf = PAPER_FRONTIER
    c = Claim("C4", "compute scaling (Fig. 4, Table J.1)",
              f"N_opt ∝ C^a: anGPT {pf['angpt']['aN']:.3f}, GPT+ {pf['gptplus']['aN']:.3f}; L = A C^-α: anGPT α "
              f"{pf['angpt']['alpha']}, GPT+ α {pf['gptplus']['alpha']} (\"nearly identical\")")  # fmt: skip
    designs = [("batch per budget", budget_r), ("batch tuned at 20 tokens/param", tuned_r)]
    designs = [(name, x) for name, x in designs if len(x)]
    rows, numbers = [], {}
    for i, (name, x) in enumerate(designs):
        rws, cells, nums, cis, verdicts = _isoflop_rows(x, name)
        rows += rws
        if i == 0:  # the headline: the first design present
            head_cells, head_numbers, head_cis, head_verdicts = cells, nums, cis, verdicts
        else:
            numbers[name] = nums
            head_cells = [*head_cells, *(f"{x} ({name})" for x in cells if "IsoFLOP" in x)]
    if not head_verdicts:
        c.verdict, c.why = UNDETERMINED, "no architecture's IsoFLOP exponent is determined"
    else:
        v = set(head_verdicts)
        c.verdict = next(iter(v)) + " the paper's" if len(v) == 1 else MIXED
        c.why = "; ".join(f"{label(a)} a ∈ [{lo:.3g}, {hi:.3g}] vs the paper's {pf[a]['aN']:.3f}"
                          for a, (lo, hi) in head_cis.items())  # fmt: skip
        if len(head_cis) == 2:
            same = overlap(*head_cis.values())
            c.why += "; the two architectures' intervals " + ("overlap (one exponent fits both)" if same
                                                               else "are apart (different exponents)")  # fmt: skip
    c.why += f" ({designs[0][0]})" if len(designs) > 1 else ""
    c.ours = "<br>".join(head_cells)
    c.scale = (f"v2 IsoFLOP, {designs[0][0]}: {r['level'].nunique()} compute levels {r['level'].min():.3g}–"
               f"{r['level'].max():.3g} FLOPs, {r.groupby('level')['size'].nunique().min()}+ sizes each "
               f"({(requested_tokens(r) / r['num_params']).min():.2g}–"
               f"{(requested_tokens(r) / r['num_params']).max():.3g} tokens/param), "
               f"{int(r.groupby(['arch', 'level', 'size'])['seed'].nunique().min())}+ seed(s) a point")  # fmt: skip
    c.figures = ["figures/study_c4_isoflop.png"]
    c.numbers = {"per_arch": head_numbers, "design": designs[0][0], **({"beside": numbers} if numbers else {})}
    c.section = [
        "Study v2 IsoFLOP (Chinchilla approach 2, `ant.laws.isoflop_design`): per compute level a parabola of the "
        "final loss over log N, its vertex N_opt, and N_opt ∝ C^a over the levels; the 95 % interval is a bootstrap "
        "over runs (a run is the unit, never one run's evaluations). Approach 3 (a = β / (α + β) of the fitted "
        "L(N, D)) on the same runs beside it. With two seeds a point the exponent is determined only if it is both "
        "with the seeds resampled and with the points' lack of fit resampled, and its interval is the union "
        '(docs/study.md, "IsoFLOP with the batch chosen per budget"). The headline reads the first design below. '
        "Lack of fit: the pooled leverage-corrected residual sd of the points' seed means about their level's "
        "parabola (seed noise alone gives ~0.009 for a mean of two seeds).",
        "",
        *table(C4_HEAD, rows),
    ]
    if notes:
        c.section += ["", "Batch per budget: " + "; ".join(notes) + "."]
    fb = tuned_r[tuned_r["fallback"]] if "fallback" in tuned_r else tuned_r.iloc[:0]
    if len(fb):
        where = [f"{label(x.arch)} {x.size} at {x.level:.3g} FLOPs (batch {x.batch_size}, LR {x.lr:g})"
                 for x in fb.itertuples()]  # fmt: skip
        c.section += ["", "Tuned-batch design points whose run at the size's tuned HPs diverged, trained at the "
                      "next-best cell of that size's HP grid instead (part v2-isoflop-fallback; the rule in "
                      "docs/study.md): " + "; ".join(where) + "."]  # fmt: skip
    return c


# ---------------------------------------------------------------------------------------------- C1
def c1_v2(st) -> Claim | None:
    r = st.done("v2")
    r = r[r["seed"].isin(SPEEDUP_SEEDS)] if len(r) else r
    if r.empty:
        return None
    paper = PAPER_SPEEDUP["angpt"]
    c = Claim("C1", "convergence speedup (Fig. 3)", f"anGPT {paper:.2f}x fewer tokens than GPT+ (0.5B, 5B–70B tokens, "
              "1 seed)")  # fmt: skip
    per = c1_per_regime(r, paper)
    word, why = c1_verdict(per, paper)
    cells, dirs = [], []
    for size, d in per.items():
        for x in d["rows"]:
            ci = f" [{x['lo']:.3g}, {x['hi']:.3g}]" if x["lo"] is not None else " (one seed)"
            rel = f", {x['vs_paper']}" if x["vs_paper"] else ""
            cells.append(f"{size} {x['tokens_per_param']:.3g} tok/param: {x['ratio']:.3g}x{ci} ({x['direction']}{rel})")
            dirs.append(x["direction"])
        if d["summary"] is not None:
            cells.append(f"{size}: one number {d['summary']:.3g}x (the budgets agree)")
    seeds = r.groupby(["arch", "size", "tokens"])["seed"].nunique().min()
    tpp = requested_tokens(r) / r["num_params"].astype(float)
    notes = []
    if seeds < MIN_SEEDS:
        notes.append(f"only {seeds} seed(s) in some cell (the design asks >= {MIN_SEEDS})")
    if tpp.max() < 38:
        notes.append("no budget of >= 40 tokens/param")
    few = [f"{s} ({d['ref_budgets']} GPT+ budgets)" for s, d in per.items() if d["ref_budgets"] < MIN_REF_BUDGETS]
    if few:
        notes.append(f"no per-budget verdict at {', '.join(few)}: need >= {MIN_REF_BUDGETS} to interpolate")
    if word is None:
        word = ("faster" if "faster" in dirs and "slower" not in dirs else
                "slower" if "slower" in dirs and "faster" not in dirs else UNDETERMINED)  # fmt: skip
        why = f"directions per (size, budget): {', '.join(dirs) or 'none'}"
    c.verdict, c.why = word, "; ".join([why, *notes])
    c.ours = "<br>".join(cells) or "no (size, budget) with a GPT+ budget sweep"
    seed_list = ", ".join(map(str, sorted(set(r["seed"]))))
    c.scale = (f"v2: {r['size'].nunique()} size(s) {', '.join(sorted(set(r['size'])))}; {tpp.min():.3g}–"
               f"{tpp.max():.3g} tokens/param; seeds {seed_list}, paired")  # fmt: skip
    c.numbers = {"per_size": per}
    c.section = ["Study v2, per budget regime (fresh seeds, each architecture at its v2 optimum).", "",
                 *c1_lines(per, paper)]  # fmt: skip
    return c
