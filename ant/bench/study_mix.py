"""The study-mix benchmark (issue 23): runs per CPU-hour of the CPU study's mix, per variant of the training code.

    python -m ant.bench.study_mix [--out results/bench/study-mix.json] [--runs-per-shape 2]    # make bench-study

A fixed set of study-shaped runs (bytes, seq 128, batch 4, the study's 10 tokens per parameter and 32,768
validation tokens, both cut by the same factor per size so that the set takes well under a minute per variant on a quiet
machine while evaluation keeps its share of a study run's time) is trained through the real `ant.train.train`,
once per variant, interleaved in one process: for each size, each variant's runs in turn (the order rotates per
size), so drift of a shared machine hits every variant alike. Each variant trains `--runs-per-shape` runs (seeds)
of a shape, as a study worker trains several runs of one shape: a compiled variant pays its warm-up once per
shape and process, as in the study (the on-disk Inductor cache is whatever the machine has, and said so).

Per variant: wall seconds per size (all its runs), the ratio to the first variant per size, and the mix: study
time shares (TIME_SHARES, where the study's CPU-hours go: tiny0 3 %, tiny1 26 %, tiny2 45 %, tiny3 26 %) weight
the per-size ratios, speed-up = 1 / sum_s share_s x (t_variant,s / t_base,s), and runs/hour = the set's run count
per hour at the base variant's measured pace x that speed-up. VARIANTS is a list of named settings; the packed
variant trains a shape's runs (seeds) as one packed model (ant.train.packed_run.train_packed), as a sweep with
`executor.pack` does: each run's wall time is then the pack's divided by its run count.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from ant import recipe
from ant.config import RunConfig
from ant.fsio import atomic_write_json

TIME_SHARES = {"tiny0": 0.03, "tiny1": 0.26, "tiny2": 0.45, "tiny3": 0.26}
# The study runs 10 tokens/param with 32,768 validation tokens; per size both are cut by this factor (the
# validation set with the budget, so evaluation keeps its share of a run's time).
CUT = {"tiny0": 4, "tiny1": 8, "tiny2": 16, "tiny3": 32}
STUDY_VAL_TOKENS = 32768
# (name, train.* settings, checkpoints a run or None for the default, packed). "current": what the code before
# issue 23 did (every window at the training batch, about 20 evaluations, 10 checkpoints a run, eager), in
# today's fields. Packed runs are eager (packing refuses compile).
VARIANTS: list[tuple[str, dict[str, Any], int | None, bool]] = [
    (
        "current",
        {"eval_spacing": "every", "eval_tokens": STUDY_VAL_TOKENS, "eval_batch_size": 4, "cpu_compile": "false"},
        10,
        False,
    ),  # fmt: skip
    ("cheap-eval", {"cpu_compile": "false"}, None, False),
    ("cheap-eval+compile", {"cpu_compile": "true"}, None, False),
    ("cheap-eval+packed", {"cpu_compile": "false"}, None, True),
]


def run_config(size: str, seed: int, out_dir: Path, settings: dict[str, Any], ckpts: int | None) -> RunConfig:
    cut = CUT[size]
    train = {"tokens_per_param": 10 / cut, "batch_size": 4, "seed": seed, "device": "cpu", "num_threads": 1,
             **settings}  # fmt: skip
    if settings.get("eval_tokens"):
        train["eval_tokens"] = settings["eval_tokens"] // cut
    d = {
        "model": {"arch": "angpt", "size": size},
        "optim": {"lr": 1e-2},
        "train": train,
        "out_dir": str(out_dir),
        "data": {"corpus": "default", "tokenizer": "bytes", "seq_len": 128, "val_tokens": STUDY_VAL_TOKENS // cut},
    }
    cfg = RunConfig.from_dict(d)
    if ckpts:
        cfg.train.ckpt_interval = max(1, recipe.resolve(cfg).steps // ckpts)
    return cfg


def bench(runs_per_shape: int = 2, log=print) -> dict[str, Any]:
    # late: --help and the table helpers load no Lightning; `module` loads it here, not in the first timed run
    from ant.train import module, prepare, train  # noqa: F401
    from ant.train.packed_run import train_packed  # late: as above

    torch.set_num_threads(1)
    names = [v[0] for v in VARIANTS]
    wall: dict[str, dict[str, list[float]]] = {n: {s: [] for s in TIME_SHARES} for n in names}
    losses: dict[str, dict[str, list[float]]] = {n: {s: [] for s in TIME_SHARES} for n in names}
    root = Path(tempfile.mkdtemp(prefix="ant-study-mix-"))
    for size in TIME_SHARES:  # the token files of every cut validation set, built before anything is timed
        prepare(run_config(size, 0, root, {}, None), progress=False)
    try:
        for i, size in enumerate(TIME_SHARES):
            order = VARIANTS[i % len(VARIANTS) :] + VARIANTS[: i % len(VARIANTS)]  # rotate per size
            for name, settings, ckpts, packed in order:
                cfgs = [run_config(size, seed, root / name, settings, ckpts) for seed in range(runs_per_shape)]
                if packed:
                    t0 = time.perf_counter()
                    results = train_packed(cfgs, progress=False)
                    times = [(time.perf_counter() - t0) / len(cfgs)] * len(cfgs)
                else:
                    results, times = [], []
                    for cfg in cfgs:
                        t0 = time.perf_counter()
                        results.append(train(cfg, progress=False))
                        times.append(time.perf_counter() - t0)
                for seed, (r, dt) in enumerate(zip(results, times)):
                    wall[name][size].append(dt)
                    losses[name][size].append(r.summary["final_val_loss"])
                    log(f"{size} {name:20s} seed {seed}: {dt:6.1f} s  final val {r.summary['final_val_loss']:.4f}")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return summarize(wall, losses, runs_per_shape)


def summarize(wall, losses, runs_per_shape: int) -> dict[str, Any]:
    base = next(iter(wall))
    n_runs = runs_per_shape * len(TIME_SHARES)
    base_pace = n_runs * 3600 / sum(sum(v) for v in wall[base].values())
    variants = []
    for name, per_size in wall.items():
        ratio = {s: sum(wall[base][s]) / sum(per_size[s]) for s in TIME_SHARES}  # > 1: faster than base
        speedup = 1 / sum(share / ratio[s] for s, share in TIME_SHARES.items())
        variants.append({"name": name, "wall_s": {s: round(sum(v), 2) for s, v in per_size.items()},
                         "run_wall_s": {s: [round(x, 2) for x in v] for s, v in per_size.items()},
                         "ratio_by_size": {s: round(r, 3) for s, r in ratio.items()},
                         "speedup_mix": round(speedup, 3), "runs_per_hour_mix": round(base_pace * speedup, 1),
                         "final_val_loss": losses[name]})  # fmt: skip
    return {
        "what": "study-mix benchmark (ant.bench.study_mix): runs/hour of the CPU study's mix per variant",
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "torch": torch.__version__,
            "threads_per_run": 1,
            "python": sys.version.split()[0],
        },  # fmt: skip
        "time_shares": TIME_SHARES,
        "cut": CUT,
        "runs_per_shape": runs_per_shape,
        "variants": variants,
    }


def format_table(res: dict[str, Any]) -> str:
    sizes = list(TIME_SHARES)
    lines = [f"{'variant':20s} " + " ".join(f"{s + ' s':>9s}" for s in sizes) + f" {'x mix':>7s} {'runs/h':>8s}"]
    for v in res["variants"]:
        cells = " ".join(f"{v['wall_s'][s]:9.1f}" for s in sizes)
        lines.append(f"{v['name']:20s} {cells} {v['speedup_mix']:7.2f} {v['runs_per_hour_mix']:8.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ant.bench.study_mix", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="JSON file (default results/bench/study-mix-<date>.json)")
    p.add_argument("--runs-per-shape", type=int, default=2, help="runs (seeds) of each size per variant")
    args = p.parse_args(argv)
    if args.runs_per_shape < 1:
        print("error: --runs-per-shape: must be >= 1", file=sys.stderr)
        return 2
    res = bench(args.runs_per_shape)
    out = Path(args.out or f"results/bench/study-mix-{_dt.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, res, indent=1)
    print(format_table(res))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
