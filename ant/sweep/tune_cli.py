"""`ant tune FILE`: optuna TPE search of LR (and optionally batch size) per (arch, size) of a grid file.

    ant tune sweeps/small.yaml --trials 12 --workers 2
    ant tune sweeps/small.yaml --executor slurm          # workers as a SLURM job array, sharing one journal

Settings come from the grid file's `tune:` section (ant.sweep.tune.TuneSettings); the flags override them. The
best values land in results/studies/<name>/best.yaml; use them in a grid with `lr: {from_study: that file}`.
"""

from __future__ import annotations

import argparse

from ant.errors import int_in
from ant.fsio import check_out_dir
from ant.sweep.executors import EXECUTORS, ExecutorSettings
from ant.sweep.grid import Grid
from ant.sweep.tune import TuneSettings, tune_grid


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="grid YAML; its archs x sizes are tuned at its first token budget")
    p.add_argument("--trials", type=int_in(0, 10**6), help="trials per (arch, size) (overrides tune.trials)")
    p.add_argument("--workers", type=int_in(-(2**20), 4096),
                   help="parallel workers sharing each study (overrides tune.workers)")  # fmt: skip
    p.add_argument("--executor", choices=EXECUTORS, help="where workers run (default: local processes)")
    p.add_argument("--study-dir", help="where journals and best.yaml go (default results/studies)")


def run(args: argparse.Namespace) -> int:
    grid = Grid.from_yaml(args.file)
    t = dict(grid.tune)
    for key in ("trials", "workers", "study_dir"):
        if getattr(args, key) is not None:
            t[key] = getattr(args, key)
    settings = TuneSettings.from_dict(t)
    check_out_dir("--study-dir" if args.study_dir else "tune.study_dir", settings.study_dir)
    ex = dict(grid.executor)
    ex["name"] = args.executor or "local"
    best = tune_grid(grid, settings, executor=ExecutorSettings.from_dict(ex))
    for arch, sizes in best.items():
        for size, e in sizes.items():
            extra = f", batch {e['batch_size']}" if "batch_size" in e else ""
            print(f"  {arch:8s} {size:6s} lr {e['lr']:.3g}{extra}: val loss {e['val_loss']:.4f} "
                  f"({e['complete']} of {e['trials']} trials complete)")  # fmt: skip
    return 0
