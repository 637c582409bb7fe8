"""Parameter and FLOP counts in closed form, per (arch, size, vocab, options), without building a model.

Planning a sweep needs N (for the recipe's beta2, tokens_per_param budgets and the LR/batch rules) and FLOPs/token
for every run; building each model on the meta device to count them cost ~20 ms a run (issue 17). The counts
follow the module layout of base.py (Table F.1); what each architecture adds is its config's `vector_params()`,
in ant/models/args.py, torch-free like this module:

    every block    qkv 3d^2 + proj d^2 + fc 2fd + down fd          = 4d^2 + 3fd   (16 d^2 at f = 4d)
    embedding      V d (a lookup: not a matmul parameter)
    head           lm_head V d (a matmul parameter)
    + L x the block's vectors and the head's (ModelArgs.vector_params: norm gains, scales)

FLOPs/token follow Transformer.flops_per_token: 6 N_matmul + 6 L d T. tests/models/test_counts.py checks both
against built models for every arch x size x parameter-changing option.

Options are validated by make_config, so a bad option fails here exactly as build_model would fail.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ant.models.options import make_config  # torch-free: the config dataclasses are in ant.models.args
from ant.models.sizes import PAPER_VOCAB


@dataclass(frozen=True)
class Counts:
    """Parameter counts of one model shape."""

    num_params: int  # all parameters (Transformer.num_params)
    matmul_params: int  # block matrices + head (Transformer.matmul_params)
    n_layers: int
    d_model: int

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token, forward + backward (Transformer.flops_per_token)."""
        return 6.0 * self.matmul_params + 6.0 * self.n_layers * self.d_model * seq_len


def counts(arch: str, size: str, vocab_size: int = PAPER_VOCAB, options: dict[str, Any] | None = None) -> Counts:
    """The counts of build_model(arch, size, vocab_size=vocab_size, **options), computed, not built. Cached per
    distinct shape (a 10,000-run grid has a handful)."""
    options = options or {}
    # repr keeps 1, 1.0 and True apart (make_config type-checks them differently)
    key = (arch, size, vocab_size, type(vocab_size), tuple(sorted((k, repr(v)) for k, v in options.items())))
    if key not in _CACHE:
        _CACHE[key] = _count(arch, size, vocab_size, options)
    return _CACHE[key]


def num_params(arch: str, size: str, vocab_size: int = PAPER_VOCAB, options: dict[str, Any] | None = None) -> int:
    return counts(arch, size, vocab_size, options).num_params


def flops_per_token(
    arch: str, size: str, vocab_size: int, seq_len: int, options: dict[str, Any] | None = None
) -> float:
    return counts(arch, size, vocab_size, options).flops_per_token(seq_len)


_CACHE: dict[tuple, Counts] = {}


def _count(arch: str, size: str, vocab_size: int, options: dict[str, Any]) -> Counts:
    c = make_config(arch, size, vocab_size, **options)
    d, f, L, V = c.d_model, c.d_mlp, c.n_layers, c.vocab_size
    block_matrices = 4 * d * d + 3 * f * d
    matmul = L * block_matrices + V * d
    per_block, head = c.vector_params()
    total = V * d + matmul + L * per_block + head
    return Counts(num_params=total, matmul_params=matmul, n_layers=L, d_model=d)
