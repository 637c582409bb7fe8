"""Corpora larger than memory: `corpus: hf:...` read through `datasets` with streaming=True (never downloaded or
held whole), stopped at `data.max_tokens` training tokens, and tokenised in `data.num_proc` processes.

Corpus syntax (`datasets` is the optional extra `hf`: pip install 'ant[hf]'):
- hf:NAME[:CONFIG]    a Hugging Face Hub dataset, split "train", column "text" (needs network):
                      hf:cerebras/SlimPajama-627B, hf:allenai/c4:en
- hf:BUILDER:FILES    local files through one of datasets' packaged builders (BUILDERS), offline: FILES is a
                      comma-separated list of paths or globs, each glob's matches in sorted order:
                      hf:json:/data/part-*.jsonl (one document per line, field "text"), hf:text:/data/*.txt (one
                      document per line), hf:parquet:/data/*.parquet (column "text")

A stream has no length to shuffle by, so its split differs from ant.data.tokens' (which needs every document's
length): document i (in stream order) is held out for validation when i % VAL_EVERY == 0, until the held-out
bytes reach VAL_BYTES_PER_TOKEN x val_tokens; val.bin is those documents in stream order, each followed by the
end-of-text id, cut to val_tokens. Every other document goes to train.bin in stream order, each followed by the
end-of-text id, until train.bin holds exactly max_tokens tokens (the last document is cut there; None: the whole
stream). The held-out documents depend only on the corpus and val_tokens, not on the tokenizer or max_tokens.
Reading stops once both files are full, so a 627B-token corpus is read only as far as the runs need.

Tokenisation (`encode_chunks`) takes documents in chunks of ENCODE_BATCH and returns each chunk's ids in input
order, whatever the number of processes: the token files do not depend on num_proc (tested). The processes are
spawned, not forked: the Rust thread pools of `tokenizers`/tiktoken do not survive a fork. As with any spawned
multiprocessing, a Python script that calls load_tokens with num_proc > 1 needs `if __name__ == "__main__":`.
A Hugging Face tokenizer's encode_batch already uses every core (Rust threads), so processes pay off mostly for
gpt2 (tiktoken, 2 threads) and bytes; on the 2-core machine 21 MB of JSONL took 23.7 s with 1 or 2 processes.

The cache key of a local-file corpus is each file's name, size and modification time (a content hash would
read a corpus larger than memory at every run start); that of a Hub dataset is its name and config (the Hub
gives no content hash without reading it all): a dataset that changes upstream keeps its cached tokens until
`ant data prepare --force`. The token files' sha256 is recorded all the same (a run's data_sha256).
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import itertools
import json
import multiprocessing
import os
import shutil
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ant.config import DataConfig
from ant.data import cache as token_cache
from ant.data.corpus import Corpus
from ant.data.fetch import log
from ant.errors import ConfigError

BUILDERS = ("json", "text", "csv", "parquet")
VAL_EVERY = 20  # every 20th document is held out until validation is full
VAL_BYTES_PER_TOKEN = 8  # as in ant.data.tokens: held-out bytes per validation token, > any tokenizer's ratio
ENCODE_BATCH = 256  # documents per chunk (one encode_batch call, one task of a tokenising process)
WINDOW = 4  # chunks in flight per process: keeps the workers busy while the memory stays bounded


def datasets_module():
    try:
        import datasets
    except ImportError:
        msg = "an hf: corpus needs the `datasets` package, which is not installed: pip install 'ant[hf]'"
        raise ConfigError("data.corpus", msg, "'default', a .txt/.jsonl file or folder") from None
    return datasets


def hf_corpus(corpus: str) -> Corpus:
    """The Corpus that `hf:...` names (see the module docstring). Reads nothing from the stream yet."""
    builder, _, rest = corpus[3:].partition(":")
    if not builder:
        raise ConfigError("data.corpus", f"{corpus!r} names no dataset", "hf:NAME[:CONFIG] or hf:BUILDER:FILES")
    if builder in BUILDERS:
        files = _data_files(corpus, rest)
        h = hashlib.sha256(f"hf:{builder}".encode())
        for f in files:  # name, size and mtime, not content: hashing 100 GB at every run start takes minutes
            st = Path(f).stat()
            h.update(json.dumps([Path(f).name, st.st_size, st.st_mtime_ns]).encode())
        kwargs: dict[str, Any] = {"path": builder, "data_files": files}
        manifest = {"corpus": corpus, "builder": builder, "data_files": files}
    else:
        h = hashlib.sha256(json.dumps(["hf-hub", builder, rest or None]).encode())
        kwargs = {"path": builder, "name": rest or None}
        manifest = {"corpus": corpus, "dataset": builder, "config": rest or None}
    manifest["sha256"] = h.hexdigest()

    def texts() -> Iterator[str]:
        datasets = datasets_module()
        try:
            ds = datasets.load_dataset(**kwargs, split="train", streaming=True)
            records = iter(ds)
            first = next(records, None)
        except ConfigError:
            raise
        except Exception as e:  # no network, unknown name, unreadable files: one line for the user
            raise ConfigError("data.corpus", f"cannot stream {corpus}: {str(e).splitlines()[0][:300]}") from None
        if first is None:
            return
        if not isinstance(first.get("text"), str):
            raise ConfigError("data.corpus", f"{corpus} has no string column 'text'", sorted(first))
        for rec in itertools.chain([first], records):
            text = rec.get("text")
            if isinstance(text, str) and text.strip():
                yield text

    return Corpus(corpus, h.hexdigest(), texts, manifest, streamed=True)


def _data_files(corpus: str, rest: str) -> list[str]:
    if not rest:
        raise ConfigError("data.corpus", f"{corpus} names no files", "hf:json:/path/*.jsonl")
    files: list[str] = []
    for pattern in rest.split(","):
        matches = sorted(p for p in glob.glob(os.path.expanduser(pattern)) if Path(p).is_file())
        if not matches:
            raise ConfigError("data.corpus", f"{corpus}: {pattern!r} matches no file")
        files += [str(Path(p).resolve()) for p in matches]
    return files


# ---------------------------------------------------------------------- tokenising processes
_WORKER_TOKENIZER: Any = None


def _init_worker(tokenizer: Any) -> None:
    global _WORKER_TOKENIZER
    _WORKER_TOKENIZER = tokenizer


def _encode(texts: list[str]) -> list[np.ndarray]:
    return _WORKER_TOKENIZER.encode_batch(texts)


def encode_chunks(tokenizer: Any, chunks: Iterable[tuple[Any, list[str]]], num_proc: int) -> Iterator[tuple]:
    """(tag, encode_batch(texts)) for each (tag, texts) of `chunks`, in input order: in this process for
    num_proc 1, else in num_proc spawned processes with at most WINDOW x num_proc chunks in flight (the input
    may be an endless stream). Closing the generator early stops the processes; a process that dies (or a
    tokenizer that cannot load there) raises BrokenProcessPool instead of hanging."""
    if num_proc > 1 and multiprocessing.current_process().daemon:
        num_proc = 1  # a daemonic process (a multiprocessing.Pool worker) may not start children; same files
    if num_proc <= 1:
        for tag, texts in chunks:
            yield tag, tokenizer.encode_batch(texts)
        return
    # one Rust thread per process: the processes are the parallelism (inherited by the spawned children)
    for var in ("RAYON_NUM_THREADS", "RAYON_RS_NUM_CPUS"):
        os.environ.setdefault(var, "1")
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(num_proc, mp_context=ctx, initializer=_init_worker, initargs=(tokenizer,))
    try:
        pending: deque = deque()
        for tag, texts in chunks:
            pending.append((tag, pool.submit(_encode, texts)))
            if len(pending) >= WINDOW * num_proc:
                tag0, future = pending.popleft()
                yield tag0, future.result()
        while pending:
            tag0, future = pending.popleft()
            yield tag0, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


# ---------------------------------------------------------------------- building the token files
@dataclass
class _State:
    train_full: bool = False
    val_bytes: int = 0
    val_docs: int = 0
    documents_read: int = 0
    exhausted: bool = False


def _chunks(corpus: Corpus, val_target: int, state: _State) -> Iterator[tuple[tuple[list, list], list[str]]]:
    """((is_val flags, byte lengths), texts) of ENCODE_BATCH documents. Training documents are no longer sent
    once the consumer has filled train.bin; reading stops when validation is full too."""
    flags: list[bool] = []
    sizes: list[int] = []
    texts: list[str] = []
    for i, text in enumerate(corpus.documents()):
        state.documents_read = i + 1
        size = len(text.encode("utf-8"))
        is_val = i % VAL_EVERY == 0 and state.val_bytes < val_target
        if is_val:
            state.val_bytes += size
            state.val_docs += 1
        elif state.train_full:
            if state.val_bytes >= val_target:
                break
            continue
        flags.append(is_val)
        sizes.append(size)
        texts.append(text)
        if len(texts) == ENCODE_BATCH:
            yield (flags, sizes), texts
            flags, sizes, texts = [], [], []
    else:
        state.exhausted = True
    if texts:
        yield (flags, sizes), texts


def build_streamed(
    cfg: DataConfig, corpus: Corpus, tok: Any, vocab: int, fingerprint: str, root: Path, progress: bool
) -> None:
    """Write train.bin, val.bin and meta.json of a streamed corpus into `root` (see the module docstring)."""
    datasets_module()  # a missing package is a clear error before anything is written
    t0 = time.time()
    dtype = token_cache.token_dtype(vocab)
    cap = cfg.max_tokens
    state = _State()
    tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        counts = np.zeros(vocab, dtype=np.int64)
        val_parts: list[np.ndarray] = []
        n_val = n_train = train_docs = train_bytes = 0
        bar = progress_bar(progress, cap, f"streaming {corpus.name} ({cfg.tokenizer})", unit="tok")
        chunks = _chunks(corpus, VAL_BYTES_PER_TOKEN * cfg.val_tokens, state)
        encoded = encode_chunks(tok, chunks, cfg.num_proc)
        with open(tmp / "train.bin", "wb") as f, contextlib.closing(encoded):
            for (flags, sizes), ids_list in encoded:
                take = []
                for is_val, size, ids in zip(flags, sizes, ids_list):
                    ids = np.append(ids, tok.eot_id)
                    if is_val:
                        if n_val < cfg.val_tokens:
                            val_parts.append(ids)
                            n_val += len(ids)
                    elif not state.train_full:
                        if cap is not None and n_train + len(ids) >= cap:
                            ids, state.train_full = ids[: cap - n_train], True
                        take.append(ids)
                        n_train, train_docs, train_bytes = n_train + len(ids), train_docs + 1, train_bytes + size
                if take:
                    ids = np.concatenate(take)
                    f.write(ids.astype(dtype).tobytes())
                    counts += np.bincount(ids, minlength=vocab)[:vocab]
                    bar.update(len(ids))
        bar.close()
        if n_val < cfg.val_tokens:
            msg = f"the held-out documents of {corpus.name} hold only {n_val} {cfg.tokenizer} tokens"
            raise ConfigError("data.val_tokens", msg, f"<= {n_val}")
        if n_train == 0:
            raise ConfigError("data.corpus", f"{corpus.name} holds no training text after the validation documents")
        if cap is not None and n_train < cap:
            log(progress, f"WARNING: {corpus.name} ended at {n_train:,} training tokens, before max_tokens {cap:,}")
        np.concatenate(val_parts)[: cfg.val_tokens].astype(dtype).tofile(tmp / "val.bin")
        p = counts[counts > 0] / n_train
        meta = {
            "fingerprint": fingerprint,
            "format": "stream-1",
            "corpus": corpus.name,
            "corpus_sha256": corpus.fingerprint,
            "tokenizer": cfg.tokenizer,
            "tokenizer_sha256": getattr(tok, "sha256", None),
            "vocab_size": vocab,
            "learned_vocab_size": getattr(tok, "learned_vocab_size", vocab),
            "dtype": dtype.name,
            "train_tokens": n_train,
            "val_tokens": cfg.val_tokens,
            "train_documents": train_docs,
            "val_documents": state.val_docs,
            "train_bytes": train_bytes,
            "val_bytes_held_out": state.val_bytes,
            "split": f"stream: document i held out when i % {VAL_EVERY} == 0 until validation is full",
            "max_tokens": cap,
            "stream_exhausted": state.exhausted,
            "documents_read": state.documents_read,
            "unigram_entropy": float(-(p * np.log(p)).sum()),
            "bytes_per_token": train_bytes / n_train,
            "build_seconds": round(time.time() - t0, 1),
            "num_proc": cfg.num_proc,
            "non_utf8_bytes": 0,
            "sha256": token_cache.file_hashes(tmp),
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp, root)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(progress, f"{n_train:,} train / {cfg.val_tokens:,} val tokens ({cfg.tokenizer}) streamed in "
                  f"{time.time() - t0:.1f} s with {cfg.num_proc} process(es) -> {root}")  # fmt: skip


def progress_bar(progress: bool, total: int | None, desc: str, unit: str = "B"):
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=f"[ant data] {desc}",
        unit=unit,
        unit_scale=True,
        disable=not progress,
        file=sys.stderr,
        mininterval=1.0,
    )
