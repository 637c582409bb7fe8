"""Lightning callbacks that make a run observable and restartable.

  TrainMonitor     train loss (mean over each log interval), lr, grad norm, tokens/s; the divergence guard;
                   with train.noise_scale the gradient noise scale gns_* (ant.train.noise_scale)
  Evaluator        val loss on the fixed validation set; residual norms and α diagnostics
  RunCheckpoint    checkpoints with checksums every ckpt_interval steps and when a stop is requested
  ProgressBar      tqdm bar with loss, tokens/s and ETA

All of them write into one `MetricsTable` (one row per step, NaN where nothing was measured), which travels
inside every checkpoint, so a resumed run continues the very same table. Callback order matters and is fixed
by `ant.train.run`: monitor, evaluator, checkpoint (Lightning runs Checkpoint callbacks last), progress.
"""

from __future__ import annotations

import math
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
import pandas as pd
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback, Checkpoint
from tqdm.auto import tqdm

from ant.config import RunConfig
from ant.train import io
from ant.train.noise_scale import NoiseScaleEMA
from ant.train.optim import lr_at

FIXED_COLUMNS = ["step", "tokens", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s"]
# Smoothing of the divergence guard: an EMA over ~10 steps, bias-corrected so it starts at the first loss.
EMA_BETA = 0.9

# Set by request_checkpoint() (e.g. from a signal handler): checkpoint at the next step boundary, then stop.
STOP_REQUESTED = threading.Event()


class MetricsTable:
    def __init__(self, tokens_per_step: int):
        self.tokens_per_step = tokens_per_step
        self.rows: dict[int, dict[str, float]] = {}

    def add(self, step: int, **values: float) -> None:
        self.rows.setdefault(int(step), {}).update({k: float(v) for k, v in values.items()})

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
        df["step"] = df["step"].astype("int64")
        df["tokens"] = df["tokens"].astype("int64")
        return df

    def write(self, path: Path) -> None:
        df = self.frame()
        io.atomic_write_with(path, lambda tmp: df.to_parquet(tmp, index=False))

    def state_dict(self) -> dict[str, Any]:
        return {str(k): dict(v) for k, v in self.rows.items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = {int(k): dict(v) for k, v in state.items()}


def _natural(name: str) -> tuple:
    head, _, tail = name.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (name, -1)


class TrainMonitor(Callback):
    """Buffers the per-step loss on the device and syncs once per log interval (no per-step GPU sync)."""

    def __init__(self, cfg: RunConfig, table: MetricsTable):
        self.cfg, self.table = cfg, table
        self.pending: list[Any] = []  # losses of the steps since the last row (tensors, or floats after resume)
        self.ema, self.ema_n, self.best = 0.0, 0, math.inf
        self.diverged_step: int | None = None
        self.interrupted = False
        self.wall_time_s = 0.0  # summed over every session of the run (restored from the checkpoint)
        # Throughput of this process, without its first log interval (compilation, allocator and cache warm-up)
        # unless that is all there is.
        self.session_tokens, self.session_train_s = 0, 0.0
        self.first_interval: tuple[int, float] | None = None
        self.overhead_s = 0.0  # eval / checkpoint time inside the current interval, not counted as training
        # Noise scale: per-step [mean |g_micro|², |G_batch|²] since the last row (tensors, or float pairs after a
        # resume), folded into the EMAs at each row so that the device syncs once per log interval.
        self.gns = NoiseScaleEMA() if cfg.train.noise_scale else None
        self.gns_pending: list[Any] = []

    @property
    def state_key(self) -> str:
        return "TrainMonitor"

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._t_session = self._t_last = time.perf_counter()
        self._step_last = trainer.global_step
        self._wall_at_start = self.wall_time_s

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not pl_module.stepped:  # a micro-batch inside an optimizer step
            return
        step = trainer.global_step
        self.pending.append(pl_module.last_loss)
        if self.gns is not None and pl_module.last_gns is not None:
            self.gns_pending.append(pl_module.last_gns)
        if step % self.cfg.train.log_interval == 0 or step >= self.cfg.steps:
            self.flush(trainer, pl_module, step)

    def flush(self, trainer: L.Trainer, pl_module, step: int) -> None:
        if not self.pending:
            return
        losses = _floats(self.pending)
        self.pending = []
        first = step - len(losses) + 1
        for i, v in enumerate(losses):
            self._guard(first + i, v)
        now = time.perf_counter()
        n_steps = step - self._step_last
        train_s = max(now - self._t_last - self.overhead_s, 1e-9)
        tokens = n_steps * self.table.tokens_per_step
        if self.first_interval is None:
            self.first_interval = (tokens, train_s)
        else:
            self.session_tokens += tokens
            self.session_train_s += train_s
        self.wall_time_s = self.current_wall_time_s()
        row = {"train_loss": sum(losses) / len(losses), "lr": lr_at(step - 1, self.cfg.optim, self.cfg.steps)}
        if n_steps > 0:
            row["tokens_per_s"] = tokens / train_s
        if pl_module.last_grad_norm is not None:
            row["grad_norm"] = float(pl_module.last_grad_norm)
        if self.gns is not None and self.gns_pending:
            row.update(self._noise_scale_row())
        self.table.add(step, **row)
        self._t_last, self._step_last, self.overhead_s = now, step, 0.0
        if self.diverged_step is not None:
            trainer.should_stop = True

    def _noise_scale_row(self) -> dict[str, float]:
        t = self.cfg.train
        for sq_small, sq_big in _float_pairs(self.gns_pending):
            self.gns.update(t.micro_batch_size, sq_small, t.batch_size, sq_big)
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
        if self.first_interval is not None:
            return self.first_interval[0] / self.first_interval[1]
        return None

    def state_dict(self) -> dict[str, Any]:
        return {
            "table": self.table.state_dict(),
            "pending": _floats(self.pending),
            "ema": self.ema,
            "ema_n": self.ema_n,
            "best": self.best,
            "diverged_step": self.diverged_step,
            "wall_time_s": self.current_wall_time_s(),
            "gns": self.gns.state_dict() if self.gns is not None else None,
            "gns_pending": _float_pairs(self.gns_pending),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.table.load_state_dict(state["table"])
        self.pending = list(state["pending"])
        self.ema, self.ema_n, self.best = state["ema"], state["ema_n"], state["best"]
        self.diverged_step = state["diverged_step"]
        self.wall_time_s = state["wall_time_s"]
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
    """Val loss every eval_interval steps, at step 0 and at the last step; diagnostics every diag_interval."""

    def __init__(self, cfg: RunConfig, table: MetricsTable, val_batches: list, monitor: TrainMonitor):
        self.cfg, self.table, self.val, self.monitor = cfg, table, val_batches, monitor

    def on_train_start(self, trainer, pl_module) -> None:
        if trainer.global_step == 0:
            self.measure(trainer, pl_module, 0, val=True, diag=True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not pl_module.stepped:  # a micro-batch inside an optimizer step
            return
        step, t = trainer.global_step, self.cfg.train
        last = step >= self.cfg.steps or trainer.should_stop
        self.measure(
            trainer, pl_module, step, val=last or step % t.eval_interval == 0, diag=step % t.diag_interval == 0
        )

    def measure(self, trainer, pl_module, step: int, *, val: bool, diag: bool) -> None:
        if not (val or diag):
            return
        t0 = time.perf_counter()
        if val:
            self.table.add(step, val_loss=pl_module.evaluate(self.val))
        if diag:
            self.table.add(step, **diagnostics(pl_module, self.val[0][0]))
        self.monitor.overhead_s += time.perf_counter() - t0


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
    failed runs whose own disk had room. RunCheckpoint already writes to a temp name beside the target and
    renames it (io.atomic_write_with), which is all the atomicity a checkpoint needs."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any = None) -> None:
        try:
            torch.save(checkpoint, path)
        except RuntimeError as e:  # torch's zip writer reports a full disk as "unexpected pos 128 vs 0"
            free = shutil.disk_usage(Path(path).parent).free
            raise OSError(f"writing checkpoint {Path(path).name} failed with {free:,} bytes free there: {e}") from e


class RunCheckpoint(Checkpoint):
    """Every ckpt_interval steps (and when a stop is requested): checkpoint -> checksum -> prune -> metrics."""

    def __init__(self, run_dir: Path, cfg: RunConfig, table: MetricsTable, monitor: TrainMonitor, on_saved):
        self.dir = Path(run_dir) / "checkpoints"
        self.cfg, self.table, self.monitor, self.on_saved = cfg, table, monitor, on_saved

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not pl_module.stepped:  # a micro-batch inside an optimizer step
            return
        step = trainer.global_step
        if self.monitor.diverged_step is not None or step >= self.cfg.steps:
            return
        stop = STOP_REQUESTED.is_set() or getattr(trainer, "received_sigterm", False)
        if stop or step % self.cfg.train.ckpt_interval == 0:
            self.save(trainer, step)
        if stop:
            self.monitor.interrupted = True
            trainer.should_stop = True

    def save(self, trainer: L.Trainer, step: int) -> Path:
        t0 = time.perf_counter()
        self.dir.mkdir(parents=True, exist_ok=True)
        path = io.ckpt_path(self.dir, step)
        io.atomic_write_with(path, trainer.save_checkpoint)
        io.write_checksum(path)
        io.prune_checkpoints(self.dir, keep=2)
        self.on_saved(step)
        self.monitor.overhead_s += time.perf_counter() - t0
        return path


class ProgressBar(Callback):
    def __init__(self, cfg: RunConfig, table: MetricsTable, monitor: TrainMonitor, desc: str):
        self.cfg, self.table, self.monitor, self.desc = cfg, table, monitor, desc
        self.bar = None

    def on_train_start(self, trainer, pl_module) -> None:
        self.bar = tqdm(total=self.cfg.steps, initial=trainer.global_step, desc=self.desc, unit="step",
                        dynamic_ncols=True, mininterval=0.5)  # fmt: skip

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if not pl_module.stepped:  # a micro-batch inside an optimizer step
            return
        self.bar.update(1)
        if trainer.global_step % self.cfg.train.log_interval == 0:
            post = {"loss": self.table.last("train_loss"), "val": self.table.last("val_loss")}
            tps = self.table.last("tokens_per_s")
            text = {k: f"{v:.3f}" for k, v in post.items() if v is not None}
            if tps:
                text["tok/s"] = f"{tps:,.0f}"
            self.bar.set_postfix(text, refresh=False)

    def on_train_end(self, trainer, pl_module) -> None:
        self.close()

    def on_exception(self, trainer, pl_module, exception) -> None:
        self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
