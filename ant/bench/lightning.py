"""`ant bench --lightning`: the bench's training step driven by a real Lightning Trainer, the way ant.train drives
it, so the report shows what the framework costs over the bare loop (goal: <= 5 %). Called by ant/bench/measure.py
with plain objects (a RunConfig, the model, its compiled forward, the batches); it knows nothing of the bench."""

from __future__ import annotations

import gc
import logging
import warnings
from collections.abc import Callable

import lightning as L
import torch

from ant.config import RunConfig
from ant.perf import StepTimer
from ant.train.callbacks import MetricsTable, TrainMonitor
from ant.train.module import LMModule


class _StayOnDevice(L.pytorch.strategies.SingleDeviceStrategy):
    def teardown(self) -> None:
        pass  # the default moves model and optimizer state to the CPU; the bare loop shares the model


class _MarkStart(L.Callback):
    def __init__(self, timer: StepTimer):
        self.timer = timer

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.timer.mark()


def lightning_block(
    cfg: RunConfig,
    model: torch.nn.Module,
    forward: Callable,
    batches: list[torch.Tensor],
    n_steps: int,
    n_warm: int = 2,
) -> list[float]:
    """Time the last `n_steps` of cfg.steps (= n_warm + n_steps + 1) training steps that a Lightning Trainer drives
    the way ant.train does: its LMModule (one optimizer step per training_step: LR, clip, step, projection) and
    TrainMonitor (per-step loss buffering, a sync per log interval), on `model` trained through `forward` (the
    bench's compiled graph: no second compile). Evaluation and checkpoints are left out: training counts them as
    overhead, not as step time."""
    device = torch.device(cfg.train.device)
    # A plain function, not the compiled module itself: LMModule tests `train_forward or model`, and a compiled
    # module's truth value calls len(), which raises ("GPT does not support len()"; torch 2.13).
    module = LMModule(cfg, model, forward=lambda x: forward(x))
    timer = StepTimer(device)
    data = [(t[:, :-1], t[:, 1:]) for t in batches]
    loader = torch.utils.data.DataLoader([data[i % len(data)] for i in range(cfg.steps)], batch_size=None)
    monitor = TrainMonitor(cfg, MetricsTable(cfg.train.batch_size * cfg.data.seq_len))
    quiet = [logging.getLogger(n) for n in ("lightning", "lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in quiet]
    for lg in quiet:
        lg.setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # srun hints, pytree deprecations: noise in a benchmark table
        try:
            trainer = L.Trainer(
                accelerator="gpu" if device.type == "cuda" else "cpu",
                devices=1,
                strategy=_StayOnDevice(device=_indexed(device)),
                precision="bf16-mixed" if cfg.train.precision == "bf16-mixed" else "32-true",
                max_steps=cfg.steps,
                callbacks=[_MarkStart(timer), monitor],
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                num_sanity_val_steps=0,
                limit_val_batches=0,
            )
            trainer.fit(module, train_dataloaders=loader)
        finally:
            for lg, lvl in zip(quiet, levels):
                lg.setLevel(lvl)
    times = timer.elapsed()[-n_steps:]
    del trainer, module
    gc.collect()  # the trainer holds LMModule's own optimizer state: free it before the next block
    return times


def _indexed(device: torch.device) -> torch.device:
    """cuda -> cuda:<current>: Lightning's CUDA accelerator calls torch.cuda.set_device, which needs an index."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device
