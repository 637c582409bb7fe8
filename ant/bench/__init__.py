"""`ant bench`: step time, tokens/s, MFU and peak memory of a full training step, per architecture.

A one-way pipeline: config.py (BenchConfig) -> measure.py (frozen BenchResults) -> report.py (JSON + table) ->
cli.py (the command, `add_arguments`/`run` for ant/cli.py); lightning.py is the optional Trainer-driven step.
"""

from ant.bench.cli import add_arguments, bench, run
from ant.bench.config import BenchConfig
from ant.bench.measure import ArchResult, Bench, BenchResults, make_loss_fn, make_optimizer, measure, split_steps
from ant.bench.report import format_table, summarize

__all__ = [
    "ArchResult",
    "Bench",
    "BenchConfig",
    "BenchResults",
    "add_arguments",
    "bench",
    "format_table",
    "make_loss_fn",
    "make_optimizer",
    "measure",
    "run",
    "split_steps",
    "summarize",
]
