"""Honest records (issue 26, class 7): what a run folder says about itself stays true across attempts.
- weights.pt of bit-identical tensors has one sha256 (torch named the zip's root after the temp file);
- skipped_checkpoints survives a later attempt that finishes the run;
- a killed writer's temp file (`.metrics.parquet.<random>.<pid>.tmp`) does not stay in a completed run folder.
"""

from __future__ import annotations

import json
import zipfile

import torch

from ant import fsio, recipe
from ant.train import io, train
from tests.train.conftest import tiny_cfg


def test_identical_weights_hash_identically(tmp_path):
    state = {"w": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.ones(3)}
    fsio.atomic_torch_save(tmp_path / "a" / "weights.pt", state)
    fsio.atomic_torch_save(tmp_path / "b" / "weights.pt", {k: v.clone() for k, v in state.items()})
    a, b = tmp_path / "a" / "weights.pt", tmp_path / "b" / "weights.pt"
    assert io.sha256_file(a) == io.sha256_file(b)
    assert {n.split("/")[0] for n in zipfile.ZipFile(a).namelist()} == {"archive"}  # no temp name inside
    assert torch.equal(torch.load(a)["w"], state["w"])


def test_skipped_checkpoints_and_no_temp_file_survive_the_attempt_that_finishes(tmp_path, byte_tokens):
    cfg = tiny_cfg(tmp_path, train={"tokens": 8 * 8 * 64, "ckpt_interval": 4, "eval_interval": 4})
    run_dir = recipe.resolve(cfg).run_dir()
    run_dir.mkdir(parents=True)
    earlier = "checkpoints/step-00000004.ckpt: its 10 bytes do not match its .sha256 (truncated or corrupt)"
    (run_dir / "summary.json").write_text(json.dumps({"status": "running", "skipped_checkpoints": [earlier]}))
    dead = run_dir / ".metrics.parquet.abc123.999999999.tmp"  # pid 999999999: no such process
    dead.write_bytes(b"")
    s = train(cfg, progress=False).summary
    assert s["status"] == "completed"
    assert s["skipped_checkpoints"] == [earlier]
    assert json.loads((run_dir / "summary.json").read_text())["skipped_checkpoints"] == [earlier]
    assert not list(run_dir.glob(".*.tmp"))
