"""Sweep-level checks made in `ant sweep` before anything is launched (ant.sweep.cli).

Each run's worker makes the same data-dependent checks again (ant.train.run.check_run), but there they come too
late: by then the pool has started and locks and attempt logs are written, and a bad batch size ends as a
"failed" run (exit 1) instead of bad input (exit 2, nothing written).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import Any

from ant.errors import ConfigError

# Longer than a week for one run is almost always a typo in a budget (train.tokens=1e13 on a CPU); a flag raises
# it, since a real cluster study may mean it: a warning, not a refusal.
MAX_RUN_HOURS = 168.0


def data_key(cfg) -> str:
    """Runs with equal keys share one corpus + tokenizer + token set."""
    return json.dumps(asdict(cfg.data), sort_keys=True)


def check_against_data(cfgs: list, data: dict[str, Any]) -> None:
    """For every run, what needs the token data (`data`: data_key -> TokenData): the vocabulary, a batch that
    fits the training split, a window that fits at all. The device is left to the worker: a SLURM login node
    may have no GPU for a cuda run."""
    # late: the sampler imports torch, which `ant sweep --dry-run` (this module's other reader) never needs
    from ant.data import TrainSampler, val_batches

    for cfg in cfgs:
        tokens = data[data_key(cfg)]
        if cfg.model.vocab_size < tokens.vocab_size:
            msg = f"{cfg.model.vocab_size} is smaller than the tokenizer's {tokens.vocab_size}"
            raise ConfigError("model.vocab_size", msg, f">= {tokens.vocab_size}, or null")
        TrainSampler(tokens.train, cfg.data.seq_len, cfg.train.batch_size, cfg.train.seed)
        val_batches(tokens.val, cfg.data.seq_len, cfg.train.batch_size)


def warn_long_runs(rows: list, max_hours: float) -> None:
    """One warning line on stderr when runs still to do are estimated to take longer than `max_hours` each."""
    if not max_hours > 0:
        raise ConfigError("--max-run-hours", f"must be a positive number, got {max_hours!r}")
    long = [r for r in rows if r.est_s > max_hours * 3600 and r.state not in ("done", "diverged")]
    if long:
        worst = max(long, key=lambda r: r.est_s)
        print(f"warning: {len(long)} run(s) are estimated to take longer than {max_hours:g} h each (longest "
              f"{worst.run_id}: {worst.est_s / 3600:.3g} h); check train.tokens, or raise --max-run-hours",
              file=sys.stderr)  # fmt: skip
