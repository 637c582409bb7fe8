"""`ant bench`: step time, tokens/s, MFU and peak memory of a full training step, per architecture.

    ant bench --archs gptplus angpt ngpt --size 0.5B --seq-len 2048 --batch 8 --compile --dtype bf16 --out b.json

One way through four modules: config.py (BenchConfig: the flags) -> measure.py (timed steps -> frozen
BenchResults) -> report.py (the JSON document and the table) -> here (the command). lightning.py is measure.py's
optional Trainer-driven step (`--lightning`: what the framework costs over the bare loop). The flags below are
BenchConfig's fields, one each, with the field's default, type, help and choices; only --out is the command's own.
"""

from __future__ import annotations

import argparse
import signal
import types
import typing
from collections.abc import Callable
from dataclasses import MISSING, fields
from typing import Any

import torch

from ant.bench.config import BenchConfig
from ant.bench.measure import measure
from ant.bench.report import format_table, summarize
from ant.fsio import atomic_write_json
from ant.perf import StopAfterBlock


def bench(
    cfg: BenchConfig, progress: Callable[[str], None] = print, stop: StopAfterBlock | None = None
) -> dict[str, Any]:
    """Run the benchmark described by `cfg` and return the report dict (see ant/bench/report.py)."""
    return summarize(measure(cfg.resolve(), progress, stop))


def add_arguments(p: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(BenchConfig)
    for f in fields(BenchConfig):
        flag = "--" + f.name.replace("_", "-")
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
        kw: dict[str, Any] = {"help": f.metadata.get("help"), "dest": f.name}
        hint = hints[f.name]
        if hint is bool:
            p.add_argument(flag, action="store_true", **kw)
            continue
        if typing.get_origin(hint) is tuple:  # tuple[str, ...]: one or more values
            kw.update(nargs="+", type=typing.get_args(hint)[0], default=list(default))
        else:
            args = [a for a in typing.get_args(hint) if a is not type(None)]  # int | None -> int
            kw.update(type=args[0] if isinstance(hint, types.UnionType) else hint, default=default)
        if "choices" in f.metadata:
            kw["choices"] = f.metadata["choices"]
        p.add_argument(flag, **kw)
    p.add_argument("--out", default=None, help="write the report to this JSON file")


def run(args: argparse.Namespace) -> int:
    cfg = BenchConfig(**{f.name: getattr(args, f.name) for f in fields(BenchConfig)}).resolve()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    # Under a time limit, SIGTERM after the first measured block still yields a (partial) report.
    stop = StopAfterBlock()
    signal.signal(signal.SIGTERM, stop)
    report = bench(cfg, stop=stop)
    print(format_table(report))
    if args.out:
        atomic_write_json(args.out, report, indent=2)
        print(f"wrote {args.out}")
    return 0
