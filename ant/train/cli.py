"""`ant train CONFIG.yaml [--set key=value ...] [--out-dir DIR]`: train, resume, or show a finished run.
`--print-config` prints the fully resolved config (every default filled in, as the run folder's config.yaml would
hold it) and its run id, and trains and writes nothing.

Exit codes: 0 completed or diverged (a diverged run is a result, so a sweep goes on), 1 failed (the error is in
summary.json) or a fault found before the run started (a corrupt token cache: one line names the rebuild
command, nothing written), 2 bad config (nothing written), 3 interrupted by a signal after saving a checkpoint
(rerun the same command to resume).

`--packed B.yaml C.yaml ...`: train CONFIG and these runs of the same shape (they may differ only in optim.lr and
train.seed) together in one process, each in its own run folder (ant.train.packed_run); one line per run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys

from ant import recipe
from ant.config import RunConfig
from ant.errors import ConfigError, FaultError
from ant.fsio import check_out_dir

EXIT_INTERRUPTED = 3


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", help="run config YAML (see configs/ and ant/config.py for the fields)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set train.seed=3 (repeatable)")  # fmt: skip
    p.add_argument("--out-dir", default=None, help="parent folder of run folders (default: the config's out_dir)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--packed", nargs="+", default=[], metavar="CONFIG",
                   help="more run configs of CONFIG's shape (other optim.lr / train.seed) to train with it in one "
                   "process, each in its own run folder")  # fmt: skip
    p.add_argument("--print-config", action="store_true",
                   help="print the fully resolved config as YAML and exit (nothing trained or written)")  # fmt: skip


def run(args: argparse.Namespace) -> int:
    from ant.train.run import train  # late: Lightning loads only to train (--print-config, --help stay fast)

    cfg = RunConfig.from_yaml(args.config).with_overrides(args.overrides)
    if args.out_dir is not None:
        cfg.out_dir = args.out_dir
    check_out_dir("--out-dir" if args.out_dir is not None else "out_dir", cfg.out_dir)
    if args.print_config:
        # resolve() needs only the tokenizer's vocabulary size (ant.data.tokenizer_vocab_size), not the corpus
        resolved = recipe.resolve(cfg)
        print(f"# run id: {resolved.run_id()}  (run folder: {resolved.run_dir()})")
        print(resolved.to_yaml(), end="")
        return 0
    if args.packed and not args.print_config:
        return _run_packed(cfg, args)
    try:
        # with --json, stdout carries the JSON alone: progress lines (printed when stdout is no terminal) go to stderr
        with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
            result = train(cfg, progress=not args.no_progress, handle_signals=True)
    except (ConfigError, FaultError):  # one line from ant.cli: exit 2 (bad input) or 1 (a corrupt cache)
        raise
    except Exception as e:  # the run recorded it in summary.json (status failed)
        print(f"ant train: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    s = result.summary
    if args.json:
        print(json.dumps(s, indent=2))
    else:
        val = s.get("final_val_loss")
        extra = f" at step {s['diverged_step']}" if s["status"] == "diverged" else ""
        print(f"{s['status']}{extra}: {result.run_dir}  steps={s['steps']}  tokens={s['tokens']:,}  "
              f"val_loss={'n/a' if val is None else f'{val:.4f}'}")  # fmt: skip
    if s.get("interrupted"):
        print("interrupted: checkpoint saved; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def _run_packed(cfg: RunConfig, args: argparse.Namespace) -> int:
    from ant.train.packed_run import train_packed  # late, as train above

    cfgs = [cfg] + [RunConfig.from_yaml(p).with_overrides(args.overrides) for p in args.packed]
    if args.out_dir is not None:
        for c in cfgs[1:]:
            c.out_dir = args.out_dir
    try:
        results = train_packed(cfgs, progress=not args.no_progress, handle_signals=True)
    except (ConfigError, FaultError):
        raise
    except Exception as e:  # each unfinished run recorded it in its summary.json (status failed)
        print(f"ant train: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    for r in results:
        s = r.summary
        val = s.get("final_val_loss")
        print(f"{s['status']}: {r.run_dir}  steps={s['steps']}  val_loss={'n/a' if val is None else f'{val:.4f}'}")
    if any(r.summary.get("interrupted") for r in results):
        print("interrupted: checkpoints saved; rerun the same command to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0
