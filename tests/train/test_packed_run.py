"""Runs trained packed (ant.train.packed_run) are interchangeable with the same runs trained alone: same run ids
and folder layout, loss curves equal within float reduction order; a killed packed worker resumes bit for bit;
a diverged member leaves the pack and the others go on."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch._dynamo.utils import counters

from ant.errors import ConfigError
from ant.train import io, train
from ant.train.packed_run import train_packed
from tests.train.conftest import REPO, tiny_cfg, tiny_dict, write_yaml

# Packed and alone differ only in reduction order (batched vs single matmuls, per-run clip norms): observed max
# relative difference 4e-6 over 40 steps at tiny1; the bound leaves room for other BLAS builds.
RTOL = 1e-3
SHORT = {"tokens": 40 * 8 * 64, "log_interval": 5, "eval_interval": 20, "diag_interval": 20, "ckpt_interval": 20}
RUNS = [(1e-2, 0), (3e-3, 1)]  # (lr, seed) of the two runs of a pack


def _cfgs(out: Path, arch: str, runs=RUNS, **train_over):
    return [tiny_cfg(out, model={"arch": arch}, optim={"lr": lr}, train={**SHORT, **train_over, "seed": s})
            for lr, s in runs]  # fmt: skip


def _rel(a: np.ndarray, b: np.ndarray) -> float:
    assert np.array_equal(np.isnan(a), np.isnan(b))  # the same rows measured the same columns
    m = ~np.isnan(b)
    return float(np.max(np.abs(a[m] - b[m]) / np.abs(b[m])))


@pytest.mark.parametrize("arch", ["gptplus", "angpt"])
def test_packed_runs_equal_their_single_runs(tmp_path, byte_tokens, arch):
    packed = train_packed(_cfgs(tmp_path / "packed", arch), progress=False)
    for r, cfg in zip(packed, _cfgs(tmp_path / "single", arch)):
        alone = train(cfg, progress=False)
        assert r.status == alone.status == "completed"
        assert r.run_dir.name == alone.run_dir.name  # the same run id
        top = {p.name for p in alone.run_dir.iterdir()}
        assert {p.name for p in r.run_dir.iterdir()} == top
        assert set(r.summary) == set(alone.summary) | {"packed_with", "compiled_step"}
        assert r.summary["compiled_step"] is False  # 40 steps of tiny runs: too short for the rule
        a, b = pd.read_parquet(r.run_dir / "metrics.parquet"), pd.read_parquet(alone.run_dir / "metrics.parquet")
        assert list(a.columns) == list(b.columns) and list(a.step) == list(b.step)
        for col in ("train_loss", "val_loss", "grad_norm", "resid_norm_0"):
            assert _rel(a[col].to_numpy(), b[col].to_numpy()) <= RTOL, col
        assert a["lr"].equals(b["lr"])  # the LR each optimizer held, exactly (PackedAdam.lr, current_lr)
        assert r.summary["final_val_loss"] == pytest.approx(alone.summary["final_val_loss"], rel=RTOL)
        wa, wb = torch.load(r.run_dir / "weights.pt"), torch.load(alone.run_dir / "weights.pt")
        assert list(wa) == list(wb) and all(wa[k].shape == wb[k].shape for k in wa)
        # packed checkpoints: their own folder, never taken for the single path's Lightning checkpoints
        assert io.list_checkpoints(r.run_dir / "checkpoints") == []
        assert [s for s, _ in io.list_checkpoints(r.run_dir / "checkpoints" / "packed")] == [20]


def test_killed_packed_worker_resumes_bit_for_bit(tmp_path, byte_tokens):
    over = {"tokens": 120 * 8 * 64, "ckpt_interval": 30, "eval_interval": 50, "diag_interval": 50}
    uninterrupted = train_packed(_cfgs(tmp_path / "ref", "angpt", **over), progress=False)
    configs = []
    for i, (lr, seed) in enumerate(RUNS):
        d = tiny_dict(optim={"lr": lr}, train={**SHORT, **over, "seed": seed})
        configs.append(str(write_yaml(tmp_path / f"run{i}.yaml", d)))
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "ant.cli", "train", configs[0], "--packed", configs[1], "--out-dir", str(out),
           "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    while len(list(out.glob("*/checkpoints/packed/*.sha256"))) < 4:  # two checkpoints of each run
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < 300, "no checkpoints appeared"
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    killed = [io.read_json(out / r.run_dir.name / "summary.json") for r in uninterrupted]
    assert all(s["status"] == "running" and s["steps"] < 120 for s in killed), killed
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    for ref in uninterrupted:
        run_dir = out / ref.run_dir.name
        a = pd.read_parquet(ref.run_dir / "metrics.parquet").drop(columns="tokens_per_s")
        b = pd.read_parquet(run_dir / "metrics.parquet").drop(columns="tokens_per_s")
        pd.testing.assert_frame_equal(a, b, check_exact=True)
        s = io.read_json(run_dir / "summary.json")
        assert s["status"] == "completed" and s["resumed_from_step"] >= 60
        assert s["final_val_loss"] == ref.summary["final_val_loss"]  # bit for bit
        wa, wb = torch.load(ref.run_dir / "weights.pt"), torch.load(run_dir / "weights.pt")
        assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_a_diverged_run_leaves_the_pack_and_the_others_go_on(tmp_path, byte_tokens):
    runs = [(1e-2, 0), (50.0, 1), (3e-3, 2)]  # an LR of 50 diverges within a few steps
    over = {"model": {"arch": "gptplus", "size": "tiny0"}}
    cfgs = [tiny_cfg(tmp_path / "packed", **over, optim={"lr": lr}, train={**SHORT, "seed": s}) for lr, s in runs]
    ok, bad, ok2 = train_packed(cfgs, progress=False)
    assert bad.status == "diverged" and bad.summary["diverged_step"] < 40
    assert (bad.run_dir / "weights.pt").is_file()
    rows = pd.read_parquet(bad.run_dir / "metrics.parquet")
    assert rows.step.max() <= bad.summary["diverged_step"] + 5 and not np.isnan(rows.val_loss.iloc[-1])
    for r, (lr, s) in zip((ok, ok2), (runs[0], runs[2])):
        alone = train(tiny_cfg(tmp_path / "single", **over, optim={"lr": lr}, train={**SHORT, "seed": s}),
                      progress=False)  # fmt: skip
        assert r.status == alone.status == "completed"
        a, b = pd.read_parquet(r.run_dir / "metrics.parquet"), pd.read_parquet(alone.run_dir / "metrics.parquet")
        assert _rel(a.train_loss.to_numpy(), b.train_loss.to_numpy()) <= RTOL
        assert _rel(a.val_loss.to_numpy(), b.val_loss.to_numpy()) <= RTOL


def test_requested_stop_then_rerun_equals_uninterrupted(tmp_path, byte_tokens, monkeypatch):
    """request_checkpoint() (the sweep's SIGUSR2/SIGTERM handler) mid-run: every run checkpoints and returns
    "running"; the rerun continues to the uninterrupted curves bit for bit."""
    ref = train_packed(_cfgs(tmp_path / "ref", "gptplus"), progress=False)
    _stopped_at(27, monkeypatch)  # between two checkpoint steps (20, 40)
    stopped = train_packed(_cfgs(tmp_path / "run", "gptplus"), progress=False)
    assert all(r.status == "running" and r.summary["interrupted"] and r.summary["steps"] == 27 for r in stopped)
    monkeypatch.undo()
    again = train_packed(_cfgs(tmp_path / "run", "gptplus"), progress=False)
    for a, b in zip(ref, again):
        assert b.status == "completed" and b.summary["resumed_from_step"] == 27
        ma = pd.read_parquet(a.run_dir / "metrics.parquet").drop(columns="tokens_per_s")
        mb = pd.read_parquet(b.run_dir / "metrics.parquet").drop(columns="tokens_per_s")
        pd.testing.assert_frame_equal(ma, mb, check_exact=True)


def _stopped_at(step_no: int, monkeypatch):
    """Make the pack's step that reaches global step `step_no` request a checkpoint-and-stop (the sweep's
    SIGUSR2/SIGTERM handler) after it."""
    from ant.train import packed_run, request_checkpoint

    step = packed_run.train_step

    def stop(model, opt, x, y, s, steps, compiled):
        if s == step_no - 1:
            request_checkpoint()
        return step(model, opt, x, y, s, steps, compiled)

    monkeypatch.setattr(packed_run, "train_step", stop)


def test_compiled_packed_runs_equal_their_single_runs_and_resume_compiled(tmp_path, byte_tokens, monkeypatch):
    """train.cpu_compile=true: the pack trains through the compiled step (ant.train.compiled.packed_*): its
    curves equal the same runs trained alone (eager) within reduction order. Stopped at step 27 and rerun with
    cpu_compile=false, the pack keeps the choice its checkpoints recorded, so it continues bit for bit."""
    ref = train_packed(_cfgs(tmp_path / "ref", "angpt", cpu_compile="true"), progress=False)
    for r, cfg in zip(ref, _cfgs(tmp_path / "single", "angpt", cpu_compile="false")):
        alone = train(cfg, progress=False)
        assert r.summary["compiled_step"] is True and r.run_dir.name == alone.run_dir.name
        a, b = pd.read_parquet(r.run_dir / "metrics.parquet"), pd.read_parquet(alone.run_dir / "metrics.parquet")
        for col in ("train_loss", "val_loss", "grad_norm", "resid_norm_0"):
            assert _rel(a[col].to_numpy(), b[col].to_numpy()) <= RTOL, col
    graphs = counters["stats"]["unique_graphs"]  # a new pack of the shape (fresh models, a resume) reuses them
    _stopped_at(27, monkeypatch)
    stopped = train_packed(_cfgs(tmp_path / "run", "angpt", cpu_compile="true"), progress=False)
    assert all(r.summary["steps"] == 27 and r.summary["compiled_step"] for r in stopped)
    monkeypatch.undo()
    again = train_packed(_cfgs(tmp_path / "run", "angpt", cpu_compile="false"), progress=False)
    for a, b in zip(ref, again):
        assert b.summary["resumed_from_step"] == 27 and b.summary["compiled_step"] is True
        ma = pd.read_parquet(a.run_dir / "metrics.parquet").drop(columns="tokens_per_s")
        mb = pd.read_parquet(b.run_dir / "metrics.parquet").drop(columns="tokens_per_s")
        pd.testing.assert_frame_equal(ma, mb, check_exact=True)
        assert b.summary["final_val_loss"] == a.summary["final_val_loss"]
    assert counters["stats"]["unique_graphs"] == graphs


def test_a_pack_shares_everything_but_lr_and_seed(tmp_path):
    a = tiny_cfg(tmp_path, train={**SHORT})
    b = tiny_cfg(tmp_path, train={**SHORT, "batch_size": 4})
    with pytest.raises(
        ConfigError, match=r"train.batch_size.*8 in .* but 4 in .*differ only in optim.lr and train.seed"
    ):
        train_packed([a, b], progress=False)
    assert not any(tmp_path.iterdir())  # refused before any run folder was made
