"""Final validation loss per (arch, size, budget): mean ± std over seeds, run counts and failures.

    python -m ant.analysis.summary_table --results results [--sweep sweeps/small.yaml]

With --sweep, only the runs of that grid are shown (its expansion gives the run ids; the runs live in the grid's
out_dir when that is not under --results).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from ant.analysis.common import parser
from ant.laws.collect import collect
from ant.sweep.grid import load_grid


def sweep_run_ids(path: str) -> tuple[set[str] | None, str | None]:
    """Run ids of the grid and its out_dir; (None, out_dir) when the grid cannot be expanded here."""
    grid = load_grid(path)  # a bad file is a ConfigError: let it surface
    try:
        return {cfg.run_id() for cfg in grid.expand()}, grid.out_dir
    except Exception as e:  # expansion may need the tokenizer; the table is still useful without the filter
        print(f"note: could not expand {path} ({e}); showing every run in {grid.out_dir}")
        return None, grid.out_dir


def table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (arch, size, budget): the (lr, batch) with the lowest mean loss, its mean ± std over seeds,
    how many (lr, batch) configurations were tried and how many runs did not complete."""
    if runs.empty:
        return pd.DataFrame()
    r = runs.copy()
    r["ok"] = r["status"].eq("completed") & r["final_val_loss"].notna()
    keys = ["arch", "size", "num_params", "tokens"]
    rows = []
    for k, g in r.groupby(keys, dropna=False):
        ok = g[g["ok"]]
        row = dict(zip(keys, k), configs=g.groupby(["lr", "batch_size"]).ngroups, failed=int((~g["ok"]).sum()))
        row.update(mean=float("nan"), std=float("nan"), seeds=0, lr=float("nan"), batch_size=0)
        if len(ok):
            m = ok.groupby(["lr", "batch_size"])["final_val_loss"].mean()
            lr, bs = m.idxmin()
            best = ok[(ok["lr"] == lr) & (ok["batch_size"] == bs)]["final_val_loss"]
            row.update(mean=best.mean(), std=best.std(ddof=1) if len(best) > 1 else float("nan"),
                       seeds=len(best), lr=lr, batch_size=int(bs))  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows).sort_values(["num_params", "tokens", "arch"])


def main(argv: list[str] | None = None) -> int:
    ap = parser("final val loss per (arch, size, budget)")
    ap.add_argument("--sweep", default=None, help="grid YAML: show only its runs")
    args = ap.parse_args(argv)
    where = Path(args.results)
    ids = None
    if args.sweep:
        ids, out_dir = sweep_run_ids(args.sweep)
        if not (where / "runs").is_dir() and out_dir:
            where = Path(out_dir)
    runs, _ = collect(where, write=False)
    if ids is not None and not runs.empty:
        runs = runs[runs["run_id"].isin(ids)]
    t = table(runs)
    if t.empty:
        print(f"no runs found in {where}" + (f" for {args.sweep}" if args.sweep else ""))
        return 0
    print(f"{'arch':<8} {'size':<6} {'params':>9} {'tokens':>9} {'final val loss':>18} {'seeds':>5} "
          f"{'best lr':>8} {'batch':>5} {'configs':>7} {'failed':>6}")  # fmt: skip
    for r in t.itertuples():
        loss = "-" if pd.isna(r.mean) else f"{r.mean:.4f}" + ("" if pd.isna(r.std) else f" ± {r.std:.4f}")
        print(f"{r.arch:<8} {r.size:<6} {r.num_params:>9.3g} {r.tokens:>9.3g} {loss:>18} {r.seeds:>5} "
              f"{r.lr:>8.2g} {r.batch_size:>5} {r.configs:>7} {r.failed:>6}")  # fmt: skip
    print("loss: mean ± std over seeds at the best (lr, batch) of each budget; configs: (lr, batch) pairs tried")
    for line in speedup_lines(Path(args.results)):
        print(line)
    return 0


def speedup_lines(results: Path) -> list[str]:
    """The convergence speedup over GPT+ per size and candidate, from fits/fig3_speedup.json (make fit-laws)."""
    path = results / "fits" / "fig3_speedup.json"
    if not path.is_file():
        return [f"speedup: no {path} (run `make fit-laws`)"]
    per = json.loads(path.read_text()).get("per_size", {})
    if not per:
        return ["speedup over GPT+: not measured (needs GPT+ at >= 2 budgets of one size and another architecture)"]
    out = ["speedup over GPT+ (tokens GPT+ needs for the candidate's final loss / the candidate's tokens):"]
    for size, d in per.items():
        for arch, r in d["candidates"].items():
            s, (lo, hi) = r["summary"], r["ci"]
            if s is None:
                out.append(f"  {arch} at {size}: not determined ({r.get('ci_reason') or 'see REPORT.md'})")
                continue
            bound = {"lower": ">= ", "upper": "<= "}.get(r.get("bound") or "", "")
            ci = f"[{lo:.2f}, {'inf' if hi is None else f'{hi:.2f}'}]" if lo is not None else "(no interval)"
            out.append(f"  {arch} at {size}: {bound}{s:.2f}x {ci} 95% CI, {r['estimator']}, "
                       f"{len(r['per_budget'])} budgets, seeds {r.get('seeds', [])}")  # fmt: skip
    return out


if __name__ == "__main__":
    sys.exit(main())
