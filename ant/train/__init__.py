"""Training: one run from a RunConfig to a run folder (ant.train.run), with Lightning underneath.

    from ant.train import train, load_run
    result = train(RunConfig.from_yaml("run.yaml"))   # RunResult(run_dir, summary)
    cfg, model = load_run(result.run_dir)              # the finished run's config and final weights

Lightning is imported only when a run starts, and torch only when one of these names is first used (PEP 562): the
sweep planner imports ant.train.branches, ant.train.evaluation and ant.train.pack_rules (pure config arithmetic),
and importing a submodule runs this file first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ant.train.run import RunLockedError, RunResult, check_run, prepare, request_checkpoint, train
    from ant.train.sample import load_run

_HOME = {"RunLockedError": "run", "RunResult": "run", "check_run": "run", "prepare": "run",
         "request_checkpoint": "run", "train": "run", "load_run": "sample"}  # fmt: skip
__all__ = ["RunLockedError", "RunResult", "check_run", "load_run", "prepare", "request_checkpoint", "train"]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'ant.train' has no attribute {name!r}")
    return getattr(importlib.import_module(f"ant.train.{_HOME[name]}"), name)
