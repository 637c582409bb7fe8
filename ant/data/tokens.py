"""Token files, the fixed validation set and the deterministic, resumable training sampler.

load_tokens(cfg) = corpus (ant.data.sources) -> document split -> tokenizer -> two memory-mapped files:

- Split by document with a fixed seed (SPLIT_SEED, not the run's seed): documents are shuffled once and the first
  ones, up to ~8 bytes per validation token (capped at half the corpus), are held out. The held-out bytes depend
  only on the corpus and val_tokens, never on the tokenizer, so the BPE is trained on a split that does not
  move. `val.bin` is the held-out documents in that shuffled order, joined by the tokenizer's end-of-text id
  and cut to exactly val_tokens tokens: the same validation set for every run on a corpus + tokenizer.
- `train.bin` is every other document in corpus order, each followed by end-of-text. uint16 when ids fit.
- Everything lands in a temp folder that is renamed into place at the end, so a crash leaves nothing half-written
  and parallel workers (which take the cache lock) find either nothing or the finished files.

TrainSampler cuts train.bin into non-overlapping windows of seq_len + 1 tokens and visits them in a fresh
permutation per epoch, drawn from (seed, epoch). batch(step) therefore depends on (seed, step) only: a resumed
run continues exactly without saving sampler state.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ant.config import DataConfig
from ant.data import cache as token_cache
from ant.data.fetch import cache_lock, log
from ant.data.sources import Corpus, default_corpus_dir, invalid_utf8_bytes, open_corpus
from ant.data.tokenizers import (
    GPT2_VOCAB,
    TOKENIZERS,
    BPETokenizer,
    ByteTokenizer,
    GPT2Tokenizer,
    bpe_path,
    gpt2_vocab_file,
)
from ant.errors import ConfigError, check_choice

FORMAT_VERSION = 1  # bump when the token file layout or the split rule changes
SPLIT_SEED = 1234
VAL_BYTES_PER_TOKEN = 8  # held-out bytes per validation token: > any tokenizer's bytes/token on English text
ENCODE_BATCH = 256  # documents per encode_batch call


@dataclass
class TokenData:
    train: np.ndarray  # 1-D memmap of token ids, the training split
    val: np.ndarray  # 1-D memmap, exactly val_tokens ids
    vocab_size: int  # every id is below this (= tokenizer_vocab_size(cfg))
    tokenizer: Any  # ByteTokenizer | BPETokenizer | GPT2Tokenizer
    unigram_entropy: float  # nats/token of the training split's unigram distribution
    fingerprint: str  # hash of corpus + split + tokenizer settings: the cache key of these files
    path: Path
    meta: dict = field(default_factory=dict)
    # sha256 over the recorded hashes of train.bin and val.bin: the bytes a run trains on (None: an older cache)
    content_sha256: str | None = None


def cache_dir_of(cfg: DataConfig) -> Path:
    """Where `cfg`'s corpora, tokenizers and token files live: data.cache_dir when set, else $ANT_CACHE, else the
    XDG user cache ($XDG_CACHE_HOME/ant, by default ~/.cache/ant). A per-user default rather than one per
    checkout, so that two checkouts (or a pip-installed `ant`) share one built corpus; the Makefile and the tests
    point ANT_CACHE at the checkout's .cache/ant to stay self-contained."""
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    if os.environ.get("ANT_CACHE"):
        return Path(os.environ["ANT_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    # the XDG spec: a relative $XDG_CACHE_HOME is invalid and must be ignored
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "ant"


def tokenizer_vocab_size(cfg: DataConfig) -> int:
    _check(cfg)
    return {"bytes": 256, "bpe": cfg.bpe_vocab_size, "gpt2": GPT2_VOCAB}[cfg.tokenizer]


def _check(cfg: DataConfig) -> None:
    check_choice("data.tokenizer", cfg.tokenizer, TOKENIZERS)
    if cfg.tokenizer == "bpe" and not (isinstance(cfg.bpe_vocab_size, int) and 257 <= cfg.bpe_vocab_size <= 2**20):
        raise ConfigError("data.bpe_vocab_size", f"must be an integer in [257, 1048576], got {cfg.bpe_vocab_size!r}")
    if not isinstance(cfg.val_tokens, int) or cfg.val_tokens < 2:
        raise ConfigError("data.val_tokens", f"must be an integer >= 2, got {cfg.val_tokens!r}")


def load_tokens(cfg: DataConfig, progress: bool = True, *, force: bool = False) -> TokenData:
    """Build (or reuse from the cache) corpus, tokenizer and token files for `cfg`. A cached folder is checked on
    every open (ant.data.cache: sizes, ids < vocab); `force` rebuilds the token files (and a default corpus
    whose documents no longer match their manifest) instead."""
    _check(cfg)
    cache = cache_dir_of(cfg)
    if force and cfg.corpus == "default" and (default_corpus_dir(cache) / "manifest.json").exists():
        try:
            token_cache.verify_corpus(default_corpus_dir(cache), cfg)
        except token_cache.CacheCorruptError:
            with cache_lock(cache):
                token_cache.discard(default_corpus_dir(cache))
    corpus = open_corpus(cfg.corpus, cache, progress)
    split_key, fingerprint = cache_keys(cfg, corpus)
    root = token_dir(cache, cfg.tokenizer, fingerprint)
    if force and root.exists():
        with cache_lock(cache):
            token_cache.discard(root)
    if not (root / "meta.json").exists():
        with cache_lock(cache):
            if not (root / "meta.json").exists():
                _build(cfg, corpus, cache, split_key, fingerprint, root, progress)
    meta = token_cache.read_meta(root, cfg)
    arrays = token_cache.open_token_files(root, meta, cfg)
    return TokenData(
        train=arrays["train.bin"],
        val=arrays["val.bin"],
        vocab_size=meta["vocab_size"],
        tokenizer=_tokenizer(cfg, cache, split_key, progress),
        unigram_entropy=meta["unigram_entropy"],
        fingerprint=fingerprint,
        path=root,
        meta=meta,
        content_sha256=token_cache.content_sha256(meta),
    )


def cache_keys(cfg: DataConfig, corpus: Corpus) -> tuple[str, str]:
    """(split key, fingerprint): what the document split and the token files of `cfg` depend on."""
    split_key = _hash(corpus.fingerprint, SPLIT_SEED, cfg.val_tokens, FORMAT_VERSION)
    return split_key, _hash(split_key, cfg.tokenizer, cfg.bpe_vocab_size if cfg.tokenizer == "bpe" else None)


def token_dir(cache: Path, tokenizer: str, fingerprint: str) -> Path:
    return cache / "tokens" / f"{tokenizer}-{fingerprint[:16]}"


def _hash(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()


def split_documents(lengths: np.ndarray, val_tokens: int) -> np.ndarray:
    """Indices of the held-out documents, in validation order. Depends on (lengths, val_tokens) only."""
    n = len(lengths)
    if n < 2:
        raise ConfigError("data.corpus", f"needs at least 2 documents to hold some out for validation, got {n}")
    perm = np.random.default_rng(SPLIT_SEED).permutation(n)
    target = min(val_tokens * VAL_BYTES_PER_TOKEN, 0.5 * float(lengths.sum()))
    k = int(np.searchsorted(np.cumsum(lengths[perm]), target)) + 1
    return perm[: min(max(k, 1), n - 1)]


def _tokenizer(cfg: DataConfig, cache: Path, split_key: str, progress: bool, train_texts=None):
    if cfg.tokenizer == "bytes":
        return ByteTokenizer()
    if cfg.tokenizer == "gpt2":
        return GPT2Tokenizer(gpt2_vocab_file(cache, progress))
    path = bpe_path(cache, split_key, cfg.bpe_vocab_size)
    if not path.exists():
        if train_texts is None:
            raise RuntimeError(f"BPE tokenizer missing from the cache: {path}")
        t0 = time.time()
        log(progress, f"training byte-level BPE, vocab {cfg.bpe_vocab_size}, on the training split")
        BPETokenizer.train(train_texts(), cfg.bpe_vocab_size, path)
        log(progress, f"BPE trained in {time.time() - t0:.1f} s -> {path}")
    return BPETokenizer(path, cfg.bpe_vocab_size)


def _build(
    cfg: DataConfig, corpus: Corpus, cache: Path, split_key: str, fingerprint: str, root: Path, progress: bool
) -> None:
    t0 = time.time()
    bad_bytes = invalid_utf8_bytes(corpus)
    if bad_bytes:  # replaced by U+FFFD, as before; a user should know how much of the text that touched
        print(f"[ant data] WARNING: {corpus.name}: {bad_bytes:,} bytes are not UTF-8 and were replaced by U+FFFD",
              file=sys.stderr, flush=True)  # fmt: skip
    lengths = np.fromiter((len(t.encode("utf-8")) for t in corpus.documents()), dtype=np.int64)
    if lengths.sum() == 0:
        raise ConfigError("data.corpus", f"{corpus.name} holds no text")
    val_order = split_documents(lengths, cfg.val_tokens)
    is_val = np.zeros(len(lengths), dtype=bool)
    is_val[val_order] = True

    def train_texts():
        return (t for i, t in enumerate(corpus.documents()) if not is_val[i])

    tok = _tokenizer(cfg, cache, split_key, progress, train_texts)
    vocab = tokenizer_vocab_size(cfg)
    dtype = np.dtype(np.uint16 if vocab <= 2**16 else np.uint32)

    # Validation first: a corpus too small for val_tokens fails before the long pass over the training split.
    val_docs = {i: t for i, t in enumerate(corpus.documents()) if is_val[i]}
    val_ids = [np.append(ids, tok.eot_id) for ids in tok.encode_batch([val_docs[i] for i in val_order])]
    val = np.concatenate(val_ids)
    if len(val) < cfg.val_tokens:
        raise ConfigError(
            "data.val_tokens",
            f"the held-out documents of {corpus.name} hold only {len(val)} {cfg.tokenizer} tokens",
            f"<= {len(val)}",
        )
    tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        val[: cfg.val_tokens].astype(dtype).tofile(tmp / "val.bin")
        counts = np.zeros(vocab, dtype=np.int64)
        n_train, n_docs = 0, 0
        total_train_bytes = int(lengths[~is_val].sum())
        bar = _progress_bar(progress, total_train_bytes, f"tokenizing ({cfg.tokenizer})")
        with open(tmp / "train.bin", "wb") as f:
            batch: list[str] = []
            for text in itertools.chain(train_texts(), [None]):  # None flushes the last batch
                if text is not None:
                    batch.append(text)
                if batch and (text is None or len(batch) == ENCODE_BATCH):
                    ids = np.concatenate([np.append(x, tok.eot_id) for x in tok.encode_batch(batch)])
                    f.write(ids.astype(dtype).tobytes())
                    counts += np.bincount(ids, minlength=vocab)[:vocab]
                    n_train, n_docs = n_train + len(ids), n_docs + len(batch)
                    nbytes = sum(len(t.encode("utf-8")) for t in batch)
                    bar.update(nbytes)
                    batch = []
        bar.close()
        p = counts[counts > 0] / n_train
        meta = {
            "fingerprint": fingerprint,
            "format": FORMAT_VERSION,
            "corpus": corpus.name,
            "corpus_sha256": corpus.fingerprint,
            "tokenizer": cfg.tokenizer,
            "vocab_size": vocab,
            "learned_vocab_size": getattr(tok, "learned_vocab_size", vocab),
            "dtype": dtype.name,
            "train_tokens": n_train,
            "val_tokens": cfg.val_tokens,
            "train_documents": n_docs,
            "val_documents": len(val_order),
            "train_bytes": total_train_bytes,
            "val_bytes_held_out": int(lengths[val_order].sum()),
            "split_seed": SPLIT_SEED,
            "unigram_entropy": float(-(p * np.log(p)).sum()),
            "bytes_per_token": total_train_bytes / n_train,
            "build_seconds": round(time.time() - t0, 1),
            "non_utf8_bytes": bad_bytes,
            "sha256": token_cache.file_hashes(tmp),  # checked by `ant data verify`
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(
        progress,
        f"{n_train:,} train / {cfg.val_tokens:,} val tokens ({cfg.tokenizer}) in {time.time() - t0:.1f} s -> {root}",
    )


def _progress_bar(progress: bool, total: int, desc: str):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=f"[ant data] {desc}",
        unit="B",
        unit_scale=True,
        disable=not progress,
        file=sys.stderr,
        mininterval=1.0,
    )


# ---------------------------------------------------------------------- sampling
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

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        k = int(step) * self.batch_size + np.arange(self.batch_size)
        epochs, pos = np.divmod(k, self.num_sequences)
        windows = np.empty(self.batch_size, dtype=np.int64)
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
