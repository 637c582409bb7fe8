"""Rewrite the `lr` column of committed curves tables as the scheduled LR (issue 24 item 7).

Curves collected before ant.laws.collect_curves.scheduled_lr held each run's PEAK LR in every row. The study's run
folders are not kept, but the schedule is a pure function of the run's config, which the runs table holds (cfg.*
columns): each row's lr becomes scheduled_lr(step, that run's row), exactly what a fresh collect now writes.

    python scripts/reschedule_curves.py results/study/main results/study/wsd ...   # each: runs + its curve files

A group's curves are a base file and append-only shards (ant.analysis.study_tables); each file is rewritten in
place, so the table they read back as keeps its order and its shards.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ant.analysis.study_tables import BASE, shard_paths
from ant.laws.collect import atomic_parquet
from ant.laws.collect_curves import scheduled_lr


def reschedule(curves: pd.DataFrame, runs: pd.DataFrame) -> pd.DataFrame:
    rows = {r["run_id"]: r for r in runs.to_dict(orient="records")}
    missing = sorted(set(curves["run_id"]) - set(rows))
    if missing:
        raise SystemExit(f"reschedule: {len(missing)} curve run(s) not in the runs table, e.g. {missing[0]}")
    lr = np.full(len(curves), np.nan)
    for run_id, idx in curves.groupby("run_id", sort=False).indices.items():
        lr[idx] = scheduled_lr(curves["step"].to_numpy()[idx], rows[run_id])
    if np.isnan(lr).any():
        raise SystemExit(f"reschedule: {int(np.isnan(lr).sum())} rows without a schedule (cfg.* columns missing)")
    return curves.assign(lr=lr)


def main(argv: list[str]) -> int:
    for folder in map(Path, argv):
        runs = pd.read_parquet(folder / "runs.parquet")
        files = [f for f in [folder / BASE] if f.is_file()] + shard_paths(folder)
        for path in files:
            curves = pd.read_parquet(path)
            new = reschedule(curves, runs)
            changed = int((~np.isclose(new["lr"], curves["lr"], rtol=1e-12, atol=0)).sum())
            atomic_parquet(new, path)
            print(f"{path}: {changed} of {len(new)} rows' lr changed (peak -> scheduled)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
