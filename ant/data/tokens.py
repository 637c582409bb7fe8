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

Streamed corpora (hf:...) are built by ant.data.stream instead; the sampler is in ant.data.sampler.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ant.config import DataConfig
from ant.data import cache as token_cache
from ant.data.corpus import Corpus
from ant.data.fetch import cache_lock, log, sha256_file
from ant.data.sources import default_corpus_dir, invalid_utf8_bytes, open_corpus
from ant.data.stream import VAL_EVERY, build_streamed, encode_chunks, progress_bar
from ant.data.tokenizers import (
    GPT2_VOCAB,
    TOKENIZERS,
    BPETokenizer,
    ByteTokenizer,
    GPT2Tokenizer,
    HFTokenizer,
    bpe_path,
    gpt2_vocab_file,
    hf_tokenizer_file,
    hf_vocab_size,
    is_hf,
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
    tokenizer: Any  # ByteTokenizer | BPETokenizer | GPT2Tokenizer | HFTokenizer
    unigram_entropy: float  # nats/token of the training split's unigram distribution
    fingerprint: str  # hash of corpus + split + tokenizer settings: the cache key of these files
    path: Path
    meta: dict = field(default_factory=dict)
    # sha256 over the recorded hashes of train.bin and val.bin: the bytes a run trains on (None: an older cache)
    content_sha256: str | None = None


def cache_dir_of(cfg: DataConfig) -> Path:
    """Where `cfg`'s corpora, tokenizers and token files live: data.cache_dir when set, else $ANT_CACHE, else the
    XDG user cache ($XDG_CACHE_HOME/ant, by default ~/.cache/ant). A per-user default rather than one per
    checkout, so that two checkouts (or a pip-installed `ant`) share one built corpus; `make` and the tests use
    the same default, and .ci/run points ANT_CACHE at the fresh clone's .cache/ant to build everything anew."""
    if cfg.cache_dir:
        return Path(cfg.cache_dir)
    if os.environ.get("ANT_CACHE"):
        return Path(os.environ["ANT_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    # the XDG spec: a relative $XDG_CACHE_HOME is invalid and must be ignored
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "ant"


def tokenizer_vocab_size(cfg: DataConfig) -> int:
    """Every id is below this. Builds nothing; an hf: tokenizer's file is read (and fetched once if a Hub name)."""
    _check(cfg)
    if is_hf(cfg.tokenizer):
        return hf_vocab_size(hf_tokenizer_file(cfg.tokenizer, cache_dir_of(cfg), progress=False))
    return {"bytes": 256, "bpe": cfg.bpe_vocab_size, "gpt2": GPT2_VOCAB}[cfg.tokenizer]


def _check(cfg: DataConfig) -> None:
    if not is_hf(cfg.tokenizer):
        check_choice("data.tokenizer", cfg.tokenizer, [*TOKENIZERS, "hf:NAME_OR_PATH"])
    streamed = isinstance(cfg.corpus, str) and cfg.corpus.startswith("hf:")
    if streamed and cfg.tokenizer == "bpe":  # the BPE is trained on the whole training split: no whole here
        msg = "bpe is trained on the whole corpus, which a streamed hf: corpus never is"
        raise ConfigError("data.tokenizer", msg, "bytes, gpt2 or hf:NAME_OR_PATH with an hf: corpus")
    if cfg.max_tokens is not None:
        if isinstance(cfg.max_tokens, bool) or not isinstance(cfg.max_tokens, int) or cfg.max_tokens < 1:
            raise ConfigError("data.max_tokens", f"must be an integer >= 1 or null, got {cfg.max_tokens!r}")
        if not streamed:
            msg = f"cuts a streamed corpus; {cfg.corpus!r} is read whole"
            raise ConfigError("data.max_tokens", msg, "null, or an hf: corpus")
    if isinstance(cfg.num_proc, bool) or not isinstance(cfg.num_proc, int) or not 1 <= cfg.num_proc <= 1024:
        raise ConfigError("data.num_proc", f"must be an integer in [1, 1024], got {cfg.num_proc!r}")
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
            if not (root / "meta.json").exists() and corpus.streamed:
                tok = _tokenizer(cfg, cache, split_key, progress)
                build_streamed(cfg, corpus, tok, tokenizer_vocab_size(cfg), fingerprint, root, progress)
            elif not (root / "meta.json").exists():
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
    """(split key, fingerprint): what the document split and the token files of `cfg` depend on. An hf:
    tokenizer counts by its tokenizer.json's sha256 (not its name or path); a streamed corpus's files also
    depend on max_tokens and the stream split rule (ant.data.stream)."""
    if not corpus.streamed:
        split_key = _hash(corpus.fingerprint, SPLIT_SEED, cfg.val_tokens, FORMAT_VERSION)
    else:
        split_key = _hash(corpus.fingerprint, "stream", VAL_EVERY, cfg.val_tokens, FORMAT_VERSION)
    if is_hf(cfg.tokenizer):
        tok_key: tuple = ("hf", sha256_file(hf_tokenizer_file(cfg.tokenizer, cache_dir_of(cfg), progress=False)))
    else:  # exactly the key of the caches built before hf: tokenizers existed
        tok_key = (cfg.tokenizer, cfg.bpe_vocab_size if cfg.tokenizer == "bpe" else None)
    extra = (cfg.max_tokens,) if corpus.streamed else ()
    return split_key, _hash(split_key, *tok_key, *extra)


def token_dir(cache: Path, tokenizer: str, fingerprint: str) -> Path:
    return cache / "tokens" / f"{'hf' if is_hf(tokenizer) else tokenizer}-{fingerprint[:16]}"


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
    if is_hf(cfg.tokenizer):
        return HFTokenizer(hf_tokenizer_file(cfg.tokenizer, cache, progress))
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
    dtype = token_cache.token_dtype(vocab)

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
        bar = progress_bar(progress, total_train_bytes, f"tokenizing ({cfg.tokenizer})")
        # chunks of ENCODE_BATCH documents, tokenised in cfg.num_proc processes, written in corpus order
        chunks = ((sum(len(t.encode("utf-8")) for t in b), b) for b in _batched(train_texts(), ENCODE_BATCH))
        with open(tmp / "train.bin", "wb") as f:
            for nbytes, encoded in encode_chunks(tok, chunks, cfg.num_proc):
                ids = np.concatenate([np.append(x, tok.eot_id) for x in encoded])
                f.write(ids.astype(dtype).tobytes())
                counts += np.bincount(ids, minlength=vocab)[:vocab]
                n_train, n_docs = n_train + len(ids), n_docs + len(encoded)
                bar.update(nbytes)
        bar.close()
        p = counts[counts > 0] / n_train
        meta = {
            "fingerprint": fingerprint,
            "format": FORMAT_VERSION,
            "corpus": corpus.name,
            "corpus_sha256": corpus.fingerprint,
            "tokenizer": cfg.tokenizer,
            "tokenizer_sha256": getattr(tok, "sha256", None),  # hf: tokenizers
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


def _batched(items, n: int):
    it = iter(items)
    while batch := list(itertools.islice(it, n)):
        yield batch
