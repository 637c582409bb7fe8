"""Checks of a built token cache: sizes and ids on every open, sha256 hashes when asked (`ant data verify`).

A token folder (ant.data.tokens) is trusted only as far as it is checked. Every `load_tokens` compares each
file's size with the token count meta.json records and scans the ids against the vocabulary (a few ms for the
default corpus): a truncated `train.bin` can no longer train a "completed" run on a fraction of the data, and an
id past the embedding fails here, not as an index error (or a CUDA assert) mid-run. The sha256 of both files,
recorded at build time, is checked by `verify`, together with the default corpus's documents.jsonl against its
manifest. Every failure is a CacheCorruptError naming the folder and the command that rebuilds it.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ant.config import DataConfig
from ant.data.fetch import sha256_file
from ant.errors import FaultError

FILES = ("train.bin", "val.bin")
META_KEYS = ("dtype", "vocab_size", "train_tokens", "val_tokens", "unigram_entropy")


def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 while every id fits (vocab <= 65,536: every cache built before uint32 existed), else uint32."""
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


class CacheCorruptError(FaultError):
    """A token or corpus cache that does not hold what its meta.json / manifest.json says (exit code 1)."""

    def __init__(self, what: Path, reason: str, cfg: DataConfig, kind: str = "token cache"):
        self.path, self.reason = Path(what), reason
        super().__init__(f"{kind} {what} is corrupt ({reason}): run `{rebuild_command(cfg)}`")


def rebuild_command(cfg: DataConfig) -> str:
    """The `ant data prepare --force` line that rebuilds the cache of `cfg` (only the settings that differ from
    the defaults, so the line stays short and still names the same cache)."""
    d, args = DataConfig(), ["ant", "data", "prepare", "--force"]
    for name in ("corpus", "tokenizer", "bpe_vocab_size", "val_tokens", "max_tokens", "cache_dir"):
        if name == "bpe_vocab_size" and cfg.tokenizer != "bpe":
            continue
        if getattr(cfg, name) != getattr(d, name):
            args += [f"--{name.replace('_', '-')}", str(getattr(cfg, name))]
    return " ".join(shlex.quote(a) for a in args)


def read_meta(root: Path, cfg: DataConfig) -> dict[str, Any]:
    try:
        meta = json.loads((root / "meta.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CacheCorruptError(root, f"meta.json unreadable: {type(e).__name__}", cfg) from None
    missing = [k for k in META_KEYS if not isinstance(meta, dict) or k not in meta]
    if missing:
        raise CacheCorruptError(root, f"meta.json lacks {', '.join(missing)}", cfg)
    try:
        dtype = np.dtype(meta["dtype"])
    except TypeError:
        raise CacheCorruptError(root, f"meta.json names no numpy dtype: {meta['dtype']!r}", cfg) from None
    # the files are read as this dtype: a uint16 file of a > 65,536 vocabulary would have lost the high ids
    if not isinstance(meta["vocab_size"], int) or dtype != token_dtype(meta["vocab_size"]):
        want = token_dtype(meta["vocab_size"]).name if isinstance(meta["vocab_size"], int) else "?"
        msg = f"meta.json says dtype {dtype.name} for vocab size {meta['vocab_size']!r} (expected {want})"
        raise CacheCorruptError(root, msg, cfg)
    return meta


def open_token_files(root: Path, meta: dict[str, Any], cfg: DataConfig) -> dict[str, np.ndarray]:
    """The two memmaps, after the cheap checks: each file exists, has the recorded size, holds ids < vocab."""
    dtype = np.dtype(meta["dtype"])
    arrays = {}
    for name, key in zip(FILES, ("train_tokens", "val_tokens")):
        path = root / name
        if not path.is_file():
            raise CacheCorruptError(root, f"{name} is missing", cfg)
        size, want = path.stat().st_size, int(meta[key]) * dtype.itemsize
        if size % dtype.itemsize:
            raise CacheCorruptError(root, f"{name} is {size} bytes, not a whole number of {dtype.name} ids", cfg)
        if size != want:
            got = size // dtype.itemsize
            raise CacheCorruptError(root, f"{name} holds {got} tokens, meta.json says {meta[key]}", cfg)
        arr = np.memmap(path, dtype=dtype, mode="r")
        top = int(arr.max()) if len(arr) else 0
        if top >= int(meta["vocab_size"]):
            raise CacheCorruptError(root, f"{name} holds id {top} >= vocab size {meta['vocab_size']}", cfg)
        arrays[name] = arr
    return arrays


def file_hashes(root: Path) -> dict[str, str]:
    return {name: sha256_file(root / name) for name in FILES}


def content_sha256(meta: dict[str, Any]) -> str | None:
    """One hash of the token files' recorded hashes: the data a run trained on (None for caches built before
    hashes were recorded)."""
    h = meta.get("sha256")
    if not isinstance(h, dict) or any(n not in h for n in FILES):
        return None
    return hashlib.sha256(json.dumps([h[n] for n in FILES]).encode()).hexdigest()


def verify(root: Path, meta: dict[str, Any], cfg: DataConfig, corpus_dir: Path | None = None) -> list[str]:
    """The full check: sizes and ids (as on every open), then the sha256 of both token files against meta.json
    and, for the default corpus, of documents.jsonl against its manifest. Returns the lines to print."""
    lines = []
    if corpus_dir is not None:
        lines.append(verify_corpus(corpus_dir, cfg))
    open_token_files(root, meta, cfg)
    recorded = meta.get("sha256")
    if not isinstance(recorded, dict):
        lines.append(f"ok    {root}: sizes and ids checked; no sha256 recorded (built before hashes were); "
                     f"`{rebuild_command(cfg)}` records them")  # fmt: skip
        return lines
    for name, digest in file_hashes(root).items():
        if recorded.get(name) != digest:
            raise CacheCorruptError(root, f"{name} sha256 {digest[:12]} differs from meta.json's "
                                          f"{str(recorded.get(name))[:12]}", cfg)  # fmt: skip
    lines.append(f"ok    {root}: {meta['train_tokens']:,} + {meta['val_tokens']:,} tokens, sizes, ids and sha256 match")
    return lines


def verify_corpus(corpus_dir: Path, cfg: DataConfig) -> str:
    """documents.jsonl of the default corpus against the sha256 in its manifest.json."""
    try:
        manifest = json.loads((corpus_dir / "manifest.json").read_text())
        want = manifest["sha256"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as e:
        msg = f"manifest.json unreadable: {type(e).__name__}"
        raise CacheCorruptError(corpus_dir, msg, cfg, "corpus cache") from None
    docs = corpus_dir / "documents.jsonl"
    if not docs.is_file():
        raise CacheCorruptError(corpus_dir, "documents.jsonl is missing", cfg, "corpus cache")
    got = sha256_file(docs)
    if got != want:
        msg = f"documents.jsonl sha256 {got[:12]} differs from manifest.json's {str(want)[:12]}"
        raise CacheCorruptError(corpus_dir, msg, cfg, "corpus cache")
    return f"ok    {corpus_dir}: documents.jsonl matches manifest.json ({manifest.get('documents', '?')} documents)"


def discard(path: Path) -> None:
    """Remove a cache folder for a rebuild (`--force`); the rebuild writes a temp folder and renames it."""
    shutil.rmtree(path, ignore_errors=True)
