"""optuna search of the peak LR (log-uniform) and optionally the batch size, per (arch, size) of a grid file.

    ant tune sweeps/small.yaml --trials 12 --workers 2

One journal file per grid (results/studies/<name>/journal.log, `JournalStorage(JournalFileBackend)`: safe for
parallel processes and SLURM array tasks on a shared file system, unlike SQLite) holds one study per
(arch, size), named `<grid>-<arch>-<size>`. Workers use ask/tell: each asks for a trial, trains it as an ordinary
run (its own run folder under results/studies/<name>/runs, so a trial interrupted mid-way resumes from its
checkpoints) and tells the final validation loss.

Pruning (MedianPruner) needs the intermediate validation losses while a trial trains: a Lightning callback in
the training process (ant.sweep.pruning.ReportToTrial) reports each val loss to the trial as the Evaluator
measures it and, when optuna says prune, calls ant.train.request_checkpoint(), which makes train() stop at the
next step.
Each finished, pruned or failed trial is one printed line: number, params, value, best so far.

Resuming: a study counts its finished trials (complete, pruned, failed) and runs only the rest. A trial left
RUNNING by a killed worker whose run is not locked by anyone is told FAIL and its parameters re-enqueued with
`retry_of` = its number, so the retry continues the same run folder and the failed orphan is not counted.
Only optuna's public API is used (study.tell with a trial number, enqueue_trial, get_trials). The best values
go to results/studies/<name>/best.yaml, which a grid file can use: `lr: {from_study: results/studies/<name>/best.yaml}`.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ant import recipe, runfolder
from ant.config import RunConfig
from ant.decode import build, check_int
from ant.errors import ConfigError
from ant.fsio import atomic_write_text
from ant.sweep.executors import run_one
from ant.sweep.locks import is_locked, lock_dir
from ant.sweep.slurm import finished, slurm_executor

MAX_LR = 10.0  # far above any stable Adam LR; an upper bound so that .inf or 1e400 is an error, not a trial


@dataclass
class TuneSettings:
    """The grid file's `tune:` section."""

    trials: int = 12  # per (arch, size)
    workers: int = 1  # parallel local worker processes
    lr_min: float = 1e-4
    lr_max: float = 3e-2
    batch_sizes: list[int] = field(default_factory=list)  # empty: keep the grid's batch size
    prune: bool = True
    startup_trials: int = 3  # MedianPruner: no pruning before this many trials finished
    warmup_evals: int = 2  # ... nor before this many validations in a trial
    seed: int = 0
    study_dir: str = "results/studies"

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> TuneSettings:
        """The section through the config's decoder (unknown keys and types name the field), then the ranges."""
        d = dict(d or {})
        d.pop("estimate", None)
        s = build(cls, d, prefix="tune.")
        check_int("tune.trials", s.trials, minimum=1)
        check_int("tune.workers", s.workers, minimum=1)
        for k in ("lr_min", "lr_max"):  # optuna samples log-uniformly between them: finite, positive, sane
            v = getattr(s, k)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not (0 < v <= MAX_LR):
                raise ConfigError(f"tune.{k}", f"must be a number in (0, {MAX_LR:g}], got {v!r}")
        if not s.lr_min < s.lr_max:
            raise ConfigError("tune.lr_min", f"need lr_min < lr_max, got {s.lr_min!r}, {s.lr_max!r}")
        return s


def study_root(settings: TuneSettings, grid_name: str) -> Path:
    return Path(settings.study_dir) / grid_name


def storage(root: Path):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    root.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(root / "journal.log")))


def create_study(root: Path, name: str, settings: TuneSettings):
    """Create (or load) a study. Done once by the parent before workers start, to avoid a create race."""
    import optuna

    sampler = optuna.samplers.TPESampler(seed=settings.seed, n_startup_trials=min(5, settings.trials))
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=settings.startup_trials, n_warmup_steps=settings.warmup_evals)
        if settings.prune
        else optuna.pruners.NopPruner()
    )
    return optuna.create_study(
        study_name=name, storage=storage(root), direction="minimize", sampler=sampler, pruner=pruner,
        load_if_exists=True,
    )  # fmt: skip


def recover_orphans(study, runs_dir: Path) -> int:
    """Mark RUNNING trials whose run nobody trains as FAIL and enqueue their parameters again."""
    import optuna

    n = 0
    for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,)):
        run_id = t.user_attrs.get("run_id")
        if run_id and is_locked(lock_dir(runs_dir), run_id):
            continue
        # tell() takes a trial number from any process; skip_if_finished: another worker may have just done it
        study.tell(t.number, state=optuna.trial.TrialState.FAIL, skip_if_finished=True)
        study.enqueue_trial(t.params, user_attrs={"retry_of": t.number}, skip_if_exists=False)
        n += 1
    return n


def remaining(study, total: int) -> int:
    """Trials still to start: the target minus finished and running ones; an orphan (a FAIL trial that a later
    trial retries, see recover_orphans) does not count, its retry does."""
    import optuna

    S = optuna.trial.TrialState
    trials = study.get_trials()
    retried = {t.user_attrs.get("retry_of") for t in trials} - {None}
    n = sum(t.state in (S.COMPLETE, S.PRUNED, S.RUNNING) or (t.state == S.FAIL and t.number not in retried)
            for t in trials)  # fmt: skip
    return max(0, total - n)


# ---------------------------------------------------------------------- the worker
def worker(root: str, study_name: str, base: dict[str, Any], settings: dict[str, Any], n_trials: int,
           threads: int = 0, index: int = 0) -> int:  # fmt: skip
    """Run up to n_trials trials of one study (a process of its own; also a SLURM array task)."""
    import optuna

    # late: pruning imports Lightning, which only this worker process (not the grid planner) needs
    from ant.sweep.pruning import ReportToTrial

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    s = TuneSettings.from_dict(settings)
    # Workers with one seed would ask for the very same LRs, and so would a resumed study: mix in the worker
    # index and how many trials the study already holds.
    n_before = len(create_study(Path(root), study_name, s).trials)
    s.seed = s.seed + 1000 * index + 1_000_003 * n_before
    study = create_study(Path(root), study_name, s)
    done = 0
    for _ in range(n_trials):
        trial = study.ask()
        lr = trial.suggest_float("lr", float(s.lr_min), float(s.lr_max), log=True)
        d = RunConfig.from_dict(base).to_dict()
        d["optim"]["lr"] = float(f"{lr:.4g}")
        if s.batch_sizes:
            d["train"]["batch_size"] = trial.suggest_categorical("batch_size", list(s.batch_sizes))
        cfg = recipe.resolve(RunConfig.from_dict(d), vocab_size=base["model"]["vocab_size"])
        trial.set_user_attr("run_id", cfg.run_id())
        reporter = ReportToTrial(trial)
        result = run_one(cfg.to_dict(), threads=threads, callbacks=[reporter])
        summary = _read_summary(cfg.run_dir())  # also for a run another worker had already finished
        status = summary.get("status", result["status"]) if result["status"] == "skipped" else result["status"]
        loss = summary.get("final_val_loss")
        if reporter.pruned:
            outcome = f"pruned at step {summary.get('steps', '?')}"
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        elif status == "completed" and loss is not None and math.isfinite(loss):
            outcome = f"val loss {loss:.4f}"
            study.tell(trial, loss)
        elif status == "diverged":  # too high an LR: pruned, so TPE ranks it behind finished ones
            outcome = f"diverged at step {summary.get('diverged_step', '?')} (pruned)"
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            outcome = f"failed ({result.get('error') or status})"
            trial.set_user_attr("error", str(result.get("error") or status))
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        print(trial_line(study, trial.number, trial.params, outcome), flush=True)
        done += 1
    return done


def trial_line(study, number: int, params: dict[str, Any], outcome: str) -> str:
    """`gptplus-tiny1 trial 3: lr 0.00412, batch 8 -> val loss 2.3456 | best 2.3012 (trial 1)`"""
    shown = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items())
    try:
        best = f"best {study.best_value:.4f} (trial {study.best_trial.number})"
    except ValueError:  # no completed trial yet
        best = "best: none complete yet"
    return f"{study.study_name} trial {number}: {shown} -> {outcome} | {best}"


def _read_summary(run_dir: Path) -> dict[str, Any]:
    import json

    try:
        return json.loads((run_dir / runfolder.SUMMARY).read_text())
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------------- driver
def tune_grid(grid, settings: TuneSettings, workers: int | None = None, executor=None, log=print) -> dict[str, Any]:
    """Tune every (arch, size) of the grid's first product; returns and writes the best values."""
    cfgs = grid.expand()
    root = study_root(settings, grid.name)
    runs_dir = root / "runs"
    seen: dict[tuple[str, str], RunConfig] = {}
    for c in cfgs:  # the first run of each (arch, size) is the template: its budget, batch, seed
        seen.setdefault((c.model.arch, c.model.size), c)
    workers = workers or settings.workers
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cpus // workers)
    for (arch, size), cfg in seen.items():
        name = f"{grid.name}-{arch}-{size}"
        study = create_study(root, name, settings)
        orphans = recover_orphans(study, runs_dir)
        todo = remaining(study, settings.trials)
        log(f"study {name}: {todo} trial(s) to run" + (f", {orphans} orphaned trial(s) re-enqueued" if orphans else ""))
        if todo == 0:
            continue
        base = cfg.to_dict()
        base["out_dir"] = str(runs_dir.resolve())
        shares = [todo // workers + (1 if i < todo % workers else 0) for i in range(workers)]
        shares = [n for n in shares if n]
        if executor is not None and executor.name == "slurm":  # workers as one SLURM job array
            ex = slurm_executor(executor, (root / "slurm").resolve(), f"tune-{name}")
            n = len(shares)
            jobs = ex.map_array(worker, [str(root.resolve())] * n, [name] * n, [base] * n,
                                [settings.__dict__] * n, shares, [executor.cpus_per_task] * n,
                                list(range(n)))  # fmt: skip
            log(f"  submitted {n} SLURM worker(s): array {jobs[0].job_id.split('_')[0]}; waiting")
            for j in jobs:
                while not finished(j):  # not submitit's wait alone: a requeue in flight is not a failure
                    time.sleep(2)
                j.result()
            continue
        ctx = mp.get_context("spawn")
        procs = [ctx.Process(target=worker, args=(str(root), name, base, settings.__dict__, n, threads, i))
                 for i, n in enumerate(shares)]  # fmt: skip
        for p in procs:
            p.start()
        for p in procs:
            p.join()
    best = write_best(root, grid.name, list(seen))
    log(f"best values: {root / 'best.yaml'}")
    return best


def write_best(root: Path, grid_name: str, keys: list[tuple[str, str]]) -> dict[str, Any]:
    import optuna

    best: dict[str, Any] = {}
    for arch, size in keys:
        study = optuna.load_study(study_name=f"{grid_name}-{arch}-{size}", storage=storage(root))
        complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
        if not complete:
            continue
        t = min(complete, key=lambda t: t.value)
        entry = {"val_loss": float(t.value), "trials": len(study.trials), "complete": len(complete)}
        # the LR the trial's run used (the worker rounds to 4 significant digits, see worker())
        entry.update({k: (float(f"{v:.4g}") if k == "lr" else v) for k, v in t.params.items()})
        best.setdefault(arch, {})[size] = entry
    atomic_write_text(root / "best.yaml", yaml.safe_dump(best, sort_keys=True))
    return best


def best_value(path: Path, arch: str, size: str, key: str, where: str) -> float:
    """A tuned value for the grid planner: `lr: {from_study: results/studies/<name>/best.yaml}`."""
    path = Path(path)
    if path.is_dir():
        path = path / "best.yaml"
    if not path.is_file():
        raise ConfigError(where, f"no study results at {path} (run `ant tune` first)")
    d = yaml.safe_load(path.read_text()) or {}
    try:
        return d[arch][size][key]
    except (KeyError, TypeError):
        have = [f"{a}/{s}" for a, v in d.items() for s in (v or {})]
        raise ConfigError(where, f"{path} has no {key} for {arch}/{size}", have) from None
