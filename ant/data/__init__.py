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

from ant.data.sampler import TrainSampler, ValBatches, val_batches
from ant.data.tokens import TokenData, cache_dir_of, load_tokens, split_documents, tokenizer_vocab_size

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
