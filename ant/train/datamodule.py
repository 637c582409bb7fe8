"""Data for one run: the batch of optimizer step s is `TrainSampler.batch(s)`, a pure function of (seed, step).

Nothing about the data position needs saving: when Lightning resumes a run at global step s, the dataloader is
created afresh and `StepBatches` starts yielding at s (it asks the trainer), so the resumed run sees exactly the
batches the uninterrupted one would have seen. Validation uses the fixed windows of `ant.data.val_batches`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset

from ant.config import RunConfig


class StepBatches(IterableDataset):
    """Yields `sampler.batch(s)` for s = start_step(), ..., steps - 1, each cut into `micro` equal micro-batches
    (Lightning accumulates their gradients into one optimizer step). The loader adds no batching."""

    def __init__(self, sampler, steps: int, start_step: Callable[[], int], micro: int = 1):
        super().__init__()
        self.sampler = sampler
        self.steps = steps
        self.start_step = start_step
        self.micro = micro

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for step in range(self.start_step(), self.steps):
            x, y = self.sampler.batch(step)
            if self.micro == 1:
                yield x, y
            else:
                yield from zip(x.chunk(self.micro), y.chunk(self.micro))


class TokenDataModule(L.LightningDataModule):
    def __init__(self, cfg: RunConfig, data):
        super().__init__()
        from ant.data import TrainSampler

        self.cfg = cfg
        self.data = data
        t = cfg.train
        self.sampler = TrainSampler(data.train, cfg.data.seq_len, t.batch_size, t.seed)
        self.micro_batch_size = t.micro_batch_size or t.batch_size
        self.accumulate = t.batch_size // self.micro_batch_size

    def _start_step(self) -> int:
        return int(self.trainer.global_step) if self.trainer is not None else 0

    def train_dataloader(self) -> DataLoader:
        ds = StepBatches(self.sampler, self.cfg.steps, self._start_step, self.accumulate)
        # Workers would each need the memmap and the step; batches are cheap slices, the main process keeps up.
        return DataLoader(ds, batch_size=None, num_workers=0, pin_memory=self.cfg.train.device == "cuda")

    def val_batches(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The fixed validation windows as a list of (x, y) batches of micro_batch_size sequences (held in host
        memory, moved per batch). The mean token loss does not depend on this batching."""
        from ant.data import val_batches

        return list(val_batches(self.data.val, self.cfg.data.seq_len, self.micro_batch_size))
