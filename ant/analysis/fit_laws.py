"""All fits -> results/fits/*.json: every figure/table script's numbers plus Chinchilla approach 3 per
architecture (final losses of completed runs) and, when the reference data is present, on Hoffmann et al.'s
Fig. 4 points (the check that the fitter reproduces Epoch AI's refit).

    ant fit --results results [--boot 200] [--workers 2]
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ant.analysis import (
    alpha_over_training,
    fig1_residual_norms,
    fig2_hp_trends,
    fig3_speedup,
    fig4_compute_scaling,
    figG1_lr_sensitivity,
    table2_overhead,
)
from ant.analysis.common import Context, best_hp_runs, one_line_errors, parser
from ant.errors import int_in
from ant.laws.fits import FitError, fit_chinchilla
from ant.laws.reference import CHINCHILLA_EPOCH, CHINCHILLA_REPRODUCED, load_chinchilla_points

MODULES = (
    fig1_residual_norms,
    fig2_hp_trends,
    figG1_lr_sensitivity,
    fig3_speedup,
    fig4_compute_scaling,
    table2_overhead,
    alpha_over_training,
)


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


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    ap = parser("run every fit and write results/fits/*.json")
    ap.add_argument("--boot", type=int_in(0, 100_000), default=200, help="bootstrap resamples for the Chinchilla fits")
    ap.add_argument("--workers", type=int_in(1, 1024), default=2, help="processes for the bootstrap")
    ap.add_argument("--no-reference", action="store_true", help="skip the fit on Hoffmann et al.'s points")
    args = ap.parse_args(argv)
    ctx = Context(Path(args.results), select=args.select)
    ctx.require_runs()  # and the runs are comparable (Context): nothing below writes before this
    runs = ctx.runs
    print(f"{len(runs)} runs in {ctx.results} ({len(ctx.done)} completed)")
    for m in MODULES:
        numbers = m.compute(ctx)
        numbers["missing"] = [x for x in ctx.missing]
        print(f"wrote {ctx.save_json(m.NAME, numbers)}")
        ctx.missing.clear()
    numbers = chinchilla(ctx, args.boot, args.workers, not args.no_reference)
    numbers["missing"] = list(ctx.missing)
    print(f"wrote {ctx.save_json('chinchilla', numbers)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
