"""Study v2's C4 row (issue 24, "Must show"): N_opt(C) by IsoFLOP with approach 3 beside it, from the committed v2
runs table. Three designs share the v2-isoflop points: the LR tuned per point on one head-dim family (part
v2-isoflop-scan, the best of three LRs or more a point; the headline once it has runs, by the rule preregistered in
docs/study.md "C4 with the LR tuned per point"), the batch chosen per budget (part v2-isoflop-budget, 2 seeds a point;
the headline before, by its own preregistered rule) and the batch tuned at 20 tokens/param (v2-isoflop with its
fallbacks, 1 seed). Where part v2-headdim shows the head-dim-8 rungs' offset, the last two are also read with that
offset removed, and the tuned one on a ladder of one head dim (v2-isoflop-hd8), labelled exploratory
(study_v2_headdim).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ant.analysis import study_v2_headdim as headdim
from ant.analysis import study_v2_scan as scan
from ant.analysis.study_common import MIXED, UNDETERMINED, Claim, num, overlap, table
from ant.analysis.study_common import vs_paper as vs_paper_words
from ant.analysis.study_v2 import (
    ARCHS,
    at_cell,
    at_point,
    at_tuned,
    budget_laws,
    isoflop_budget_points,
    isoflop_design,
    requested_tokens,
)
from ant.errors import ConfigError
from ant.laws.fits import FitError
from ant.laws.isoflop_design import approach3_beside, isoflop_nopt
from ant.laws.plotting import label
from ant.laws.reference import PAPER_FRONTIER

BOOT = 500  # bootstrap resamples of the IsoFLOP exponent (over runs)
A3_BOOT = 100  # bootstrap resamples of the approach-3 fit (each a grid search: the slow part)


def with_ci(v: float, lo: float, hi: float, digits: int = 3) -> str:
    return f"{v:.{digits}g} [{lo:.{digits}g}, {hi:.{digits}g}]"


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
        at = at_cell(runs, q)
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
    """v2-isoflop's runs (tuned cells and fallbacks), never the batch-per-budget or LR-scan parts' runs at the same
    points: those are not at the tuned cell either, and `isoflop_runs` would take them for fallbacks."""
    done = st.done("v2")
    if done.empty:  # no v2 runs (a fresh study, constructed tables of other groups): nothing to read
        return done
    pts = budget_design(st)[0] if budget_points is None else budget_points
    level = isoflop_budget_runs(done, pts, whole_levels=False)[0].index
    done = done.drop(index=level)
    tuned = st.tuned_of("v2")
    scanned = scan.at_scan(done, scan.scan_points(pts)) & ~at_tuned(done, tuned)
    return isoflop_runs(done[~scanned], points, tuned)


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
    d = runs_est.to_dict() | {"ci": list(ci), "determined": not reasons, "reasons": reasons,
                              "ci_runs": list(runs_est.ci), "ci_lack_of_fit": list(lof_est.ci),
                              "boot_ok_lack_of_fit": lof_est.n_boot_ok,
                              "lack_of_fit_sd": lof_est.lack_of_fit_sd}  # fmt: skip
    return runs_est, d


def _offset_removed(g: pd.DataFrame, off: dict):
    """C4's exploratory reading (docs/study.md "The head-dim offset"): isoflop_both with the head-dim-8 points
    lowered by δ and by both ends of δ's interval; determined only if all three are, the interval their union."""
    ests = [isoflop_both(headdim.corrected(g, x)) for x in (off["delta"], *off["ci"])]
    est, d = ests[0]
    reasons = list(dict.fromkeys(r for _, e in ests for r in e["reasons"]))
    lo, hi = min(e["ci"][0] for _, e in ests), max(e["ci"][1] for _, e in ests)
    return est, d | {"ci": [lo, hi], "determined": not reasons, "reasons": reasons, "delta": off}


def _isoflop_rows(r: pd.DataFrame, design: str, offsets: dict | None = None) -> tuple[list, list, dict, dict, list]:
    """Per arch: the table row, the headline cells, the numbers, the determined CIs and the verdict words. With
    `offsets` (headdim.offset), the exploratory reading: archs whose δ is not the head dim's are left out."""
    rows, cells, numbers, cis, verdicts = [], [], {}, {}, []
    for arch in ARCHS:
        g = r[r["arch"] == arch]
        if g.empty or (offsets is not None and not offsets.get(arch, {}).get("is_head_dim")):
            continue
        paper = PAPER_FRONTIER[arch]["aN"]
        try:
            est, d = isoflop_both(g) if offsets is None else _offset_removed(g, offsets[arch])
        except FitError as e:
            est, d = None, {"determined": False, "reasons": [str(e)]}
        if offsets is not None:
            g = headdim.corrected(g, offsets[arch]["delta"])
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


FAMILY = "batch tuned at 20 tokens/param, one head-dim family (exploratory)"  # part v2-isoflop-hd8


def budget_design(st) -> tuple[list[dict], dict | None]:
    """The batch-per-budget design's points (the LR scan's too) and the HP laws they come from; ([], None) without
    HP laws (constructed tables, early parts). It fits the laws, so c4_v2 computes it once and passes it on."""
    try:
        laws = budget_laws(st.runs("v2"))
        return isoflop_budget_points(st.runs("v2"), laws), laws
    except (ConfigError, FitError):
        return [], None


def scan_runs(st, budget_points=None, laws: dict | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Parts v2-isoflop-scan, -sizes, -bracket and -up: the scan's points, the sizes added where a level had no
    interior vertex, those added where a vertex had fewer than two sizes on one side, and anGPT's level above 2e12
    (study_v2_scan), empty before the part or without HP laws. `laws`: study_v2.budget_laws (fitted
    here when None)."""
    pts = budget_points
    if pts is None:
        pts, fitted = budget_design(st)
        laws = fitted if laws is None else laws
    if pts and laws is None:
        try:
            laws = budget_laws(st.runs("v2"))
        except (ConfigError, FitError):  # constructed tables without HP runs: no sizes to add
            laws = None
    stages = scan.design_stages(st.runs("v2"), pts, laws) if laws else {"scan": scan.scan_points(pts)}
    return scan.scan_ladder(st.runs("v2"), [q for added in stages.values() for q in added])


def c4_v2(st, points=None, budget_points=None, laws: dict | None = None) -> Claim | None:
    """C4 from the first design that has runs, the others beside it: the LR tuned per point on one head-dim family
    (v2-isoflop-scan, the headline by the rule preregistered in docs/study.md "C4 with the LR tuned per point"), the
    batch per budget (v2-isoflop-budget), the batch tuned at 20 tokens/param (v2-isoflop)."""
    if budget_points is None:
        budget_points, fitted = budget_design(st)
        laws = fitted if laws is None else laws
    budget_r, notes = isoflop_budget_runs(st.runs("v2"), budget_points)
    tuned_r = tuned_design_runs(st, points, budget_points)
    scan_r, scan_notes = scan_runs(st, budget_points, laws)
    if tuned_r.empty and budget_r.empty and scan_r.empty:
        return None
    pf = PAPER_FRONTIER
    c = Claim("C4", "compute scaling (Fig. 4, Table J.1)",
              f"N_opt ∝ C^a: anGPT {pf['angpt']['aN']:.3f}, GPT+ {pf['gptplus']['aN']:.3f}; L = A C^-α: anGPT α "
              f"{pf['angpt']['alpha']}, GPT+ α {pf['gptplus']['alpha']} (\"nearly identical\")")  # fmt: skip
    designs = [(scan.DESIGN, scan_r), ("batch per budget", budget_r), ("batch tuned at 20 tokens/param", tuned_r)]
    designs = [(name, x) for name, x in designs if len(x)]
    r = designs[0][1]
    rows, numbers = [], {}
    for i, (name, x) in enumerate(designs):
        rws, cells, nums, cis, verdicts = _isoflop_rows(x, name)
        rows += rws
        if i == 0:  # the headline: the first design present
            head_cells, head_numbers, head_cis, head_verdicts = cells, nums, cis, verdicts
        else:
            numbers[name] = nums
            head_cells = [*head_cells, *(f"{cell} ({name})" for cell in cells if "IsoFLOP" in cell)]
    offsets = headdim.offset(st.runs("v2"))
    explore = {}
    if any(o["is_head_dim"] for o in offsets.values()):
        for name, x in designs:
            if name == scan.DESIGN:  # one head-dim family already: there is no offset to remove
                continue
            rws, cells, nums, cis, _ = _isoflop_rows(x, f"{name}, head-dim offset removed (exploratory)", offsets)
            rows += rws
            explore[name] = {"numbers": nums, "cis": cis}
            head_cells += [
                f"{cell} ({name}, head-dim offset removed: exploratory)" for cell in cells if "IsoFLOP" in cell
            ]
    one = headdim.hd8_ladder(tuned_r, st.runs("v2"), st.tuned_of("v2")) if len(tuned_r) else tuned_r
    if len(one):  # part v2-isoflop-hd8: the tuned design on a ladder of one head dim
        rws, cells, nums, cis, _ = _isoflop_rows(one, FAMILY)
        rows += rws
        explore[FAMILY] = {"numbers": nums, "cis": cis}
        head_cells += [f"{cell} ({FAMILY})" for cell in cells if "IsoFLOP" in cell]
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
        c.why += "".join(f"; {label(a)} not determined" for a in head_numbers if a not in head_cis)
    c.why += f" ({designs[0][0]})" if len(designs) > 1 else ""
    for name, e in explore.items():
        if e["cis"]:
            ranges = ", ".join(f"{label(a)} a ∈ [{lo:.3g}, {hi:.3g}]" for a, (lo, hi) in e["cis"].items())
            what = name if name == FAMILY else f"exploratory, head-dim offset removed ({name})"
            c.why += f"; {what}: {ranges}"
    c.ours = "<br>".join(head_cells)
    c.scale = (f"v2 IsoFLOP, {designs[0][0]}: {r['level'].nunique()} compute levels {r['level'].min():.3g}–"
               f"{r['level'].max():.3g} FLOPs, {r.groupby('level')['size'].nunique().min()}+ sizes each "
               f"({(requested_tokens(r) / r['num_params']).min():.2g}–"
               f"{(requested_tokens(r) / r['num_params']).max():.3g} tokens/param), "
               f"{int(r.groupby(['arch', 'level', 'size'])['seed'].nunique().min())}+ seed(s) a point")  # fmt: skip
    c.figures = ["figures/study_c4_isoflop.png"]
    c.numbers = {"per_arch": head_numbers, "design": designs[0][0], **({"beside": numbers} if numbers else {}),
                 **({"head_dim_offset": offsets} if offsets else {}),
                 **({"exploratory": {k: e["numbers"] for k, e in explore.items()}} if explore else {})}  # fmt: skip
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
    if scan_notes:
        c.section += ["", "LR tuned per point (part v2-isoflop-scan): the fourth IsoFLOP design, preregistered in "
                      'docs/study.md ("C4 with the LR tuned per point") after the three below it had failed to '
                      "determine both exponents, before any of its runs; it reads every point as the best of its "
                      "LRs (x0.5, x1, x2 of the batch-per-budget rule's, and any edge extension), one seed. Where "
                      "a level's profile had no interior vertex, the family's next size beyond the end its optimum "
                      "lay past was added by a rule fixed before its runs (part v2-isoflop-scan-sizes; new rungs "
                      'd16L1 and d64L3; docs/study.md "Sizes that bracket the optimum"), and where a vertex had '
                      "fewer than two sizes on one side, the next size there (part v2-isoflop-scan-bracket, also "
                      'fixed before its runs; docs/study.md "Two sizes on each side of the vertex"); anGPT has one '
                      "more level, 4e12 FLOPs at the sizes of its 2e12 level (part v2-isoflop-scan-up, fixed before "
                      'its runs; docs/study.md "A compute level above 2e12"). '
                      + "; ".join(scan_notes) + "."]  # fmt: skip
    if notes:
        c.section += ["", "Batch per budget: " + "; ".join(notes) + "."]
    if offsets:
        c.section += ["", "The head-dim offset (part v2-headdim, preregistered in docs/study.md before its runs): "
                      "tiny0-tiny2 against their head-dim-8 twins (same N), paired by seed; δ = twin − rung. Where "
                      "δ's interval excludes 0, the rows marked exploratory lower the head-dim-8 rungs' IsoFLOP "
                      "points (d24L2, d40L3, d56L3) by δ; their interval is the union over δ and both ends of δ's "
                      "interval. The reading was chosen after the batch-per-budget design failed, so the headline "
                      "verdict stays the preregistered one.", "",
                      *table(["arch", "δ [95 % CI]", "per size (tiny0, tiny1, tiny2)", "pairs", "the head dim's?"],
                             [[label(a), with_ci(o["delta"], *o["ci"]),
                               ", ".join(f"{v:+.3f}" for v in o["per_size"].values()), o["pairs"],
                               "yes" if o["is_head_dim"] else "no (the interval holds 0)"]
                              for a, o in offsets.items()])]  # fmt: skip
    fb = tuned_r[tuned_r["fallback"]] if "fallback" in tuned_r else tuned_r.iloc[:0]
    if len(fb):
        where = [f"{label(x.arch)} {x.size} at {x.level:.3g} FLOPs (batch {x.batch_size}, LR {x.lr:g})"
                 for x in fb.itertuples()]  # fmt: skip
        c.section += ["", "Tuned-batch design points whose run at the size's tuned HPs diverged, trained at the "
                      "next-best cell of that size's HP grid instead (part v2-isoflop-fallback; the rule in "
                      "docs/study.md): " + "; ".join(where) + "."]  # fmt: skip
    return c
