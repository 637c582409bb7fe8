"""`ant bench`: step time, tokens/s, MFU and peak memory of a full training step, per architecture.

    ant bench --archs gptplus angpt ngpt --size 0.5B --seq-len 2048 --batch 8 --compile --dtype bf16 --out b.json

One way through four modules: config.py (BenchConfig: the flags) -> measure.py (timed steps -> frozen
BenchResults) -> report.py (the JSON document and the table) -> here (the command). lightning.py is measure.py's
optional Trainer-driven step (`--lightning`: what the framework costs over the bare loop). The flags below are
BenchConfig's fields, one each, with the field's default and help, the choices of its Literal type, and its value
read by ant.decode (as `ant train --set` values are); only --out is the command's own.
"""

from __future__ import annotations

import argparse
import signal
import types
import typing
from collections.abc import Callable
from dataclasses import Field, fields
from typing import Any, Literal

import torch

from ant.bench.config import BenchConfig
from ant.bench.measure import measure
from ant.bench.report import format_table, summarize
from ant.decode import decode
from ant.fsio import atomic_write_json
from ant.perf import StopAfterBlock


def bench(
    cfg: BenchConfig, progress: Callable[[str], None] = print, stop: StopAfterBlock | None = None
) -> dict[str, Any]:
    """Run the benchmark described by `cfg` and return the report dict (see ant/bench/report.py)."""
    return summarize(measure(cfg.resolve(), progress, stop))


def _flag(f: Field) -> str:
    return "--" + f.name.replace("_", "-")


def _choices(hint: Any) -> tuple | None:
    """The values of a Literal type (also inside `X | None` or `tuple[X, ...]`); None for an open type."""
    if typing.get_origin(hint) is Literal:
        return typing.get_args(hint)
    if typing.get_origin(hint) in (tuple, typing.Union, types.UnionType):
        return next((c for a in typing.get_args(hint) if (c := _choices(a))), None)
    return None


def add_arguments(p: argparse.ArgumentParser) -> None:
    hints = typing.get_type_hints(BenchConfig)
    for f in fields(BenchConfig):
        kw: dict[str, Any] = {"help": f.metadata.get("help"), "dest": f.name}
        hint = hints[f.name]
        if hint is bool:
            p.add_argument(_flag(f), action="store_true", **kw)
            continue
        if typing.get_origin(hint) is tuple:  # tuple[X, ...]: one or more values
            kw["nargs"] = "+"
        elif (choices := _choices(hint)) is not None:  # --archs names the bad one in resolve(), with the others
            kw["choices"] = choices
        p.add_argument(_flag(f), default=f.default, **kw)  # strings from the command line, decoded in config()
    p.add_argument("--out", default=None, help="write the report to this JSON file")


def config(args: argparse.Namespace) -> BenchConfig:
    """The BenchConfig of parsed arguments: each value decoded as its field's type by ant.decode, then resolved."""
    hints = typing.get_type_hints(BenchConfig)
    values: dict[str, Any] = {}
    for f in fields(BenchConfig):
        v, hint = getattr(args, f.name), hints[f.name]
        if typing.get_origin(hint) is tuple:
            (item, _) = typing.get_args(hint)
            values[f.name] = tuple(decode(f"{_flag(f)}[{i}]", x, item) for i, x in enumerate(v))
        else:
            values[f.name] = decode(_flag(f), v, hint)
    return BenchConfig(**values).resolve()


def run(args: argparse.Namespace) -> int:
    cfg = config(args)
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
