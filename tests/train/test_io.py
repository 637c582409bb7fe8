"""Checkpoint files: checksums catch truncation and corruption, pruning keeps the last two, atomic writes."""

from __future__ import annotations

import json
import math

from ant.train import io


def make_ckpt(d, step: int, payload: bytes, checksum: bool = True):
    p = io.ckpt_path(d, step)
    io.atomic_write_bytes(p, payload)
    if checksum:
        io.write_checksum(p)
    return p


def test_newest_valid_skips_truncated_corrupt_and_unchecksummed(tmp_path):
    good = make_ckpt(tmp_path, 10, b"a" * 1000)
    truncated = make_ckpt(tmp_path, 20, b"b" * 1000)
    truncated.write_bytes(b"b" * 500)  # killed mid-write of a non-atomic copy, or a disk error
    flipped = make_ckpt(tmp_path, 30, b"c" * 1000)
    raw = bytearray(flipped.read_bytes())
    raw[500] ^= 0xFF
    flipped.write_bytes(bytes(raw))  # same size, one byte differs
    make_ckpt(tmp_path, 40, b"d" * 1000, checksum=False)  # killed between checkpoint and checksum
    assert io.newest_valid_checkpoint(tmp_path, remove_invalid=False) == (10, good)
    assert len(io.list_checkpoints(tmp_path)) == 4
    assert io.newest_valid_checkpoint(tmp_path) == (10, good)
    assert [s for s, _ in io.list_checkpoints(tmp_path)] == [10]  # the broken newer ones are gone
    assert not io.checksum_path(truncated).exists()


def test_no_valid_checkpoint(tmp_path):
    assert io.newest_valid_checkpoint(tmp_path / "missing") is None
    make_ckpt(tmp_path, 5, b"x", checksum=False)
    assert io.newest_valid_checkpoint(tmp_path) is None


def test_prune_keeps_last_two_and_removes_dead_temp_files(tmp_path):
    for step in (10, 20, 30, 40):
        make_ckpt(tmp_path, step, str(step).encode())
    dead = tmp_path / ".step-00000050.ckpt.999999999.tmp"  # pid that cannot exist
    dead.write_bytes(b"partial")
    io.prune_checkpoints(tmp_path, keep=2)
    assert [s for s, _ in io.list_checkpoints(tmp_path)] == [40, 30]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step-00000030.ckpt",
        "step-00000030.ckpt.sha256",
        "step-00000040.ckpt",
        "step-00000040.ckpt.sha256",
    ]


def test_json_has_no_nan_and_atomic_write_leaves_no_temp(tmp_path):
    p = tmp_path / "summary.json"
    io.write_json(p, {"loss": math.nan, "inf": [math.inf, 1.0], "ok": 2})
    assert json.loads(p.read_text()) == {"loss": None, "inf": [None, 1.0], "ok": 2}
    assert [x.name for x in tmp_path.iterdir()] == ["summary.json"]
    assert io.read_json(tmp_path / "absent.json") is None
