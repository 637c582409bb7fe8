"""Chinchilla approach 3 (L = E + A/N^alpha + B/D^beta) per architecture on the best-HP runs' final losses and,
when the reference data is present, on Hoffmann et al.'s Fig. 4 points (the check that the fitter reproduces
Epoch AI's refit): fits/chinchilla.json and its REPORT.md subsection. No figure of its own: fit_residuals draws
these fits' residuals.
"""

from __future__ import annotations

import time

from ant.analysis.common import Context, Section, best_hp_runs, fmt_ci, md_sizes
from ant.laws.fits import FitError, fit_chinchilla
from ant.laws.plotting import label
from ant.laws.reference import CHINCHILLA_EPOCH, CHINCHILLA_REPRODUCED, load_chinchilla_points

NAME = "chinchilla"


def chinchilla(ctx: Context, boot: int, workers: int, reference: bool) -> dict:
    """Approach 3 per architecture (best-HP runs' final losses) and on the reference points. Every per-arch entry
    has `determined` and `reasons`; an under-determined design (FitError) is recorded with its reason and no
    parameters, a fitted but unidentified one with its numbers and determined=False (ant/laws/chinchilla.py)."""
    out: dict = {"per_arch": {}}
    done = best_hp_runs(ctx.done)
    for arch, g in done.groupby("arch") if not done.empty else []:
        design = {"n": int(len(g)), "sizes": sorted(float(n) for n in g["num_params"].unique()),
                  "budgets": sorted(float(t) for t in g["tokens"].unique())}  # fmt: skip
        try:
            f = fit_chinchilla(g["num_params"], g["tokens"], g["final_val_loss"], bootstrap=boot, workers=workers)
        except FitError as e:
            ctx.no_data(f"Chinchilla fit for {arch}", f"a design that determines 5 parameters: not determined ({e})")
            out["per_arch"][arch] = {"determined": False, "reasons": [str(e)], **design}
            continue
        out["per_arch"][arch] = {**f.to_dict(), **design}
        if not f.determined:
            print(f"Chinchilla fit for {arch}: not determined ({'; '.join(f.reasons)})")
    if done.empty:
        ctx.no_data("Chinchilla fits", "completed runs over >= 3 sizes, >= 3 budgets and >= 8 (size, budget) points")
    if reference:
        try:
            df = load_chinchilla_points()
        except ValueError as e:
            print(f"reference Chinchilla fit skipped: {e}")
        else:
            t = time.perf_counter()
            f = fit_chinchilla(df.N, df.D, df.loss, bootstrap=boot, workers=workers)
            out["reference"] = {**f.to_dict(), "seconds": time.perf_counter() - t, "reproduced": CHINCHILLA_REPRODUCED,
                                "epoch": CHINCHILLA_EPOCH}  # fmt: skip
    return out


def compute(ctx: Context) -> dict:
    o = ctx.options
    return chinchilla(ctx, o.boot, o.workers, o.reference)


def chinchilla_section(ch: dict) -> list[str]:
    """Numbers only for determined fits (ant/laws/chinchilla.py); any other fit reads "not determined (reason)"."""
    out = ["### Chinchilla approach 3 (L = E + A/N^α + B/D^β, Huber 1e-3, bootstrap 95% CIs)", "",
           "A fit is shown only when determined: >= 3 sizes, >= 3 budgets and >= 8 (size, budget) points, no parameter "
           "at a search bound, bootstrap CIs within a decade for E, A, B and at most 0.5 wide for α, β. "
           "a = β/(α+β) and b = α/(α+β) are the exponents of N_opt ∝ C^a and D_opt ∝ C^b.", ""]  # fmt: skip

    def fitted(d: dict) -> str:
        ci = d.get("ci", {})
        vals = ", ".join(f"{k}={fmt_ci(d[k], ci.get(k))}" for k in ("E", "A", "B", "alpha", "beta"))
        alloc = d.get("allocation", {})
        ab = "; ".join(f"{k}={fmt_ci(v[0], v[1:])}" for k, v in alloc.items())
        caveat = "" if d.get("ci_checked") else " (no bootstrap: only the search bounds were checked)"
        return f"{vals}; {ab}{caveat}"

    def verdict(d: dict) -> str:
        if d.get("determined"):
            return fitted(d)
        why = "; ".join(d.get("reasons") or ["fit predates the identifiability check: rerun `ant fit`"])
        return f"not determined ({why})"

    ref = ch.get("reference")
    if ref:
        out.append(f"Reference check on Hoffmann et al.'s Fig. 4 points ({ref['n']} after dropping 5 outliers, "
                   f"{ref.get('n_boot', 0)} resamples, {ref['seconds']:.1f} s): {verdict(ref)}. "
                   "Epoch AI: E=1.82, A=482, B=2085, alpha=0.348, beta=0.366.")  # fmt: skip
        out.append("")
    if not ch.get("per_arch"):
        out.append("Not fitted on this suite's runs: " + ("; ".join(ch.get("missing", [])) or "no runs."))
    for arch, d in ch.get("per_arch", {}).items():
        out.append(f"- {label(arch)}: {verdict(d)} ({d['n']} runs, sizes {md_sizes(d['sizes'])}, "
                   f"budgets {md_sizes(d['budgets'])})")  # fmt: skip
    return [*out, ""]


SECTION = Section(NAME, "Chinchilla approach 3 per architecture (+ the reference points)", compute,
                  report=chinchilla_section)  # fmt: skip
