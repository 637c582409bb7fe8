"""optuna pruning from inside the training process: a Lightning callback that reports each evaluation's val loss
to the trial as soon as the Evaluator has measured it, and stops the run when optuna says prune.

A module of its own because it imports Lightning: ant.sweep.tune is also read by the grid planner (`from_study`),
which must stay light. The tune worker hands the callback to ant.train.train(..., callbacks=[...]).
"""

from __future__ import annotations

import math

from lightning.pytorch.callbacks import Callback

from ant.train import request_checkpoint
from ant.train.callbacks import Evaluator


class ReportToTrial(Callback):
    """trial.report(val_loss, step) for every evaluation, then trial.should_prune(); a pruned run is asked to
    checkpoint and stop at the next step (ant.train.request_checkpoint), as a signal would."""

    def __init__(self, trial):
        self.trial = trial
        self.pruned = False
        self.reported: list[tuple[int, float]] = []
        self._last = -1  # the newest step reported

    def _report_new(self, trainer) -> None:
        table = next((cb.table for cb in trainer.callbacks if isinstance(cb, Evaluator)), None)
        if table is None:
            return
        for step in sorted(s for s in table.rows if s > self._last):
            val = table.rows[step].get("val_loss")
            if val is None or not math.isfinite(val):
                continue
            self._last = step
            self.trial.report(float(val), step)
            self.reported.append((step, float(val)))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        n = len(self.reported)
        self._report_new(trainer)
        if len(self.reported) > n and not self.pruned and self.trial.should_prune():
            self.pruned = True
            request_checkpoint()

    def on_train_end(self, trainer, pl_module) -> None:
        self._report_new(trainer)  # the final evaluation, so the pruner's statistics see the whole curve
