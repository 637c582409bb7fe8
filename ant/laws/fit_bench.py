"""Benchmark of the Chinchilla approach-3 fit: point estimate + bootstrap on the published Fig. 4 points.

    python -m ant.laws.fit_bench                    # 1000 resamples on 2 worker processes
    python -m ant.laws.fit_bench --boot 200 --workers 1 --full-grid

Prints the fitted parameters, the bootstrap CIs and the wall times (the goal: 1000 resamples < 60 s on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import time

from ant.laws.fits import fit_chinchilla
from ant.laws.reference import CHINCHILLA_EPOCH, CHINCHILLA_REPRODUCED, load_chinchilla_points


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ant.laws.fit_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default=None, help="points CSV (default: ant/laws/assets, or $ANT_SHARED_DATA)")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples")
    ap.add_argument("--workers", type=int, default=2, help="processes for the bootstrap")
    ap.add_argument("--full-grid", action="store_true", help="also time L-BFGS-B from all 4500 starts")
    args = ap.parse_args(argv)

    df = load_chinchilla_points(args.csv)
    print(f"{len(df)} points, {os.cpu_count()} CPUs visible")
    if args.full_grid:
        t = time.perf_counter()
        full = fit_chinchilla(df.N, df.D, df.loss, top_k=None)
        print(f"full grid (4500 starts): {time.perf_counter() - t:.1f} s, objective {full.objective:.8f}")
    t = time.perf_counter()
    fit = fit_chinchilla(df.N, df.D, df.loss)
    print(f"point estimate (top-100 starts): {time.perf_counter() - t:.2f} s, objective {fit.objective:.8f}")
    t = time.perf_counter()
    boot = fit_chinchilla(df.N, df.D, df.loss, bootstrap=args.boot, workers=args.workers, progress=True)
    dt = time.perf_counter() - t
    print(f"bootstrap {args.boot} resamples on {args.workers} workers: {dt:.1f} s")
    print(f"{'param':>6} {'fit':>10} {'reproduced':>10} {'Epoch':>10} {'95% CI':>24} {'SE':>9}")
    for k in fit.PARAMS:
        lo, hi = boot.ci[k]
        print(
            f"{k:>6} {fit.params[k]:10.4g} {CHINCHILLA_REPRODUCED[k]:10.4g} {CHINCHILLA_EPOCH[k]:10.4g} "
            f"{f'[{lo:.4g}, {hi:.4g}]':>24} {boot.se[k]:9.3g}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
