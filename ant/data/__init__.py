"""Data: the offline corpus, tokenizers, memory-mapped token files and the deterministic sampler.

    data = load_tokens(cfg.data)                       # builds or reuses corpus, tokenizer, token files (cached)
    data.train, data.val                               # 1-D uint16/uint32 memmaps; len(data.val) == val_tokens
    data.vocab_size, data.tokenizer.encode("text")     # ids < vocab_size; decode(ids) -> str
    data.unigram_entropy                               # nats/token of the training split (a loss baseline)
    sampler = TrainSampler(data, seq_len=128, batch_size=16, seed=0)
    x, y = sampler.batch(step)                         # int64 [B, T]; a pure function of (seed, step)
    for x, y in val_batches(data, 128, 16): ...        # the fixed validation windows, in order

`ant data prepare` (ant.data.cli) builds everything ahead of time; see sources.py for the corpus recipe and
stream.py for corpora larger than memory (hf:...). The cache is data.cache_dir, else $ANT_CACHE, else
$XDG_CACHE_HOME/ant (~/.cache/ant): cache_dir_of.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ant.data.tokens import TokenData, cache_dir_of, load_tokens, split_documents, tokenizer_vocab_size

if TYPE_CHECKING:
    from ant.data.sampler import TrainSampler, ValBatches, val_batches

# The sampler makes torch tensors; importing torch costs ~1 s, which the planner, `ant data` and `ant sweep
# --dry-run` never need. Its names load on first use (PEP 562), so `import ant.data` imports no torch.
_LAZY = {"TrainSampler": "ant.data.sampler", "ValBatches": "ant.data.sampler", "val_batches": "ant.data.sampler"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'ant.data' has no attribute {name!r}")


__all__ = [
    "TokenData",
    "TrainSampler",
    "ValBatches",
    "cache_dir_of",
    "load_tokens",
    "split_documents",
    "tokenizer_vocab_size",
    "val_batches",
]
