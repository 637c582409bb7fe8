"""The study-mix benchmark (issue 23): runs per CPU-hour of the CPU study's mix, per variant of the training code.

    python -m ant.bench.study_mix [--mix v1|v2] [--out results/bench/study-mix.json] [--runs-per-shape 2]
                                  [--variants current cheap-eval ...]                          # make bench-study

A fixed set of study-shaped runs (bytes, seq 128, batch 4, the study's 10 tokens per parameter and 32,768
validation tokens, both cut by the same factor per size so that the set takes well under a minute per variant on a quiet
machine while evaluation keeps its share of a study run's time) is trained through the real `ant.train.train`,
once per variant, interleaved in one process: for each size, each variant's runs in turn (the order rotates per
size), so drift of a shared machine hits every variant alike. Each variant trains `--runs-per-shape` runs (seeds)
of a shape, as a study worker trains several runs of one shape. A compiled variant first builds its graphs for
the shape in an untimed 3-step pack (or run): that warm-up is measured and charged once per shape to its runs,
both at the bench's cut length and at the study's length (`summarize`). The Inductor cache is a fresh directory
per invocation (unless TORCHINDUCTOR_CACHE_DIR is set), so every warm-up is a cold compile.

Per variant: wall seconds per size (all its runs), the ratio to the first variant per size, and the mix: study
time shares (Mix.time_shares, where the study's CPU-hours go: v1 tiny0 3 %, tiny1 26 %, tiny2 45 %, tiny3 26 %) weight
the per-size ratios, speed-up = 1 / sum_s share_s x (t_variant,s / t_base,s), and runs/hour = the set's run count
per hour at the base variant's measured pace x that speed-up. VARIANTS is a list of named settings; the packed
variant trains a shape's runs (seeds) as one packed model (ant.train.packed_run.train_packed), as a sweep with
`executor.pack` does: each run's wall time is then the pack's divided by its run count.

Two mixes (MIXES). v1: the committed study above (seq 128, batch 4, 10 tokens/param). v2: study v2's shapes
(sweeps/study2: seq 32, 20 tokens/param, each size at its grid's middle batch) weighted by where v2's CPU-hours
go. Study v2's IsoFLOP part cannot pack (each run its own shape): its share is counted at the variant without
packing (`unpackable`), so the mix figure is what the whole v2 study gains, not only its HP grids.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ant import recipe
from ant.config import RunConfig
from ant.fsio import atomic_write_json
from ant.train.compiled import use_compile, use_compile_packed

STUDY_VAL_TOKENS = 32768


@dataclass(frozen=True)
class Mix:
    """A study's shapes and where its CPU time goes. Per size, the budget and the validation set are both cut by
    `cut` (the validation set with the budget, so evaluation keeps its share of a run's time)."""

    seq_len: int
    tokens_per_param: float
    batch: dict[str, int]
    time_shares: dict[str, float]  # share of the study's CPU-hours per size (sums to 1 with `unpackable`)
    cut: dict[str, int]
    unpackable: dict[str, float] = field(default_factory=dict)  # share of runs that cannot share a worker


MIXES = {
    # the committed study: tiny0 3 %, tiny1 26 %, tiny2 45 %, tiny3 26 % of its CPU-hours
    "v1": Mix(128, 10, {s: 4 for s in ("tiny0", "tiny1", "tiny2", "tiny3")},
              {"tiny0": 0.03, "tiny1": 0.26, "tiny2": 0.45, "tiny3": 0.26},
              {"tiny0": 4, "tiny1": 8, "tiny2": 16, "tiny3": 32}),
    # study v2 (`make study-plan` estimates of 2026-12-07 summed per size over its six parts, 11.3 CPU-hours):
    # d56L3 31 %, tiny2 23 %, d40L3 20 %, tiny3 13 %, tiny1 10 %, d24L2 1.5 %, tiny0 0.3 %; the IsoFLOP part's 10 %
    # cannot pack. tiny0 and d24L2 (1.8 %) are left out of the timed set and the shares renormalised over the rest.
    "v2": Mix(32, 20, {"tiny1": 8, "d40L3": 16, "tiny2": 16, "d56L3": 32, "tiny3": 32},
              {"tiny1": 0.079, "d40L3": 0.179, "tiny2": 0.21, "d56L3": 0.297, "tiny3": 0.137},
              {"tiny1": 8, "d40L3": 16, "tiny2": 16, "d56L3": 32, "tiny3": 64},
              {"tiny1": 0.026, "d40L3": 0.026, "tiny2": 0.025, "d56L3": 0.021}),
}  # fmt: skip
# (name, train.* settings, checkpoints a run or None for the default, packed). "current": what the code before
# issue 23 did (every window at the training batch, about 20 evaluations, 10 checkpoints a run, eager), in
# today's fields. cpu_compile "auto" is decided per size by the project's rule (ant.train.compiled) on the runs at
# the study's length, not on the cut runs timed here, which are too short for it (`compiles`). A compiled
# variant's graphs are built before its timed runs (WARM_UP_STEPS); that warm-up is charged separately.
VARIANTS: list[tuple[str, dict[str, Any], int | None, bool]] = [
    (
        "current",
        {"eval_spacing": "every", "eval_tokens": STUDY_VAL_TOKENS, "eval_batch_size": 4, "cpu_compile": "false"},
        10,
        False,
    ),  # fmt: skip
    ("cheap-eval", {"cpu_compile": "false"}, None, False),
    ("cheap-eval+compile", {"cpu_compile": "auto"}, None, False),
    ("cheap-eval+packed", {"cpu_compile": "false"}, None, True),
    ("cheap-eval+packed+compile", {"cpu_compile": "auto"}, None, True),
]
WARM_UP_STEPS = 3  # a compiled variant's untimed first pack/run per shape: its graphs (any step count builds them)


def only(m: Mix, sizes: list[str]) -> Mix:
    """The mix restricted to `sizes`, their time shares renormalised (the unpackable share left out)."""
    total = sum(m.time_shares[s] for s in sizes)
    return Mix(m.seq_len, m.tokens_per_param, {s: m.batch[s] for s in sizes},
               {s: m.time_shares[s] / total for s in sizes}, {s: m.cut[s] for s in sizes})  # fmt: skip


def run_config(size: str, seed: int, out_dir: Path, settings: dict[str, Any], ckpts: int | None,
               mix: Mix = MIXES["v1"], scale: int = 1, steps: int | None = None) -> RunConfig:  # fmt: skip
    """One run of the set; `steps`: that many steps instead of the cut budget (a compiled variant's warm-up);
    scale 0: the run at the study's length (no cut)."""
    cut = mix.cut[size] * scale if scale else 1
    budget = ({"tokens": steps * mix.batch[size] * mix.seq_len} if steps
              else {"tokens_per_param": mix.tokens_per_param / cut})  # fmt: skip
    train = {**budget, "batch_size": mix.batch[size], "seed": seed, "device": "cpu", "num_threads": 1, **settings}
    if settings.get("eval_tokens"):
        train["eval_tokens"] = settings["eval_tokens"] // cut
    d = {
        "model": {"arch": "angpt", "size": size},
        "optim": {"lr": 1e-2},
        "train": train,
        "out_dir": str(out_dir),
        "data": {
            "corpus": "default",
            "tokenizer": "bytes",
            "seq_len": mix.seq_len,
            "val_tokens": STUDY_VAL_TOKENS // cut,
        },
    }
    cfg = RunConfig.from_dict(d)
    if ckpts:
        cfg.train.ckpt_interval = max(1, recipe.resolve(cfg).steps // ckpts)
    return cfg


def compiles(size: str, settings: dict[str, Any], packed: bool, runs: int, mix: Mix) -> bool:
    """Whether the variant's runs of `size` train compiled: cpu_compile as set, "auto" by the project's rule for
    the study-length runs (a pack of `runs`, or one run alone)."""
    if settings.get("cpu_compile", "auto") != "auto":
        return settings["cpu_compile"] == "true"
    full = [recipe.resolve(run_config(size, seed, Path("."), settings, None, mix, 0)) for seed in range(runs)]
    return use_compile_packed(full) if packed else use_compile(full[0])


def bench(
    runs_per_shape: int = 2, log=print, mix: str = "v1", variants: list[str] | None = None, scale: int = 1
) -> dict[str, Any]:
    # late: --help and the table helpers load no Lightning; `module` loads it here, not in the first timed run
    from ant.train import module, prepare, train  # noqa: F401
    from ant.train.packed_run import train_packed  # late: as above

    m = MIXES[mix]
    chosen = [v for v in VARIANTS if variants is None or v[0] in variants]  # "current" first: the base
    torch.set_num_threads(1)
    names = [v[0] for v in chosen]
    wall: dict[str, dict[str, list[float]]] = {n: {s: [] for s in m.time_shares} for n in names}
    warmup: dict[str, dict[str, float]] = {n: {s: 0.0 for s in m.time_shares} for n in names}
    compiled_sizes: dict[str, dict[str, bool]] = {n: {} for n in names}
    losses: dict[str, dict[str, list[float]]] = {n: {s: [] for s in m.time_shares} for n in names}
    root = Path(tempfile.mkdtemp(prefix="ant-study-mix-"))
    for size in m.time_shares:  # the token files of every cut validation set, built before anything is timed
        prepare(run_config(size, 0, root, {}, None, m, scale), progress=False)
    try:
        for i, size in enumerate(m.time_shares):
            order = chosen[i % len(chosen) :] + chosen[: i % len(chosen)]  # rotate per size
            for name, settings, ckpts, packed in order:
                use = compiles(size, settings, packed, runs_per_shape, m)
                settings = {**settings, "cpu_compile": "true" if use else "false"}
                compiled_sizes[name][size] = use
                if use:  # its graphs for this shape, untimed in the runs
                    warm = [run_config(size, 100 + k, root / f"{name}-warm-up", settings, ckpts, m, scale,
                                       WARM_UP_STEPS) for k in range(runs_per_shape if packed else 1)]  # fmt: skip
                    t0 = time.perf_counter()
                    if packed:
                        train_packed(warm, progress=False)
                    else:
                        train(warm[0], progress=False)
                    warmup[name][size] = time.perf_counter() - t0
                    log(f"{size} {name:20s} warm-up: {warmup[name][size]:6.1f} s")
                cfgs = [
                    run_config(size, seed, root / name, settings, ckpts, m, scale) for seed in range(runs_per_shape)
                ]
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
    res = summarize(wall, losses, runs_per_shape, m, warmup, scale)
    for v in res["variants"]:
        v["compiled"] = compiled_sizes[v["name"]]
    return res | {"mix": mix, "cut_scale": scale}


def unpacked(name: str, names=None) -> str:
    """The variant a packed variant's unpackable runs train as: the same settings, every run alone
    ("cheap-eval+packed+compile" -> "cheap-eval+compile"); if that variant is not in `names`, the nearest one
    with fewer pieces that is ("cheap-eval"), so a set without it counts those runs conservatively."""
    candidate = name.replace("+packed", "")
    while names is not None and candidate not in names and "+" in candidate:
        candidate = candidate.rsplit("+", 1)[0]
    return candidate


def summarize(wall, losses, runs_per_shape: int, mix: Mix = MIXES["v1"], warmup=None, scale: int = 1) -> dict[str, Any]:
    """Per variant: wall seconds per size, ratios to the first variant, and the mix speed-up at two lengths.

    A compiled variant's warm-up (its graphs, once per shape and process; `warmup`) is charged once per shape to
    its runs of that shape, as a study worker training `runs_per_shape` runs of one shape pays it:
      bench length  the runs as timed (budgets cut by mix.cut x scale) + the warm-up: what this set measured;
      study length  each run's time x the cut + the warm-up: the same runs at the study's budgets. Evaluation
                    and training scale with the cut (the validation set is cut with the budget); the warm-up
                    does not. This is the figure for the study's runs per CPU-hour.
    Eager variants have no warm-up, so their two ratios differ only through the cut factors' weighting."""
    base = next(iter(wall))
    shares = mix.time_shares
    warmup = warmup or {n: {s: 0.0 for s in shares} for n in wall}
    n_runs = runs_per_shape * len(shares)
    cut = {s: mix.cut[s] * scale if scale else 1 for s in shares}  # scale 0: runs at full length
    bench_t = {n: {s: sum(w[s]) + warmup[n][s] for s in shares} for n, w in wall.items()}
    study_t = {n: {s: sum(w[s]) * cut[s] + warmup[n][s] for s in shares} for n, w in wall.items()}
    base_pace = n_runs * 3600 / sum(bench_t[base].values())

    def mix_speedup(t: dict, name: str) -> tuple[dict, float]:
        ratio_of = {n: {s: t[base][s] / t[n][s] for s in shares} for n in t}  # > 1: faster
        ratio, alone = ratio_of[name], ratio_of.get(unpacked(name, ratio_of), ratio_of[name])  # unpackable share
        return ratio, 1 / (sum(share / ratio[s] for s, share in shares.items())
                           + sum(share / alone[s] for s, share in mix.unpackable.items()))  # fmt: skip

    variants = []
    for name, per_size in wall.items():
        ratio, speedup = mix_speedup(bench_t, name)
        study_ratio, study_speedup = mix_speedup(study_t, name)
        variants.append({"name": name, "wall_s": {s: round(sum(v), 2) for s, v in per_size.items()},
                         "run_wall_s": {s: [round(x, 2) for x in v] for s, v in per_size.items()},
                         "warmup_s": {s: round(w, 2) for s, w in warmup[name].items()},
                         "ratio_by_size": {s: round(r, 3) for s, r in ratio.items()},
                         "speedup_mix": round(speedup, 3), "runs_per_hour_mix": round(base_pace * speedup, 1),
                         "ratio_by_size_study_length": {s: round(r, 3) for s, r in study_ratio.items()},
                         "speedup_mix_study_length": round(study_speedup, 3),
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
        "time_shares": shares,
        "unpackable_shares": mix.unpackable,
        "batch": mix.batch,
        "seq_len": mix.seq_len,
        "cut": mix.cut,
        "runs_per_shape": runs_per_shape,
        "variants": variants,
    }


def format_table(res: dict[str, Any]) -> str:
    sizes = list(res["time_shares"])
    head = " ".join(f"{s + ' s':>9s}" for s in sizes)
    lines = [f"{'variant':26s} {head} {'warm-up s':>9s} {'x mix':>7s} {'runs/h':>8s} {'x study len':>11s}"]
    for v in res["variants"]:
        cells = " ".join(f"{v['wall_s'][s]:9.1f}" for s in sizes)
        warm = sum(v.get("warmup_s", {}).values())
        lines.append(f"{v['name']:26s} {cells} {warm:9.1f} {v['speedup_mix']:7.2f} {v['runs_per_hour_mix']:8.1f} "
                     f"{v.get('speedup_mix_study_length', float('nan')):11.2f}")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ant.bench.study_mix", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=None, help="JSON file (default results/bench/study-mix-<date>.json)")
    p.add_argument("--runs-per-shape", type=int, default=2, help="runs (seeds) of each size per variant")
    p.add_argument("--mix", choices=list(MIXES), default="v1", help="which study's shapes and time shares")
    p.add_argument(
        "--variants",
        nargs="+",
        choices=[v[0] for v in VARIANTS],
        default=None,
        help="a subset of the variants (the first named is the base of the ratios; default: all)",
    )
    p.add_argument("--scale", type=int, default=1, help="cut every budget (and validation set) this much more")
    p.add_argument("--sizes", nargs="+", default=None, help="time these sizes of the mix only (shares renormalised)")
    p.add_argument(
        "--full-length",
        action="store_true",
        help="train at the study's budgets, no cut: checks the study-length figure (slow: minutes a run)",
    )
    args = p.parse_args(argv)
    if args.scale < 1:
        print("error: --scale: must be >= 1", file=sys.stderr)
        return 2
    if args.runs_per_shape < 1:
        print("error: --runs-per-shape: must be >= 1", file=sys.stderr)
        return 2
    if args.variants and args.variants[0] != "current":
        print("error: --variants: the first must be 'current' (the base of every ratio)", file=sys.stderr)
        return 2
    mix = args.mix
    if args.sizes:
        if bad := [s for s in args.sizes if s not in MIXES[args.mix].time_shares]:
            allowed = list(MIXES[args.mix].time_shares)
            print(f"error: --sizes: {bad} not in the {args.mix} mix (allowed: {allowed})", file=sys.stderr)
            return 2
        mix = f"{args.mix}-{'-'.join(args.sizes)}"
        MIXES[mix] = only(MIXES[args.mix], args.sizes)
    cache = None
    if "TORCHINDUCTOR_CACHE_DIR" not in os.environ:  # cold warm-ups: what a shape's first worker pays
        cache = tempfile.mkdtemp(prefix="ant-study-mix-inductor-")
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache
    try:
        res = bench(args.runs_per_shape, mix=mix, variants=args.variants, scale=0 if args.full_length else args.scale)
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    tag = ("" if mix == "v1" else f"-{mix}") + ("-full-length" if args.full_length else "")
    out = Path(args.out or f"results/bench/study-mix{tag}-{_dt.date.today().isoformat()}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, res, indent=1)
    print(format_table(res))
    print(f"-> {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
