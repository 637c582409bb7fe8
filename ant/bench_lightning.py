"""`ant bench --lightning`: the bench's training step driven by a real Lightning Trainer, the way ant.train drives it,
so the report shows what the framework costs over the bare loop (goal: <= 5 %)."""

from __future__ import annotations

import gc
from typing import TYPE_CHECKING

import torch

from ant.perf import StepTimer

if TYPE_CHECKING:
    from ant.bench import Bench


def lightning_block(b: Bench, n_steps: int, n_warm: int = 2) -> list[float]:
    """Time `n_steps` training steps driven by a Lightning Trainer (after `n_warm` unmeasured steps) the way
    ant.train drives them: its LMModule (LR schedule, clip hook, projection in optimizer_step) and TrainMonitor
    (per-step loss buffering, a sync per log interval), on the bench's model and compiled forward. Evaluation
    and checkpoints are left out: training counts them as overhead, not as step time."""
    import logging
    import warnings

    import lightning as L

    from ant.train.callbacks import MetricsTable, TrainMonitor
    from ant.train.module import LMModule

    cfg = b.run_config(n_warm + n_steps + 1)
    module = LMModule(cfg, b.model)
    object.__setattr__(module, "_forward", b.loss_fn.forward)  # reuse the compiled graph (no second compile)
    timer = StepTimer(torch.device(b.cfg.device))

    class StayOnDevice(L.pytorch.strategies.SingleDeviceStrategy):
        def teardown(self) -> None:
            pass  # the default moves model and optimizer state to the CPU; the bare loop shares the model

    class MarkStart(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            timer.mark()

    data = [(t[:, :-1], t[:, 1:]) for t in b.batches]
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
                accelerator="gpu" if b.cfg.device == "cuda" else "cpu",
                devices=1,
                strategy=StayOnDevice(device=_indexed(torch.device(b.cfg.device))),
                precision="bf16-mixed" if b.cfg.dtype == "bf16" else "32-true",
                max_steps=cfg.steps,
                gradient_clip_val=cfg.optim.grad_clip,
                callbacks=[MarkStart(), monitor],
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
    gc.collect()  # the trainer holds LMModule's own Adam state: free it before the next block
    return times


def _indexed(device: torch.device) -> torch.device:
    """cuda -> cuda:<current>: Lightning's CUDA accelerator calls torch.cuda.set_device, which needs an index."""
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device
