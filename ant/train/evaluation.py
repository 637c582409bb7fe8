"""When a run evaluates, on which validation windows, and in batches of what size (issue 23).

The CPU study's runs spent more time in validation than in training at tiny0 (21 full passes over 32,768 tokens
at the training batch, 4.1x the training tokens). The scheme:

  - step 0 and the chosen multiples of train.eval_interval are *intermediate* evaluations. By default they use
    every validation window too: the compute frontier, IsoFLOP and Fig. 4 read every val row of a curve, and a
    subset's loss sits a fixed offset (up to a few %) from the full set's, so a curve of subset points ending in
    one full point would mix two estimators in one fit. train.eval_tokens opts into an evenly spread subset
    (every held-out document sampled) for runs whose curves are only watched, not fitted;
  - the run's last step (and the step a run diverges at) is the *final* evaluation, on every window: the run's
    final val loss, the number every law is fitted to, is the one a full evaluation gives;
  - "log" spacing keeps the multiples k = round(sqrt(2)^j) of eval_interval: 1, 2, 3, 4, 6, 8, 11, 16, 23, 32 ...
    Loss curves are read on log-token axes (compute frontier, curve fits), where a curve moves early and flattens
    late; evenly spaced points spent most evaluations on the flat tail. At the default interval (steps / 20)
    that is step 0, 8 multiples and the final step: 10 evaluations. The set depends on
    eval_interval alone, not on the run's length, so a wsd trunk and its branches (one interval per family)
    evaluate at the same steps as the same runs trained alone;
  - train.eval_batch_size sequences per forward (16 on CPU: 3-6x faster a token than batch 1 at tiny0-tiny2,
    measured; larger batches bring nothing there).

metrics.parquet says which rows are which: the column `val_tokens` holds the number of validation tokens each
val_loss was measured on (ant.train.callbacks.Evaluator): the final row's is the full set's (its windows x
seq_len); a smaller count is a subset row. Runs from before issue 23 lack the column: every val row was full.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ant.config import RunConfig, TrainConfig
from ant.data import val_batches

if TYPE_CHECKING:
    import torch

CPU_EVAL_BATCH = 16  # sequences; measured at one thread on tiny0-tiny3 (docs/study.md)


def eval_batch_size(t: TrainConfig) -> int:
    """Sequences per validation forward: train.eval_batch_size, else 16 on CPU, the training micro-batch on GPU
    (whose memory is known to hold it)."""
    if t.eval_batch_size:
        return t.eval_batch_size
    return CPU_EVAL_BATCH if t.device == "cpu" else t.micro_batch_size or t.batch_size


def subset_windows(cfg: RunConfig, num_windows: int) -> int:
    """Validation windows of an intermediate evaluation (at least one, at most all)."""
    tokens = cfg.train.eval_tokens or cfg.data.val_tokens  # 0: all of them (see the module docstring)
    return max(1, min(num_windows, tokens // cfg.data.seq_len))


@dataclass
class ValSets:
    subset: list  # (x, y) batches of the intermediate evaluations
    full: list  # (x, y) batches of every validation window: the final evaluation
    diag_x: torch.Tensor  # the first windows, as many as a training micro-batch: the residual-norm diagnostics

    @staticmethod
    def tokens(batches: list) -> int:
        return sum(int(y.numel()) for _, y in batches)


def val_sets(cfg: RunConfig, val_tokens) -> ValSets:
    """The validation batches of a run: the subset is every (n / m)-th window, in batches of the same size.
    The diagnostics keep the batch they had before issue 23 (the first micro-batch of windows), so residual
    norms stay comparable with the committed study's."""
    import torch  # late: the planner reads this module's step arithmetic (evaluated_tokens) without torch

    t, size = cfg.train, eval_batch_size(cfg.train)
    full = list(val_batches(val_tokens, cfg.data.seq_len, size))
    x, y = torch.cat([b[0] for b in full]), torch.cat([b[1] for b in full])
    n = len(x)
    m = subset_windows(cfg, n)
    diag_x = x[: t.micro_batch_size or t.batch_size]
    if m == n:
        return ValSets(full, full, diag_x)
    picked = torch.tensor([(i * n) // m for i in range(m)])  # evenly spread, the first window included
    return ValSets(list(zip(x[picked].split(size), y[picked].split(size))), full, diag_x)


# round(sqrt(2)^j): 1, 2, 3, 4, 6, 8, 11, 16, 23, 32, 45, 64 ... (j < 80 reaches past any step count)
LOG_MULTIPLES = frozenset(round(math.sqrt(2) ** j) for j in range(80))


def is_intermediate(cfg: RunConfig, step: int) -> bool:
    """Whether `step` (0 < step < cfg.steps) is an intermediate evaluation step."""
    every = cfg.train.eval_interval
    if step % every:
        return False
    return cfg.train.eval_spacing == "every" or step // every in LOG_MULTIPLES


def eval_steps(cfg: RunConfig, start: int = 0) -> tuple[list[int], int]:
    """(intermediate steps at or after `start`, step 0 included when start is 0; the final step)."""
    every = cfg.train.eval_interval
    first = ((start + every - 1) // every) * every
    steps = [s for s in range(max(first, every), cfg.steps, every) if is_intermediate(cfg, s)]
    return ([0] if start == 0 else []) + steps, cfg.steps


def evaluated_tokens(cfg: RunConfig, start: int = 0) -> int:
    """Validation tokens a run scores from step `start` on (the planner's cost model, ant.sweep.plan)."""
    windows = (cfg.data.val_tokens - 1) // cfg.data.seq_len
    intermediate, _ = eval_steps(cfg, start)
    return (len(intermediate) * subset_windows(cfg, windows) + windows) * cfg.data.seq_len
