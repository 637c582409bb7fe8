"""Token files, the document split, the validation set and the sampler, on small corpora of real English."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest

from ant.data import TrainSampler, load_tokens, split_documents, tokenizer_vocab_size, val_batches
from ant.errors import ConfigError

MARKER = re.compile(r"Document (\d{3}) ")


def _markers(data, ids) -> set[int]:
    return {int(m) for m in MARKER.findall(data.tokenizer.decode(ids))}


def test_split_is_by_document_and_the_same_for_every_tokenizer(small_cfg, english_docs):
    lengths = np.array([len(d.encode()) for d in english_docs])
    held_out = split_documents(lengths, small_cfg.val_tokens)
    assert np.array_equal(held_out, split_documents(lengths, small_cfg.val_tokens))  # fixed seed
    assert 0 < len(held_out) < len(english_docs)
    held_ids = {int(MARKER.match(english_docs[i]).group(1)) for i in held_out}
    for tokenizer in ("bytes", "bpe"):
        data = load_tokens(dataclasses.replace(small_cfg, tokenizer=tokenizer, bpe_vocab_size=1024), progress=False)
        train_ids, val_ids = _markers(data, data.train), _markers(data, data.val)
        assert val_ids and val_ids <= held_ids  # validation text comes only from held-out documents
        assert not train_ids & held_ids  # no held-out document is trained on
        assert train_ids | held_ids == {int(MARKER.match(d).group(1)) for d in english_docs}  # nothing lost
        assert data.meta["val_documents"] == len(held_out)
        first = english_docs[held_out[0]]
        assert data.tokenizer.decode(data.val[:200]) == data.tokenizer.decode(data.tokenizer.encode(first)[:200])


def test_token_files_dtype_length_and_content(small_cfg, english_docs):
    data = load_tokens(small_cfg, progress=False)
    assert isinstance(data.train, np.memmap) and isinstance(data.val, np.memmap)
    assert data.train.dtype == np.uint16 and len(data.val) == small_cfg.val_tokens
    held = set(split_documents(np.array([len(d.encode()) for d in english_docs]), small_cfg.val_tokens).tolist())
    train_docs = [d for i, d in enumerate(english_docs) if i not in held]
    # train.bin = every training document in corpus order, each followed by the end-of-text id
    expected = b"".join(d.encode() + b"\xff" for d in train_docs)
    assert bytes(np.asarray(data.train, dtype=np.uint8)) == expected
    assert data.vocab_size == 256 == tokenizer_vocab_size(small_cfg)


def test_large_vocab_uses_uint32(small_cfg):
    cfg = dataclasses.replace(small_cfg, tokenizer="bpe", bpe_vocab_size=70_000)
    data = load_tokens(cfg, progress=False)
    assert data.train.dtype == np.uint32 and data.vocab_size == 70_000 == tokenizer_vocab_size(cfg)
    # the small corpus supports fewer merges than asked; every id is still below the configured size
    assert data.meta["learned_vocab_size"] < 70_000 and int(data.train.max()) < data.meta["learned_vocab_size"]


def test_unigram_entropy_and_cache_reuse(small_cfg):
    data = load_tokens(small_cfg, progress=False)
    p = np.bincount(np.asarray(data.train), minlength=256) / len(data.train)
    p = p[p > 0]
    assert data.unigram_entropy == pytest.approx(float(-(p * np.log(p)).sum()), rel=1e-9)
    mtime = (data.path / "train.bin").stat().st_mtime_ns
    again = load_tokens(small_cfg, progress=False)
    assert again.path == data.path and again.fingerprint == data.fingerprint
    assert (again.path / "train.bin").stat().st_mtime_ns == mtime  # reused, not rebuilt
    assert not list(data.path.parent.glob("*.tmp-*"))  # no half-written folders left behind
    other = load_tokens(dataclasses.replace(small_cfg, val_tokens=5000), progress=False)
    assert other.fingerprint != data.fingerprint


@pytest.mark.parametrize("kind", ["txt", "folder", "jsonl"])
def test_user_inputs(kind, corpus_files, small_cfg, english_docs):
    data = load_tokens(dataclasses.replace(small_cfg, corpus=str(corpus_files[kind])), progress=False)
    seen = _markers(data, data.train) | _markers(data, data.val)
    assert len(seen) > 0.8 * len(english_docs)
    n_docs = data.meta["train_documents"] + data.meta["val_documents"]
    # jsonl lines are documents; a .txt file (one per file in a folder) is cut into ~32 KB documents
    if kind == "jsonl":
        assert n_docs == len(english_docs)
    elif kind == "folder":
        assert n_docs >= len(english_docs)
    else:
        assert 10 <= n_docs < len(english_docs)


def test_sampler_is_a_pure_function_of_seed_and_step(small_cfg):
    data = load_tokens(small_cfg, progress=False)
    a, b = TrainSampler(data, 64, 8, seed=3), TrainSampler(data, 64, 8, seed=3)
    steps = [0, 5, 123, 7, 5, 10_000]
    xs = {s: a.batch(s) for s in steps}
    for s in reversed(steps):  # any order, a fresh sampler: same batch
        x, y = b.batch(s)
        assert x.dtype == y.dtype == __import__("torch").int64 and x.shape == (8, 64)
        assert (x == xs[s][0]).all() and (y == xs[s][1]).all()
        assert (x[:, 1:] == y[:, :-1]).all()  # y is x shifted by one token
    assert not (TrainSampler(data, 64, 8, seed=4).batch(0)[0] == xs[0][0]).all()


def test_sampler_covers_non_overlapping_windows_once_per_epoch():
    tokens = np.arange(1001, dtype=np.uint16)  # token value = position: a window is known by its first token
    s = TrainSampler(tokens, seq_len=10, batch_size=7, seed=0)
    assert s.num_sequences == 100
    starts = np.concatenate([s.batch(step)[0][:, 0].numpy() for step in range(30)])  # 210 sequences
    for epoch in range(2):
        seen = starts[epoch * 100 : (epoch + 1) * 100]
        assert sorted(seen.tolist()) == list(range(0, 1000, 10))  # every window exactly once
    assert not np.array_equal(starts[:100], starts[100:200])  # a fresh order each epoch
    x, y = s.batch(0)
    assert (y - x == 1).all()


def test_val_batches_fixed_and_in_order(small_cfg):
    data = load_tokens(small_cfg, progress=False)
    first = list(val_batches(data, 64, 10))
    vb = val_batches(load_tokens(small_cfg, progress=False), 64, 10)
    second = list(vb)
    assert len(first) == len(vb) == -(-((small_cfg.val_tokens - 1) // 64) // 10)
    assert all((a[0] == b[0]).all() and (a[1] == b[1]).all() for a, b in zip(first, second))
    xs = np.concatenate([x.numpy().reshape(-1) for x, _ in first])
    assert np.array_equal(xs, np.asarray(data.val[: len(xs)], dtype=np.int64))  # contiguous windows, in order


def _no_tokens_written(cache: str, before: set) -> bool:
    from pathlib import Path

    return set((Path(cache) / "tokens").glob("*")) == before


@pytest.mark.parametrize(
    ("make", "field", "text"),
    [
        (lambda d: d / "missing.txt", "data.corpus", "no such file"),
        (lambda d: (d / "empty.txt").write_text("  \n\n ") and d / "empty.txt", "data.corpus", "no text"),
        (
            lambda d: (d / "x.jsonl").write_text(json.dumps({"body": "hi"}) + "\n") and d / "x.jsonl",
            "data.corpus",
            "'text'",
        ),
        (lambda d: (d / "y.jsonl").write_text("{not json\n") and d / "y.jsonl", "data.corpus", "not valid JSON"),
        (
            lambda d: (d / "sub").mkdir() or (d / "sub" / "a.csv").write_text("x") and d / "sub",
            "data.corpus",
            "no .txt",
        ),
        (
            lambda d: (d / "one.jsonl").write_text(json.dumps({"text": "only one"}) + "\n") and d / "one.jsonl",
            "data.corpus",
            "at least 2 documents",
        ),
    ],
)
def test_bad_corpus(make, field, text, tmp_path, small_cfg):
    from pathlib import Path

    before = set((Path(small_cfg.cache_dir) / "tokens").glob("*"))
    cfg = dataclasses.replace(small_cfg, corpus=str(make(tmp_path)))
    with pytest.raises(ConfigError, match=re.escape(text)) as e:
        load_tokens(cfg, progress=False)
    assert e.value.field == field
    assert _no_tokens_written(small_cfg.cache_dir, before)


def test_bad_settings(small_cfg):
    with pytest.raises(ConfigError, match="allowed: bytes, bpe, gpt2") as e:
        load_tokens(dataclasses.replace(small_cfg, tokenizer="sentencepiece"), progress=False)
    assert e.value.field == "data.tokenizer"
    with pytest.raises(ConfigError) as e:
        tokenizer_vocab_size(dataclasses.replace(small_cfg, tokenizer="bpe", bpe_vocab_size=100))
    assert e.value.field == "data.bpe_vocab_size"
    with pytest.raises(ConfigError, match="hold only") as e:
        load_tokens(dataclasses.replace(small_cfg, val_tokens=10**6), progress=False)
    assert e.value.field == "data.val_tokens"
    data = load_tokens(small_cfg, progress=False)
    with pytest.raises(ConfigError) as e:
        TrainSampler(data, 128, 10**6, seed=0)
    assert e.value.field == "train.batch_size" and str(TrainSampler(data, 128, 1, 0).num_sequences) in str(e.value)
