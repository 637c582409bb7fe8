"""Tokenizers: exact round trips, the document separator, and GPT-2 ids that match the published vocabulary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ant.config import DataConfig
from ant.data import cache_dir_of
from ant.data.tokenizers import EOT, BPETokenizer, ByteTokenizer, GPT2Tokenizer, gpt2_vocab_file

SAMPLES = [
    "Hello world",
    "  leading spaces, trailing spaces  \n\n\ttabs\r\nand CRLF",
    "Unicode: naïve café, “quotes” — em dash, 東京, emoji 😀, combining é",
    "Numbers 3.14159 and 1,000,000; code `x = f(y)[0]` <tag/> & entities &amp;",
    "",
]


def test_bytes_round_trip_and_separator():
    tok = ByteTokenizer()
    for s in SAMPLES:
        ids = tok.encode(s)
        assert tok.decode(ids) == s
        assert tok.eot_id not in ids  # 0xFF is never a UTF-8 byte
        assert np.array_equal(tok.encode_batch([s])[0], ids)
    assert tok.decode([*tok.encode("a"), tok.eot_id, *tok.encode("b")]) == f"a{EOT}b"


@pytest.fixture(scope="module")
def bpe(tmp_path_factory, english_docs) -> BPETokenizer:
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.json"
    BPETokenizer.train(iter(english_docs), 1000, path)
    return BPETokenizer(path, 1000)


def test_bpe_round_trip_vocab_and_compression(bpe, english_docs):
    assert bpe.eot_id == 0 and bpe.learned_vocab_size == 1000
    for s in [*SAMPLES, english_docs[3]]:
        ids = bpe.encode(s)
        assert bpe.decode(ids) == s
        assert all(0 < i < 1000 for i in ids)  # never the separator, always inside the vocabulary
    n_bytes = sum(len(d.encode()) for d in english_docs)
    assert sum(len(ids) for ids in bpe.encode_batch(english_docs)) < n_bytes / 2  # it learned English merges
    batch = bpe.encode_batch(english_docs[:3])
    assert [b.tolist() for b in batch] == [bpe.encode(d) for d in english_docs[:3]]


def test_bpe_training_is_deterministic(tmp_path, english_docs, bpe):
    path = tmp_path / "again.json"
    BPETokenizer.train(iter(english_docs), 1000, path)
    assert path.read_bytes() == Path(bpe.path).read_bytes()


@pytest.fixture(scope="module")
def repo_cache() -> Path:
    """The repo cache, where `make data` put the GPT-2 rank file and its sdist: these tests need no network."""
    return Path(cache_dir_of(DataConfig()))


@pytest.fixture(scope="module")
def gpt2(repo_cache) -> GPT2Tokenizer:
    return GPT2Tokenizer(gpt2_vocab_file(repo_cache, progress=False))


def test_gpt2_known_ids(gpt2):
    assert gpt2.encode("Hello world") == [15496, 995]
    assert gpt2.encode("hello world") == [31373, 995]
    assert gpt2.eot_id == 50256 and gpt2.vocab_size == 50257
    # a literal separator string inside a document is text, not the separator
    assert 50256 not in gpt2.encode(f"a {EOT} b")


def test_gpt2_round_trip(gpt2):
    for s in SAMPLES:
        assert gpt2.decode(gpt2.encode(s)) == s
    assert [b.tolist() for b in gpt2.encode_batch(SAMPLES)] == [gpt2.encode(s) for s in SAMPLES]


def test_gpt2_vocab_file_is_verified(repo_cache, tmp_path):
    original = gpt2_vocab_file(repo_cache, progress=False).read_bytes()
    cache = tmp_path / "cache"
    (cache / "tokenizers").mkdir(parents=True)
    (cache / "downloads").symlink_to((repo_cache / "downloads").resolve())  # the sdist is there: no network
    (cache / "tokenizers" / "gpt2.tiktoken").write_bytes(original[:-10])  # damaged: replaced, not trusted
    assert gpt2_vocab_file(cache, progress=False).read_bytes() == original
