"""The deterministic, resumable training sampler and the fixed validation batches over the token files.

TrainSampler cuts train.bin into non-overlapping windows of seq_len + 1 tokens and visits them in a fresh
permutation per epoch, drawn from (seed, epoch). batch(step) therefore depends on (seed, step) only: a resumed
run continues exactly without saving sampler state. With W data-parallel ranks, rank r takes rows [r B/W,
(r+1) B/W) of that same global batch, so a run resumed on another device count continues the same token stream.
Ids are read as stored (uint16 or uint32) and returned as int64.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ant.data.tokens import TokenData
from ant.errors import ConfigError


def _array(tokens: TokenData | np.ndarray, split: str) -> np.ndarray:
    return getattr(tokens, split) if isinstance(tokens, TokenData) else tokens


def _windows(arr: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = starts[:, None] + np.arange(seq_len + 1)[None, :]
    chunk = torch.from_numpy(np.asarray(arr[idx], dtype=np.int64))
    return chunk[:, :-1], chunk[:, 1:]


class TrainSampler:
    """batch(step) -> (x, y), int64 [batch_size, seq_len], a pure function of (seed, step).

    Sequence k of the run (k = step * batch_size + row) is window perm_e[k mod n] of epoch e = k // n, where n
    is num_sequences and perm_e a permutation drawn from (seed, e): within an epoch every non-overlapping
    window is seen exactly once.
    """

    def __init__(self, tokens: TokenData | np.ndarray, seq_len: int, batch_size: int, seed: int):
        self.tokens = _array(tokens, "train")
        self.seq_len, self.batch_size, self.seed = int(seq_len), int(batch_size), int(seed)
        if self.seq_len < 1:
            raise ConfigError("data.seq_len", f"must be >= 1, got {seq_len!r}")
        self.num_sequences = max(0, (len(self.tokens) - 1) // self.seq_len)
        if self.num_sequences == 0:  # not even one window: the window is too long, whatever the batch
            raise ConfigError(
                "data.seq_len",
                f"{seq_len} + 1 tokens do not fit the training split ({len(self.tokens)} tokens)",
                f"2..{max(2, len(self.tokens) - 1)}",
            )
        if self.batch_size < 1 or self.batch_size > self.num_sequences:
            raise ConfigError(
                "train.batch_size",
                f"{batch_size} sequences of {seq_len} tokens do not fit the training split ({len(self.tokens)} tokens)",
                f"1..{self.num_sequences}",
            )
        self._perms: dict[int, np.ndarray] = {}

    def permutation(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            if len(self._perms) >= 2:  # a batch spans at most two epochs
                self._perms.pop(min(self._perms))
            self._perms[epoch] = np.random.default_rng([self.seed, epoch]).permutation(self.num_sequences)
        return self._perms[epoch]

    def epoch(self, step: int) -> float:
        return step * self.batch_size / self.num_sequences

    def batch(self, step: int, rank: int = 0, world: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Rank `rank` of `world`'s disjoint share of step `step`'s global batch (all of it for world 1)."""
        if world < 1 or self.batch_size % world or not 0 <= rank < world:
            raise ConfigError("train.devices", f"rank {rank} of {world} cannot share batch_size {self.batch_size}")
        rows = self.batch_size // world
        k = int(step) * self.batch_size + rank * rows + np.arange(rows)
        epochs, pos = np.divmod(k, self.num_sequences)
        windows = np.empty(rows, dtype=np.int64)
        for e in np.unique(epochs):
            sel = epochs == e
            windows[sel] = self.permutation(int(e))[pos[sel]]
        return _windows(self.tokens, windows * self.seq_len, self.seq_len)


class ValBatches:
    """The fixed validation windows in order: non-overlapping seq_len + 1 token windows of val.bin, in batches
    of batch_size (the last one may be smaller). Iterable any number of times; same batches every time."""

    def __init__(self, tokens: TokenData | np.ndarray, seq_len: int, batch_size: int):
        self.tokens = _array(tokens, "val")
        self.seq_len, self.batch_size = int(seq_len), int(batch_size)
        self.num_sequences = (len(self.tokens) - 1) // self.seq_len
        if self.num_sequences < 1:
            raise ConfigError(
                "data.val_tokens",
                f"{len(self.tokens)} validation tokens hold no window of {seq_len} + 1 tokens",
                f">= {self.seq_len + 1}",
            )
        if self.batch_size < 1:
            raise ConfigError("train.batch_size", f"must be >= 1, got {batch_size!r}")

    def __len__(self) -> int:
        return math.ceil(self.num_sequences / self.batch_size)

    def __iter__(self):
        for i in range(0, self.num_sequences, self.batch_size):
            starts = np.arange(i, min(i + self.batch_size, self.num_sequences)) * self.seq_len
            yield _windows(self.tokens, starts, self.seq_len)


def val_batches(tokens: TokenData | np.ndarray, seq_len: int, batch_size: int) -> ValBatches:
    return ValBatches(tokens, seq_len, batch_size)
