"""Study v2's headline rows (issue 24, "Must show"): C3 from the v2 HP grids, C4 as IsoFLOP with approach 3 beside
it, C1 per budget regime paired by seed. Each reads the v2 group's committed runs table only and returns None while
that group holds no runs of its part; the report then keeps the committed (v1) row, and where a v2 row exists the
v1 section follows it under its own heading (study_report.build).

Which v2 runs belong to which claim (the parts share one runs table, results/study/v2/runs.parquet):
- C3: the sizes below the held-out one (study_v2.FIT_SIZES) at ~20 tokens/param, seeds below SPEEDUP_SEEDS (the HP
  grids' seeds 0-2), in cells of >= 3 LRs (ant.laws.hp needs them); edge optima are reported, never fitted.
- C4 (study_v2_c4): the runs at the IsoFLOP design's (size, requested tokens) points (study_v2.isoflop_design), per
  arch: those of v2-isoflop-budget (each arch's batch and LR per point) once it has runs, v2-isoflop's beside them.
- C1: seeds SPEEDUP_SEEDS (fresh seeds: the tuned cell won the grid on seeds 0-2), paired by seed.
"""

from __future__ import annotations

import pandas as pd

from ant.analysis.study_common import AGREE, DISAGREE, UNDETERMINED, Claim, combine, human, num, overlap, table
from ant.analysis.study_common import vs_paper as vs_paper_words
from ant.analysis.study_v2 import ARCHS, SPEEDUP_SEEDS, TPP, hp_runs, requested_tokens
from ant.analysis.study_v2_c4 import c4_v2, with_ci  # noqa: F401  (C4 lives there; the report imports it here)
from ant.analysis.study_verdicts import MIN_REF_BUDGETS, c1_lines, c1_per_regime, c1_verdict
from ant.laws.hp import hp_trends
from ant.laws.plotting import label
from ant.laws.reference import PAPER_HP, PAPER_SPEEDUP

MIN_SIZES = 5  # the C3: >= 5 sizes with interior optima
MIN_SEEDS = 4  # the C1: >= 4 seeds per regime


# ---------------------------------------------------------------------------------------------- C3
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
