"""Data for one run: the batch of optimizer step s is `TrainSampler.batch(s)`, a pure function of (seed, step).

Nothing about the data position needs saving: when Lightning resumes a run at global step s, the dataloader is
created afresh and `StepBatches` starts yielding at s (it asks the trainer), so the resumed run sees exactly the
batches the uninterrupted one would have seen. The module cuts each batch into micro-batches itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset

from ant.config import RunConfig
from ant.data import TrainSampler


class StepBatches(IterableDataset):
    def __init__(self, dm: TokenDataModule):
        super().__init__()
        self.dm = dm

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        trainer = self.dm.trainer
        start = int(trainer.global_step) if trainer is not None else 0
        rank, world = (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)
        for step in range(start, self.dm.cfg.steps):
            yield self.dm.sampler.batch(step, rank, world)  # this rank's share of step's global batch


class TokenDataModule(L.LightningDataModule):
    def __init__(self, cfg: RunConfig, data):
        super().__init__()
        t = cfg.train
        self.cfg, self.sampler = cfg, TrainSampler(data.train, cfg.data.seq_len, t.batch_size, t.seed)

    def train_dataloader(self) -> DataLoader:
        # Workers would each need the memmap and the step; batches are cheap slices, the main process keeps up.
        return DataLoader(StepBatches(self), batch_size=None, pin_memory=self.cfg.train.device == "cuda")
