"""A damaged token cache is never trusted: every kind of damage is one line naming the cache folder and the
`ant data prepare --force ...` command that rebuilds it (exit 1, no run folder), and that command repairs it.

Each test damages its own copy of one cache built from real English text (tests/data/conftest.py)."""

from __future__ import annotations

import dataclasses
import json
import shutil

import numpy as np
import pytest
import yaml

from ant.cli import main
from ant.data import load_tokens
from ant.data.cache import CacheCorruptError


@pytest.fixture(scope="module")
def built(tmp_path_factory, corpus_files):
    """A bytes-tokenizer cache of the .txt corpus, built once; tests copy it."""
    from ant.config import DataConfig

    cache = tmp_path_factory.mktemp("pristine")
    cfg = DataConfig(corpus=str(corpus_files["txt"]), tokenizer="bytes", val_tokens=4096, cache_dir=str(cache))
    load_tokens(cfg, progress=False)
    return cfg


@pytest.fixture
def damaged(built, tmp_path):
    """(cfg, token folder) of a private copy of the built cache."""
    shutil.copytree(built.cache_dir, tmp_path / "cache")
    cfg = dataclasses.replace(built, cache_dir=str(tmp_path / "cache"))
    (root,) = (tmp_path / "cache" / "tokens").iterdir()
    return cfg, root


def _flags(cfg) -> list[str]:
    return ["--corpus", cfg.corpus, "--tokenizer", cfg.tokenizer, "--val-tokens", str(cfg.val_tokens),
            "--cache-dir", cfg.cache_dir]  # fmt: skip


def _truncate(root):
    with open(root / "train.bin", "r+b") as f:
        f.truncate(20_000)


def _odd_size(root):
    with open(root / "train.bin", "ab") as f:
        f.write(b"\x01")


def _id_past_vocab(root):
    ids = np.memmap(root / "train.bin", dtype=np.uint16, mode="r+")
    ids[1234] = 300  # the byte tokenizer's vocabulary is 256
    ids.flush()


def _missing_val(root):
    (root / "val.bin").unlink()


def _corrupt_meta(root):
    (root / "meta.json").write_text('{"dtype": "uint16", "vocab_')


DAMAGE = {
    "truncated": (_truncate, "train.bin holds 10000 tokens, meta.json says"),
    "odd-size": (_odd_size, "not a whole number of uint16 ids"),
    "id-past-vocab": (_id_past_vocab, "train.bin holds id 300 >= vocab size 256"),
    "missing-file": (_missing_val, "val.bin is missing"),
    "corrupt-meta": (_corrupt_meta, "meta.json unreadable"),
}


@pytest.mark.parametrize("kind", list(DAMAGE))
def test_damage_is_named_with_the_rebuild_command_and_force_repairs_it(kind, damaged, capsys):
    cfg, root = damaged
    damage, reason = DAMAGE[kind]
    damage(root)
    with pytest.raises(CacheCorruptError) as e:
        load_tokens(cfg, progress=False)
    msg = str(e.value)
    assert msg.startswith(f"token cache {root} is corrupt (") and reason in msg, msg
    assert msg.endswith(f"run `ant data prepare --force --corpus {cfg.corpus} --tokenizer bytes --val-tokens 4096 "
                        f"--cache-dir {cfg.cache_dir}`")  # fmt: skip
    assert main(["data", "verify", *_flags(cfg)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"ant data: error: {msg}"]
    # the command the message names repairs the cache
    assert main(["data", "prepare", "--force", "-q", *_flags(cfg)]) == 0
    assert main(["data", "verify", *_flags(cfg)]) == 0
    assert "sizes, ids and sha256 match" in capsys.readouterr().out


def test_same_size_corruption_is_found_by_verify(damaged, capsys):
    """A flipped byte keeps every size and id plausible: only the recorded sha256 tells, when asked."""
    cfg, root = damaged
    data = bytearray((root / "train.bin").read_bytes())
    data[1000] ^= 0x01  # the low byte of a uint16 id: still below 256
    (root / "train.bin").write_bytes(bytes(data))
    load_tokens(cfg, progress=False)  # the cheap checks on open cannot see it
    assert main(["data", "verify", *_flags(cfg)]) == 1
    err = capsys.readouterr().err.strip()
    assert f"token cache {root} is corrupt (train.bin sha256" in err and "ant data prepare --force" in err


def test_a_truncated_cache_never_trains_a_run(damaged, tmp_path, capsys):
    """The finding of issue 14: train.bin cut to 20 kB gave a "completed" run on 10k tokens. Now: exit 1, one
    line naming the cache, and no run folder."""
    cfg, root = damaged
    _truncate(root)
    run = {"model": {"arch": "gptplus", "size": "tiny1"}, "data": dataclasses.asdict(cfg) | {"seq_len": 32},
           "train": {"tokens": 2048, "batch_size": 8, "device": "cpu"}, "out_dir": str(tmp_path / "runs")}  # fmt: skip
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(run))
    assert main(["train", str(tmp_path / "run.yaml"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ant train: error: token cache {root} is corrupt"), err
    assert not (tmp_path / "runs").exists()


def test_verify_of_a_cache_built_before_hashes_checks_sizes_and_says_so(damaged, capsys):
    cfg, root = damaged
    meta = json.loads((root / "meta.json").read_text())
    del meta["sha256"]
    (root / "meta.json").write_text(json.dumps(meta))
    assert load_tokens(cfg, progress=False).content_sha256 is None
    assert main(["data", "verify", *_flags(cfg)]) == 0
    assert "no sha256 recorded" in capsys.readouterr().out


def test_non_utf8_bytes_are_counted_and_reported(tmp_path, english_docs, capsys):
    from ant.config import DataConfig

    text = "\n\n\n".join(english_docs).encode() + b"\n\nLatin-1 here: caf\xe9, na\xefve, \xff\xfe.\n"
    (tmp_path / "mixed.txt").write_bytes(text)
    cfg = DataConfig(corpus=str(tmp_path / "mixed.txt"), tokenizer="bytes", val_tokens=4096,
                     cache_dir=str(tmp_path / "cache"))  # fmt: skip
    data = load_tokens(cfg, progress=False)
    assert "4 bytes are not UTF-8 and were replaced by U+FFFD" in capsys.readouterr().err
    assert data.meta["non_utf8_bytes"] == 4
