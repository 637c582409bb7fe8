"""Lightning callbacks, one concern each. Every `on_train_batch_end` is one optimizer step (manual optimization);
the step's numbers arrive in `outputs` (ant.train.module.LMModule.training_step).

  TrainMonitor   train loss (mean over each log interval), lr, grad norm, tokens/s and MFU; the divergence guard
                 (stops the trainer); with train.noise_scale the gradient noise scale gns_* (ant.train.noise_scale)
  Evaluator      val loss on the validation subset / full set (ant.train.evaluation), then metrics.parquet
                 rewritten; residual norms and α
  RunCheckpoint  checkpoint + checksum every ckpt_interval steps and when a stop is requested; never-pruned ones
                 at a wsd trunk's branch points (ant.train.branches)
  Progress       a tqdm bar on a terminal, else one plain line per log interval (sweep workers, SLURM .out files)

They write rows into one `MetricsTable` (one row per step, NaN where nothing was measured), which travels inside
every checkpoint (TrainMonitor's state), so a resumed run continues the very same table. Lightning runs them in
the order given by ant.train.run, Checkpoint callbacks last: monitor, evaluator, progress, checkpoint.
"""

from __future__ import annotations

import math
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, Checkpoint
from tqdm.auto import tqdm

from ant import perf, runfolder
from ant.config import RunConfig
from ant.optimizers import current_lr
from ant.train import distributed, io
from ant.train.branches import KEEP_DIR, link_or_copy
from ant.train.evaluation import ValSets, is_intermediate
from ant.train.noise_scale import NoiseScaleEMA

FIXED_COLUMNS = ["step", "tokens", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s"]
EMA_BETA = 0.9  # the divergence guard's smoothing: ~10 steps, bias-corrected so it starts at the first loss


class MetricsTable:
    """The run's metrics, one row per step; every value added also goes to the Lightning loggers given."""

    def __init__(self, tokens_per_step: int, loggers: list | None = None):
        self.tokens_per_step = tokens_per_step
        self.rows: dict[int, dict[str, float]] = {}
        self.loggers = loggers or []

    def add(self, step: int, **values: float) -> None:
        values = {k: float(v) for k, v in values.items()}
        self.rows.setdefault(int(step), {}).update(values)
        for logger in self.loggers:
            logger.log_metrics(values, step=int(step))

    def log_all(self) -> None:
        """Send every row to the loggers again: after a resume, whose logger files restart (Lightning's CSVLogger
        deletes its file, TensorBoard drops the steps a new event file repeats) from the checkpoint's rows."""
        for step, row in sorted(self.rows.items()):
            for logger in self.loggers:
                logger.log_metrics(row, step=step)

    def last(self, column: str) -> float | None:
        for step in sorted(self.rows, reverse=True):
            if column in self.rows[step]:
                return self.rows[step][column]
        return None

    def frame(self) -> pd.DataFrame:
        records = [{"step": s, "tokens": s * self.tokens_per_step, **r} for s, r in sorted(self.rows.items())]
        df = pd.DataFrame.from_records(records)
        extra = sorted((c for c in df.columns if c not in FIXED_COLUMNS), key=_natural)
        df = df.reindex(columns=FIXED_COLUMNS + extra)
        return df.astype({"step": "int64", "tokens": "int64"})

    def write(self, path: Path) -> None:
        df = self.frame()
        io.atomic_write_with(path, lambda tmp: df.to_parquet(tmp, index=False))
        for logger in self.loggers:  # the loggers' files follow metrics.parquet
            logger.save()


def _natural(name: str) -> tuple:
    head, _, tail = name.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (name, -1)


class TrainMonitor(Callback):
    """Buffers the per-step numbers on the device and syncs once per log interval (no per-step GPU sync).
    Throughput counts the time inside optimizer steps only, so evaluations and checkpoints do not lower it."""

    state_key = "TrainMonitor"

    def __init__(self, cfg: RunConfig, table: MetricsTable, peak_flops: float | None = None):
        self.cfg, self.table, self.peak = cfg, table, peak_flops
        self.pending: list[Any] = []  # losses of the steps since the last row (tensors, or floats after resume)
        self.gns = NoiseScaleEMA() if cfg.train.noise_scale else None
        self.gns_pending: list[Any] = []  # per step [mean |g_micro|², |G_batch|²], folded in at each row
        self.ema, self.ema_n, self.best = 0.0, 0, math.inf
        self.diverged_step: int | None = None
        self.wall_time_s = 0.0  # summed over every session of the run (restored from the checkpoint)
        self.interval_s = 0.0  # time inside the steps since the last row
        # this process's throughput, without its first interval (compile and cache warm-up) unless that is all
        self.first_interval: tuple[int, float] | None = None
        self.session_tokens, self.session_train_s = 0, 0.0
        self.flops_per_token: float | None = None

    def on_train_start(self, trainer, pl_module) -> None:
        self._t_session, self._wall_at_start = time.perf_counter(), self.wall_time_s
        self._step_last = trainer.global_step
        self.flops_per_token = float(pl_module.model.flops_per_token(self.cfg.data.seq_len))
        if trainer.global_step:  # resumed: the table came back from the checkpoint
            self.table.log_all()

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self._t_step = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        self.pending.append(outputs["loss"])
        if "gns" in outputs:
            self.gns_pending.append(outputs["gns"])
        log = step % self.cfg.train.log_interval == 0 or step >= self.cfg.steps
        losses = _floats(self.pending) if log else None  # the one device sync per interval, timed with the step
        self.interval_s += time.perf_counter() - self._t_step
        if log:
            # the LR the last step used, as the optimizer holds it, not recomputed from the schedule (the compiled
            # CPU update holds a float32 tensor: within 1e-7 of the schedule's float64 value, as it trains)
            self.flush(trainer, step, losses, outputs.get("grad_norm"), current_lr(trainer.optimizers[0]))

    def flush(self, trainer, step: int, losses: list[float], grad_norm, lr: float) -> None:
        self.pending = []
        for i, v in enumerate(losses):
            self._guard(step - len(losses) + 1 + i, v)
        n_steps, train_s = step - self._step_last, max(self.interval_s, 1e-9)
        tokens = n_steps * self.table.tokens_per_step
        if self.first_interval is None:
            self.first_interval = (tokens, train_s)
        else:
            self.session_tokens, self.session_train_s = self.session_tokens + tokens, self.session_train_s + train_s
        self.wall_time_s = self.current_wall_time_s()
        row = {"train_loss": sum(losses) / len(losses), "lr": lr}
        if n_steps > 0:
            row["tokens_per_s"] = tokens / train_s
            if self.peak:
                row["mfu"] = perf.mfu(self.flops_per_token, row["tokens_per_s"], self.peak)
        if grad_norm is not None:
            row["grad_norm"] = float(grad_norm)
        if self.gns is not None and self.gns_pending:
            row.update(self._noise_scale_row())
        self.table.add(step, **row)
        self._step_last, self.interval_s = step, 0.0
        if self.diverged_step is not None:
            trainer.should_stop = True

    def _noise_scale_row(self) -> dict[str, float]:
        t = self.cfg.train
        for sq_small, sq_big in _float_pairs(self.gns_pending):
            # DDP has averaged each micro-batch's gradients over the ranks: the small batch is W micro-batches
            self.gns.update(t.micro_batch_size * distributed.world_size(t), sq_small, t.batch_size, sq_big)
        self.gns_pending = []
        b = self.gns.b_simple  # sequences
        return {"gns_g2": self.gns.g2_mean, "gns_trace": self.gns.trace_mean, "gns_b_simple": b,
                "gns_b_simple_tokens": b * self.cfg.data.seq_len}  # fmt: skip

    def _guard(self, step: int, loss: float) -> None:
        if self.diverged_step is not None:
            return
        if not math.isfinite(loss):
            self.diverged_step = step
            return
        self.ema = EMA_BETA * self.ema + (1 - EMA_BETA) * loss
        self.ema_n += 1
        smoothed = self.ema / (1 - EMA_BETA**self.ema_n)
        self.best = min(self.best, smoothed)
        if smoothed > self.cfg.train.divergence_factor * self.best:
            self.diverged_step = step

    def current_wall_time_s(self) -> float:
        if not hasattr(self, "_t_session"):
            return self.wall_time_s
        return self._wall_at_start + (time.perf_counter() - self._t_session)

    def tokens_per_s(self) -> float | None:
        if self.session_train_s > 0:
            return self.session_tokens / self.session_train_s
        return self.first_interval[0] / self.first_interval[1] if self.first_interval else None

    def state_dict(self) -> dict[str, Any]:
        return {"table": {str(k): dict(v) for k, v in self.table.rows.items()}, "pending": _floats(self.pending),
                "ema": self.ema, "ema_n": self.ema_n, "best": self.best, "diverged_step": self.diverged_step,
                "wall_time_s": self.current_wall_time_s(), "gns": self.gns.state_dict() if self.gns else None,
                "gns_pending": _float_pairs(self.gns_pending)}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.table.rows = {int(k): dict(v) for k, v in state["table"].items()}
        self.pending = list(state["pending"])
        self.ema, self.ema_n, self.best = state["ema"], state["ema_n"], state["best"]
        self.diverged_step, self.wall_time_s = state["diverged_step"], state["wall_time_s"]
        # A checkpoint from before noise_scale was switched on (it is not part of the run id) has no EMA yet.
        if self.gns is not None and state.get("gns"):
            self.gns.load_state_dict(state["gns"])
            self.gns_pending = list(state["gns_pending"])


def _floats(values: list[Any]) -> list[float]:
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return [float(v) for v in values]
    synced = iter(torch.stack([t.float() for t in tensors]).cpu().tolist())  # one device sync
    return [next(synced) if isinstance(v, torch.Tensor) else float(v) for v in values]


def _float_pairs(values: list[Any]) -> list[list[float]]:
    """Per-step noise-scale pairs as floats, with one device sync for all the tensors among them."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return [list(v) for v in values]
    synced = iter(torch.stack(tensors).double().cpu().tolist())
    return [next(synced) if isinstance(v, torch.Tensor) else list(v) for v in values]


class Evaluator(Callback):
    """Val loss at step 0 and the intermediate steps on the validation subset, at the last step and when the run
    stops by divergence on the full set (ant.train.evaluation); then metrics.parquet is rewritten, so curves can
    be watched while a run trains. Diagnostics every diag_interval. Each val row's `val_tokens` says how many
    validation tokens it scored; the final row also has `val_loss_subset`, the subset's loss there."""

    def __init__(self, cfg: RunConfig, table: MetricsTable, val: ValSets, metrics_path: Path):
        self.cfg, self.table, self.val, self.path = cfg, table, val, metrics_path

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.global_step == 0:
            self.measure(pl_module, 0, val=self.val.subset, diag=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        # should_stop here is the divergence guard's (TrainMonitor runs first; a stop request is seen later)
        step, t = trainer.global_step, self.cfg.train
        final = step >= self.cfg.steps or trainer.should_stop
        val = self.val.full if final else self.val.subset if is_intermediate(self.cfg, step) else None
        self.measure(pl_module, step, val=val, diag=step % t.diag_interval == 0)

    def measure(self, pl_module, step: int, *, val: list | None, diag: bool) -> None:
        if diag:
            self.table.add(step, **diagnostics(pl_module, self.val.diag_x))
        if val is not None:
            self.table.add(step, val_loss=pl_module.evaluate(val), val_tokens=ValSets.tokens(val))
            if val is self.val.full and self.val.subset is not self.val.full:
                # the subset's loss at the same step: the offset between a curve's subset points and its final
                # full point, for readers that need one set throughout (one subset pass more)
                self.table.add(step, val_loss_subset=pl_module.evaluate(self.val.subset))
            if pl_module.trainer.is_global_zero:  # every rank measures (same replicas); rank 0 writes
                self.table.write(self.path)


@torch.no_grad()
def diagnostics(pl_module, x: torch.Tensor) -> dict[str, float]:
    """Per-layer residual norms on a validation batch and the effective α of nGPT/anGPT."""
    model = pl_module.model
    was_training = model.training
    model.eval()
    with pl_module.trainer.precision_plugin.forward_context():
        norms = model.residual_norms(x.to(pl_module.device)).float().cpu().tolist()
    model.train(was_training)
    out = {f"resid_norm_{i}": v for i, v in enumerate(norms)}
    for key, v in model.alpha_stats().items():  # "alpha_a/3" -> column "alpha_a_3"
        out[key.replace("/", "_")] = float(v)
    return out


class DirectCheckpointIO(TorchCheckpointIO):
    """torch.save straight to the path it is given. Lightning's default saves through an fsspec "transaction" that
    stages the bytes in the system temp dir and then moves (across file systems: copies) them, so a full /tmp
    failed runs whose own disk had room (tests/train/test_faults.py). RunCheckpoint already writes to a temp name
    beside the target and renames it (io.atomic_write_with), which is all the atomicity a checkpoint needs."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        try:
            torch.save(checkpoint, path)
        except RuntimeError as e:  # torch's zip writer reports a full disk as "unexpected pos 128 vs 0"
            free = shutil.disk_usage(Path(path).parent).free
            raise OSError(f"writing checkpoint {Path(path).name} failed with {free:,} bytes free there: {e}") from e


class RunCheckpoint(Checkpoint):
    """Every ckpt_interval steps and when a stop is requested (`stop_requested()` or Lightning's SIGTERM notice):
    checkpoint -> checksum -> prune to the last two -> `on_saved(step)`. At each of `keep` steps (a wsd trunk's
    branch points) also a never-pruned one in checkpoints/keep/. Each checkpoint names its run (checked on resume).
    No checkpoint once the run has stopped otherwise (divergence) or at the last step (the run is complete)."""

    state_key = "RunCheckpoint"

    def __init__(self, run_dir: Path, cfg: RunConfig, on_saved: Callable[[int], Any],
                 stop_requested: Callable[[], bool], keep: list[int] | None = None):  # fmt: skip
        self.dir = Path(run_dir) / runfolder.CHECKPOINTS
        self.keep_dir = self.dir / KEEP_DIR
        self.cfg, self.on_saved, self.stop_requested, self.keep = cfg, on_saved, stop_requested, set(keep or [])

    def state_dict(self) -> dict[str, Any]:
        return {"run_id": self.cfg.run_id(), "config": self.cfg.to_dict()}

    def on_train_start(self, trainer, pl_module) -> None:
        # A trunk resumed from its regular checkpoint at a branch point (killed before the kept copy was made):
        # that checkpoint holds the very same state, so it becomes the kept one.
        step = trainer.global_step
        kept, regular = io.ckpt_path(self.keep_dir, step), io.ckpt_path(self.dir, step)
        if trainer.is_global_zero and step in self.keep and not io.is_valid(kept) and io.is_valid(regular):
            self.keep_dir.mkdir(parents=True, exist_ok=True)
            link_or_copy(regular, kept)
            io.write_checksum(kept)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if trainer.should_stop or step >= self.cfg.steps:
            return
        if step in self.keep:
            self.save(trainer, self.keep_dir, step)
        # a request may reach the ranks at different steps: all stop (and save, a collective) when one has it
        stop = distributed.any_rank(trainer, self.stop_requested() or trainer.received_sigterm)
        if stop or step % self.cfg.train.ckpt_interval == 0:
            self.save(trainer, self.dir, step)
            if trainer.is_global_zero:
                io.prune_checkpoints(self.dir, keep=2)
                self.on_saved(step)
        if stop:
            trainer.should_stop = True

    def save(self, trainer, folder: Path, step: int) -> None:
        if not trainer.is_global_zero:  # every rank takes part in save_checkpoint; only rank 0 writes the file
            trainer.save_checkpoint(io.ckpt_path(folder, step))
            return
        folder.mkdir(parents=True, exist_ok=True)
        path = io.ckpt_path(folder, step)
        io.atomic_write_with(path, trainer.save_checkpoint)
        io.write_checksum(path)


class Progress(Callback):
    """A tqdm bar on a terminal; anywhere else (a file, a pipe) one plain line per log interval."""

    def __init__(self, cfg: RunConfig, table: MetricsTable, monitor: TrainMonitor, bar: bool):
        self.cfg, self.table, self.monitor, self.bar = cfg, table, monitor, None
        self.use_bar = bar

    def on_train_start(self, trainer, pl_module) -> None:
        if self.use_bar:
            self.bar = tqdm(total=self.cfg.steps, initial=trainer.global_step, unit="step", dynamic_ncols=True,
                            desc=f"{self.cfg.model.arch}-{self.cfg.model.size}", mininterval=0.5)  # fmt: skip

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if self.bar is not None:
            self.bar.update(1)
        if step % self.cfg.train.log_interval and step < self.cfg.steps:
            return
        row = self.table.rows.get(step, {})
        tps = row.get("tokens_per_s") or self.table.last("tokens_per_s")
        if self.bar is not None:
            post = {"loss": self.table.last("train_loss"), "val": self.table.last("val_loss")}
            text = {k: f"{v:.3f}" for k, v in post.items() if v is not None}
            self.bar.set_postfix({**text, **({"tok/s": f"{tps:,.0f}"} if tps else {})}, refresh=False)
            return
        parts = [f"step {step}/{self.cfg.steps}", f"tokens {step * self.table.tokens_per_step:,}"]
        for key, name, fmt in (("train_loss", "loss", ".4f"), ("val_loss", "val", ".4f"), ("lr", "lr", ".3g"),
                               ("tokens_per_s", "tok/s", ",.0f"), ("mfu", "mfu", ".1%")):  # fmt: skip
            if key in row and math.isfinite(row[key]):
                parts.append(f"{name} {row[key]:{fmt}}")
        if tps:
            parts.append(f"eta {_duration((self.cfg.steps - step) * self.table.tokens_per_step / tps)}")
        print("  ".join(parts), file=sys.stdout, flush=True)

    def on_train_end(self, trainer, pl_module) -> None:
        self.close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _duration(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def make_loggers(names: list[str], run_dir: Path, run_id: str) -> list:
    """Lightning's own logger classes for train.loggers, writing under <run_dir>/logs/ (the package of each was
    checked by ant.train.run.check_run). They receive every row MetricsTable records."""
    import os

    from lightning.pytorch import loggers as pl

    logs = Path(run_dir) / runfolder.LOGS
    if "mlflow" in names:  # its SQLite file's folder must exist before MLflow opens it
        logs.mkdir(parents=True, exist_ok=True)
    made = {
        "csv": lambda: pl.CSVLogger(logs, name="", version="csv"),
        "tensorboard": lambda: pl.TensorBoardLogger(logs, name="", version="tensorboard", default_hp_metric=False),
        # offline unless the user asked W&B for online mode: a sweep worker may have no network
        "wandb": lambda: pl.WandbLogger(
            name=run_id,
            id=run_id,
            save_dir=str(logs),
            project="ant",
            offline=os.environ.get("WANDB_MODE", "offline") != "online",
        ),  # fmt: skip
        # the user's MLFLOW_TRACKING_URI, else SQLite in logs/ (MLflow 3 refuses `file:` stores: "maintenance mode")
        "mlflow": lambda: pl.MLFlowLogger(
            experiment_name="ant",
            run_name=run_id,
            tracking_uri=os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{(logs / 'mlflow.db').resolve()}",
            artifact_location=(logs / "mlflow-artifacts").resolve().as_uri(),
        ),  # fmt: skip
    }
    return [made[name]() for name in dict.fromkeys(names)]
