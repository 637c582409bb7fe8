"""Streamed corpora (`corpus: hf:...`, ant.data.stream) on local JSONL files through `datasets`, offline: the token
cap, the stream split, and token files that do not depend on the number of tokenising processes."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from ant.cli import main
from ant.data import load_tokens, stream
from ant.data.stream import VAL_EVERY
from ant.errors import ConfigError

pytest.importorskip("datasets")  # the dev extra installs it; `pip install ant` alone does not


@pytest.fixture(scope="module")
def parts(tmp_path_factory, english_docs) -> tuple[str, list[str]]:
    """The test corpus as three JSONL files (documents dealt out in turn), and the documents in stream order."""
    root = tmp_path_factory.mktemp("parts")
    for k in range(3):
        lines = [json.dumps({"text": d, "id": i}) for i, d in enumerate(english_docs) if i % 3 == k]
        (root / f"part-{k}.jsonl").write_text("\n".join(lines) + "\n")
    order = [d for k in range(3) for i, d in enumerate(english_docs) if i % 3 == k]
    return f"hf:json:{root}/part-*.jsonl", order


@pytest.fixture(scope="module")
def hf_bpe(tmp_path_factory, english_docs) -> str:
    from ant.data.tokenizers import BPETokenizer

    path = tmp_path_factory.mktemp("stream-bpe") / "tokenizer.json"
    BPETokenizer.train(iter(english_docs), 800, path)
    return f"hf:{path}"


def _cfg(small_cfg, corpus, tmp_path, name, **kw):
    return dataclasses.replace(small_cfg, corpus=corpus, cache_dir=str(tmp_path / name), **kw)


def test_streamed_files_are_the_same_for_one_or_two_processes(parts, hf_bpe, small_cfg, tmp_path):
    corpus, _ = parts
    built = {}
    for n in (1, 2):  # separate caches: num_proc is not part of the cache key, so the second would be reused
        cfg = _cfg(small_cfg, corpus, tmp_path, f"c{n}", tokenizer=hf_bpe, val_tokens=2048, max_tokens=40_000,
                   num_proc=n)  # fmt: skip
        built[n] = load_tokens(cfg, progress=False)
    one, two = built[1], built[2]
    assert len(one.train) == 40_000 and len(one.val) == 2048
    for name in ("train.bin", "val.bin"):
        assert (one.path / name).read_bytes() == (two.path / name).read_bytes()
    assert one.meta["sha256"] == two.meta["sha256"] and one.path.name == two.path.name
    assert two.meta["num_proc"] == 2 and one.meta["train_tokens"] == 40_000


def test_stream_split_and_cap_give_exactly_these_bytes(parts, small_cfg, tmp_path, monkeypatch):
    corpus, order = parts
    monkeypatch.setattr(stream, "ENCODE_BATCH", 4)  # small chunks, so that stopping early is visible here
    cap, val_tokens = 30_000, 256
    data = load_tokens(_cfg(small_cfg, corpus, tmp_path, "c", val_tokens=val_tokens, max_tokens=cap), progress=False)
    # document i of the stream is held out when i % VAL_EVERY == 0 until 8 x val_tokens bytes are held out
    val_idx, held = [], 0
    for i, d in enumerate(order):
        if i % VAL_EVERY == 0 and held < 8 * val_tokens:
            val_idx.append(i)
            held += len(d.encode())
    train = b"".join(d.encode() + b"\xff" for i, d in enumerate(order) if i not in val_idx)
    val = b"".join(order[i].encode() + b"\xff" for i in val_idx)
    assert bytes(np.asarray(data.train, dtype=np.uint8)) == train[:cap]
    assert bytes(np.asarray(data.val, dtype=np.uint8)) == val[:val_tokens]
    assert data.meta["val_documents"] == len(val_idx) and data.meta["max_tokens"] == cap
    # the stream was read only as far as both files needed (and one chunk ahead), not to its end
    assert data.meta["documents_read"] < len(order) / 2 and data.meta["stream_exhausted"] is False
    # the cap is part of the cache key: another cap, other files; no cap: the whole training stream
    whole = load_tokens(_cfg(small_cfg, corpus, tmp_path, "c", val_tokens=val_tokens), progress=False)
    assert whole.path != data.path and bytes(np.asarray(whole.train, dtype=np.uint8)) == train
    assert whole.meta["stream_exhausted"] is True
    assert np.array_equal(whole.val, data.val)  # the held-out documents do not depend on the cap


def test_prepare_cli_streams_with_a_cap(parts, tmp_path, capsys):
    corpus, _ = parts
    argv = ["data", "prepare", "--corpus", corpus, "--tokenizer", "bytes", "--val-tokens", "1024",
            "--max-tokens", "5000", "--num-proc", "1", "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"tokens\s+train 5,000 ", out) and "val 1,024" in out
    assert main(["data", "verify", *argv[2:10], *argv[-2:]]) == 0
    assert "sha256 match" in capsys.readouterr().out


def test_bad_streamed_settings(parts, small_cfg, tmp_path, monkeypatch):
    corpus, _ = parts
    cases = [
        (dict(corpus=corpus, tokenizer="bpe"), "data.tokenizer", "streamed"),
        (dict(max_tokens=1000), "data.max_tokens", "cuts a streamed corpus"),
        (dict(corpus=corpus, max_tokens=0), "data.max_tokens", ">= 1"),
        (dict(corpus=corpus, num_proc=0), "data.num_proc", "[1, 1024]"),
        (dict(corpus=f"hf:json:{tmp_path}/nothing-*.jsonl"), "data.corpus", "matches no file"),
        (dict(corpus="hf:json:"), "data.corpus", "names no files"),
        (dict(corpus=corpus, val_tokens=10**6), "data.val_tokens", "hold only"),
    ]
    for change, field, text in cases:
        with pytest.raises(ConfigError, match=re.escape(text)) as e:
            load_tokens(_cfg(small_cfg, **{"corpus": small_cfg.corpus, **change}, tmp_path=tmp_path, name="bad"),
                        progress=False)  # fmt: skip
        assert e.value.field == field
    no_text = tmp_path / "no_text.jsonl"
    no_text.write_text(json.dumps({"body": "x"}) + "\n")
    with pytest.raises(ConfigError, match="no string column 'text'"):
        load_tokens(_cfg(small_cfg, f"hf:json:{no_text}", tmp_path, "bad"), progress=False)
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if `datasets` were not installed
    with pytest.raises(ConfigError, match=re.escape("pip install 'ant[hf]'")) as e:
        load_tokens(_cfg(small_cfg, corpus, tmp_path, "bad"), progress=False)
    assert e.value.field == "data.corpus"
    assert not list((Path(tmp_path) / "bad" / "tokens").glob("*"))  # nothing half-written, temp folders gone


def test_a_local_corpus_tokenised_in_two_processes_gives_the_same_files(small_cfg, hf_bpe, tmp_path):
    one = load_tokens(_cfg(small_cfg, small_cfg.corpus, tmp_path, "p1", tokenizer=hf_bpe), progress=False)
    two = load_tokens(_cfg(small_cfg, small_cfg.corpus, tmp_path, "p2", tokenizer=hf_bpe, num_proc=2), progress=False)
    assert (one.path / "train.bin").read_bytes() == (two.path / "train.bin").read_bytes()
    assert one.meta["sha256"] == two.meta["sha256"] and one.path.name == two.path.name


def test_a_changed_local_file_is_another_corpus(english_docs, small_cfg, tmp_path):
    part = tmp_path / "part.jsonl"
    part.write_text("".join(json.dumps({"text": d}) + "\n" for d in english_docs[:30]))
    cfg = _cfg(small_cfg, f"hf:json:{part}", tmp_path, "c", val_tokens=512)
    first = load_tokens(cfg, progress=False)
    assert load_tokens(cfg, progress=False).path == first.path  # unchanged: reused
    with open(part, "a") as f:
        f.write(json.dumps({"text": english_docs[40]}) + "\n")
    again = load_tokens(cfg, progress=False)
    assert again.path != first.path and len(again.train) > len(first.train)
