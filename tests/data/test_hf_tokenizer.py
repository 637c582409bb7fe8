"""`tokenizer: hf:NAME_OR_PATH` on tokenizer.json files built here (no network), uint32 token files for a
vocabulary past 65,535, and the XDG default cache."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from ant.config import DataConfig
from ant.data import TrainSampler, cache_dir_of, load_tokens, split_documents, tokenizer_vocab_size, val_batches
from ant.data.cache import CacheCorruptError, read_meta
from ant.data.tokenizers import EOT
from ant.errors import ConfigError

SAMPLES = [
    "Hello world",
    "  leading spaces, trailing spaces  \n\n\ttabs\r\nand CRLF",
    "Unicode: naïve café, “quotes” — em dash, 東京, emoji 😀",
    "",
]


@pytest.fixture(scope="module")
def bpe_json(tmp_path_factory, english_docs) -> Path:
    """A byte-level BPE tokenizer.json trained here with `tokenizers` on the test corpus (vocab 700)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=700,
        special_tokens=["<s>", EOT],  # the separator is not id 0: found by name, not by position
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(english_docs, trainer)
    path = tmp_path_factory.mktemp("hf-bpe") / "tokenizer.json"
    tok.save(str(path))
    return path


@pytest.fixture(scope="module")
def big_vocab_json(tmp_path_factory, english_docs) -> Path:
    """A WordLevel tokenizer.json with 70,000 + tokens, the corpus's words placed above id 65,535 (so the token
    files must hold ids that uint16 cannot)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    words = sorted({w for d in english_docs for w in d.split()})
    vocab = {f"<filler{i}>": i for i in range(66_000)}
    vocab.update({"[UNK]": 66_000, EOT: 66_001})
    vocab.update({w: 66_002 + i for i, w in enumerate(words)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with single spaces
    tok.add_special_tokens([EOT])
    path = tmp_path_factory.mktemp("hf-big") / "tokenizer.json"
    tok.save(str(path))
    return path


def test_tokenizer_json_built_here_loads_through_hf_path_and_round_trips(small_cfg, bpe_json, english_docs):
    cfg = dataclasses.replace(small_cfg, tokenizer=f"hf:{bpe_json}")
    data = load_tokens(cfg, progress=False)
    tok = data.tokenizer
    assert tok.eot_id == 1 and tok.eot_token == EOT  # "<s>" is id 0: the end-of-text token is found by name
    for s in [*SAMPLES, english_docs[5]]:
        ids = tok.encode(s)
        assert tok.decode(ids) == s and tok.eot_id not in ids  # no BOS or post-processor tokens added
    assert data.vocab_size == 700 == tokenizer_vocab_size(cfg) and data.train.dtype == np.uint16
    assert data.path.name.startswith("hf-") and data.meta["tokenizer_sha256"] == tok.sha256
    # the files hold the same documents as the bytes tokenizer's, each followed by the end-of-text id
    held = split_documents(np.array([len(d.encode()) for d in english_docs]), cfg.val_tokens)
    train_docs = [d for i, d in enumerate(english_docs) if i not in set(held.tolist())]
    expected = np.concatenate([np.append(tok.encode(d), tok.eot_id) for d in train_docs])
    assert np.array_equal(np.asarray(data.train), expected)
    # a folder holding tokenizer.json names the same tokenizer, and the same token files
    same = load_tokens(dataclasses.replace(cfg, tokenizer=f"hf:{bpe_json.parent}"), progress=False)
    assert same.path == data.path


def test_hf_tokenizer_fingerprint_is_the_file_content(small_cfg, bpe_json, tmp_path):
    cfg = dataclasses.replace(small_cfg, tokenizer=f"hf:{bpe_json}")
    data = load_tokens(cfg, progress=False)
    copy = tmp_path / "copy" / "tokenizer.json"
    copy.parent.mkdir()
    shutil.copy(bpe_json, copy)  # the same file elsewhere: the same cache
    assert load_tokens(dataclasses.replace(cfg, tokenizer=f"hf:{copy}"), progress=False).path == data.path
    spec = json.loads(copy.read_text())
    spec["decoder"] = None  # another tokenizer.json: another cache, never the old files
    copy.write_text(json.dumps(spec))
    other = load_tokens(dataclasses.replace(cfg, tokenizer=f"hf:{copy}"), progress=False)
    assert other.fingerprint != data.fingerprint


def test_vocab_past_65535_round_trips_through_uint32(small_cfg, big_vocab_json, english_docs):
    cfg = dataclasses.replace(small_cfg, tokenizer=f"hf:{big_vocab_json}")
    data = load_tokens(cfg, progress=False)
    assert data.vocab_size == tokenizer_vocab_size(cfg) > 66_002 + 1000
    assert data.train.dtype == np.uint32 and data.val.dtype == np.uint32 and data.meta["dtype"] == "uint32"
    assert int(data.train.min()) > 65_535  # every word (and the separator) is past uint16
    assert (data.path / "train.bin").stat().st_size == 4 * len(data.train)
    tok = data.tokenizer
    held = split_documents(np.array([len(d.encode()) for d in english_docs]), cfg.val_tokens)
    first_train = next(d for i, d in enumerate(english_docs) if i not in set(held.tolist()))
    n = len(tok.encode(first_train))
    assert tok.decode(data.train[:n]) == " ".join(first_train.split())  # WordLevel: words joined by spaces
    assert int(data.train[n]) == tok.eot_id == 66_001
    # the sampler and the validation batches read the uint32 ids unchanged
    sampler = TrainSampler(data, seq_len=16, batch_size=4, seed=0)
    x, y = sampler.batch(3)
    w = sampler.permutation(0)[12:16] * 16
    assert np.array_equal(x.numpy(), np.stack([np.asarray(data.train[s : s + 16], dtype=np.int64) for s in w]))
    assert int(x.min()) > 65_535 and np.array_equal(x[:, 1:].numpy(), y[:, :-1].numpy())
    vx, _ = next(iter(val_batches(data, 16, 2)))
    assert np.array_equal(vx[0].numpy(), np.asarray(data.val[:16], dtype=np.int64))


def test_meta_dtype_that_cannot_hold_the_vocab_is_corrupt(small_cfg, big_vocab_json, tmp_path):
    built = load_tokens(dataclasses.replace(small_cfg, tokenizer=f"hf:{big_vocab_json}"), progress=False)
    root = tmp_path / built.path.name
    shutil.copytree(built.path, root)
    meta = json.loads((root / "meta.json").read_text())
    meta["dtype"] = "uint16"
    (root / "meta.json").write_text(json.dumps(meta))
    with pytest.raises(CacheCorruptError, match=re.escape("dtype uint16 for vocab size")):
        read_meta(root, small_cfg)


def test_bad_hf_tokenizers(small_cfg, tmp_path, bpe_json):
    before = set((Path(small_cfg.cache_dir) / "tokens").glob("*"))
    no_eos = json.loads(bpe_json.read_text())
    no_eos["added_tokens"] = [t for t in no_eos["added_tokens"] if t["content"] != EOT]
    no_eos["model"]["vocab"].pop(EOT)
    (tmp_path / "no_eos.json").write_text(json.dumps(no_eos))
    (tmp_path / "garbage.json").write_text("{not a tokenizer")
    (tmp_path / "empty").mkdir()
    cases = [
        (tmp_path / "missing.json", "no such file"),
        (tmp_path / "garbage.json", "not a readable tokenizer.json"),
        (tmp_path / "empty", "holds no tokenizer.json"),
        (tmp_path / "no_eos.json", "no end-of-text token"),
    ]
    for path, text in cases:
        with pytest.raises(ConfigError, match=re.escape(text)) as e:
            load_tokens(dataclasses.replace(small_cfg, tokenizer=f"hf:{path}"), progress=False)
        assert e.value.field == "data.tokenizer"
    assert set((Path(small_cfg.cache_dir) / "tokens").glob("*")) == before  # nothing written


def test_cache_location_precedence(monkeypatch, tmp_path):
    for var in ("ANT_CACHE", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir_of(DataConfig()) == tmp_path / "home" / ".cache" / "ant"  # two checkouts share it
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: relative paths are invalid
    assert cache_dir_of(DataConfig()) == tmp_path / "home" / ".cache" / "ant"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir_of(DataConfig()) == tmp_path / "xdg" / "ant"
    monkeypatch.setenv("ANT_CACHE", str(tmp_path / "env"))
    assert cache_dir_of(DataConfig()) == tmp_path / "env"
    assert cache_dir_of(DataConfig(cache_dir=str(tmp_path / "explicit"))) == tmp_path / "explicit"


def test_hub_name_is_read_from_the_cache_without_network(small_cfg, bpe_json, tmp_path):
    """A Hub tokenizer is fetched once into <cache>/tokenizers/hf/ and read from there afterwards (SLURM nodes
    without network): here the cache is filled by hand and the tests run offline."""
    cache = tmp_path / "cache"
    target = cache / "tokenizers" / "hf" / "some-org__neox-like" / "tokenizer.json"
    target.parent.mkdir(parents=True)
    shutil.copy(bpe_json, target)
    cfg = dataclasses.replace(small_cfg, tokenizer="hf:some-org/neox-like", cache_dir=str(cache))
    assert tokenizer_vocab_size(cfg) == 700
    data = load_tokens(cfg, progress=False)
    assert data.tokenizer.path == target and data.tokenizer.decode(data.tokenizer.encode("Hello")) == "Hello"


def test_hub_name_is_fetched_once_into_the_cache(small_cfg, bpe_json, tmp_path, monkeypatch):
    """The first use of a Hub name fetches it (here a stand-in for Tokenizer.from_pretrained, no network) and saves
    it under the cache; later uses never ask the Hub again."""
    from tokenizers import Tokenizer

    asked = []

    def from_pretrained(name):
        asked.append(name)
        return Tokenizer.from_file(str(bpe_json))

    monkeypatch.setattr(Tokenizer, "from_pretrained", staticmethod(from_pretrained))
    cfg = dataclasses.replace(small_cfg, tokenizer="hf:EleutherAI/gpt-neox-20b", cache_dir=str(tmp_path / "cache"))
    data = load_tokens(cfg, progress=False)
    saved = tmp_path / "cache" / "tokenizers" / "hf" / "EleutherAI__gpt-neox-20b" / "tokenizer.json"
    assert asked == ["EleutherAI/gpt-neox-20b"] and data.tokenizer.path == saved
    assert data.vocab_size == 700 and data.tokenizer.decode(data.tokenizer.encode(SAMPLES[2])) == SAMPLES[2]
    assert load_tokens(cfg, progress=False).path == data.path and asked == ["EleutherAI/gpt-neox-20b"]
    assert not list(saved.parent.glob("*.tmp-*"))
