"""Data-parallel training on this CPU machine (issue 15): `ant train` with train.devices: 2 runs two processes
(Lightning's DDP over gloo, the second started by Lightning re-running the command line) on the same global batch
as one device. Loss curves match one device's within reduction order, the replicas end identical (and bounded for
anGPT), rank 0 alone writes the run folder, a kill -9 and rerun ends where an uninterrupted run ends, and a
2-process checkpoint resumed on one device continues the same token stream.

Tiny on purpose (2 shared cores): tiny1, 64-token sequences, batch 8, 100 steps, one thread per process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ant.errors import ConfigError
from ant.train import distributed, io, load_run, train
from tests.train.conftest import REPO, tiny_cfg, tiny_dict, write_yaml

# one xdist group: its 2-process runs take both cores; bit-exact comparisons need the same thread counts
pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("ddp")]

STEPS = 100
SMALL = {"tokens": STEPS * 8 * 64, "batch_size": 8, "log_interval": 1, "eval_interval": 25, "diag_interval": 50,
         "ckpt_interval": 20}  # fmt: skip
RTOL = 1e-5  # the bound; measured ~1e-7 (200 steps of angpt tiny1: 1.0e-7 train loss, 1.8e-8 val loss)


def cli(config: Path, out_dir: Path, *sets: str, json_out: bool = False) -> list[str]:
    extra = [a for s in sets for a in ("--set", s)] + (["--json"] if json_out else [])
    return [sys.executable, "-m", "ant.cli", "train", str(config), "--out-dir", str(out_dir), "--no-progress", *extra]


def run_cli(config: Path, out_dir: Path, *sets: str, json_out: bool = False) -> subprocess.CompletedProcess:
    r = subprocess.run(cli(config, out_dir, *sets, json_out=json_out), cwd=REPO, capture_output=True, text=True,
                       timeout=600)  # fmt: skip
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return r


def only_run(out_dir: Path) -> Path:
    (run_dir,) = [p for p in out_dir.iterdir() if p.is_dir()]
    return run_dir


def metrics(run_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(run_dir / "metrics.parquet").set_index("step")


def assert_close_curves(a: pd.DataFrame, b: pd.DataFrame, rtol: float = RTOL) -> None:
    for col in ("train_loss", "val_loss"):
        x, y = a[col].dropna(), b[col].dropna()
        assert list(x.index) == list(y.index), col
        np.testing.assert_allclose(y.to_numpy(), x.to_numpy(), rtol=rtol, atol=0, err_msg=col)


@pytest.fixture(scope="module", params=["gptplus", "angpt"])
def pair(request, tmp_path_factory, byte_tokens):
    """(config file, 1-device RunResult, 2-process run folder, its output) for one architecture. The one device
    runs the same two 4-sequence micro-batches a step that the two ranks run (a memory setting, not in the run
    id), so the arithmetic is the same and so are the curves."""
    arch, tmp = request.param, tmp_path_factory.mktemp(f"ddp-{request.param}")
    d = tiny_dict(model={"arch": arch}, train=SMALL)
    one = train(tiny_cfg(tmp / "one", model={"arch": arch}, train={**SMALL, "micro_batch_size": 4}), progress=False)
    config = write_yaml(tmp / "run.yaml", {**d, "train": {**d["train"], "devices": 2}})
    r = run_cli(config, tmp / "two")
    return config, one, only_run(tmp / "two"), r


def test_two_processes_train_the_one_device_run(pair):
    config, one, two, r = pair
    assert two.name == one.run_dir.name  # devices is not part of the run id
    assert_close_curves(metrics(one.run_dir), metrics(two))
    s = io.read_json(two / "summary.json")
    assert s["status"] == "completed" and s["steps"] == STEPS
    assert s["final_val_loss"] == pytest.approx(one.summary["final_val_loss"], rel=RTOL)
    if one.summary["arch"] == "angpt":  # one pass over the whole batch differs from two by reduction order only
        whole = train(tiny_cfg(one.run_dir.parent.parent / "whole", train=SMALL), progress=False)
        assert_close_curves(metrics(whole.run_dir), metrics(two))
    # one voice: rank 0 prints the step lines and the result once
    assert r.stdout.count("completed:") == 1 and r.stdout.count(f"step {STEPS}/{STEPS}") == 1


def test_replicas_end_identical_and_anGPT_rows_bounded(pair):
    _, one, two, _ = pair
    s = io.read_json(two / "summary.json")
    cfg, model = load_run(two)  # rank 0's weights.pt, checked against weights_sha256
    # ReplicaCheck compared every rank's parameter checksum with rank 0's at the end (the run fails otherwise)
    assert s["replica_sha256"] == distributed.parameters_sha256(model)
    if cfg.model.arch == "angpt":
        norms = [c.norms().max().item() for c in model.constraints()]
        assert norms and max(norms) <= 1 + 1e-5
    # rank 0 alone wrote the folder: one env.json entry, one summary, two checkpoints, no leftovers
    assert len(json.loads((two / "env.json").read_text())) == 1
    assert sorted(p.name for p in (two / "checkpoints").glob("*.ckpt")) == ["step-00000060.ckpt", "step-00000080.ckpt"]
    assert not list(two.rglob("*.tmp*"))


def start(config: Path, out_dir: Path) -> subprocess.Popen:
    # a session of its own: kill -9 reaches rank 0 and the rank Lightning started, as SLURM's kill of a job does
    return subprocess.Popen(cli(config, out_dir), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)  # fmt: skip


@pytest.mark.parametrize("pair", ["angpt"], indirect=True)  # one architecture is enough for the resume paths
def test_kill9_rerun_and_resume_on_one_device(pair, tmp_path):
    config, one, two, _ = pair
    out = tmp_path / "killed"
    proc = start(config, out)
    t0 = time.monotonic()
    while not list(out.glob("*/checkpoints/step-00000040.ckpt.sha256")):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() - t0 < 300, "no checkpoint at step 40"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = only_run(out)
    # the same folder resumed by one process: the 2-process checkpoint, the same token stream
    single = tmp_path / "single"
    shutil.copytree(killed, single / killed.name, ignore=shutil.ignore_patterns(".lock"))
    resumed = train(tiny_cfg(single, train=SMALL), progress=False)
    # and the killed 2-process run rerun as it was
    run_cli(config, out)
    s = io.read_json(killed / "summary.json")
    assert s["status"] == "completed" and s["resumed_from_step"] >= 40
    ref = metrics(two)
    pd.testing.assert_series_equal(metrics(killed)["train_loss"], ref["train_loss"], check_exact=True)
    assert s["final_val_loss"] == io.read_json(two / "summary.json")["final_val_loss"]
    assert resumed.summary["status"] == "completed" and resumed.summary["resumed_from_step"] >= 40
    assert_close_curves(ref, metrics(resumed.run_dir))


def test_devices_that_cannot_share_the_batch_or_run_here_are_refused(tmp_path, byte_tokens):
    with pytest.raises(ConfigError, match=r"^train\.devices: batch_size 8 is not a multiple of devices 3"):
        train(tiny_cfg(tmp_path, train={"devices": 3}), progress=False)
    with pytest.raises(ConfigError, match=r"^train\.strategy: fsdp is not supported"):
        train(tiny_cfg(tmp_path, train={"strategy": "fsdp"}), progress=False)
    # pytest cannot be re-run once per device: refused, not relaunched
    with pytest.raises(ConfigError, match=r"^train\.devices: 2 processes need `ant train`"):
        train(tiny_cfg(tmp_path, train={"devices": 2}), progress=False)
    assert not any(tmp_path.iterdir())  # nothing written


@pytest.mark.parametrize("pair", ["angpt"], indirect=True)  # one architecture is enough for the stop path
def test_sigterm_checkpoints_both_ranks_and_the_rerun_continues_exactly(pair, tmp_path):
    config, one, two, _ = pair
    out = tmp_path / "stopped"
    proc = start(config, out)
    t0 = time.monotonic()
    while not list(out.glob("*/checkpoints/*.ckpt.sha256")):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() - t0 < 300, "no checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)  # to rank 0 only: Lightning passes it on, the ranks agree on the step
    assert proc.wait(timeout=120) == 3  # interrupted, checkpoint saved
    stopped = only_run(out)
    s = io.read_json(stopped / "summary.json")
    assert s["status"] == "running" and s["interrupted"] and s["steps"] < STEPS
    run_cli(config, out)
    pd.testing.assert_series_equal(metrics(stopped)["train_loss"], metrics(two)["train_loss"], check_exact=True)


def test_micro_batches_on_each_rank_sync_once_a_step_and_match_one_device(tmp_path, byte_tokens):
    # 4 micro-batches of 2 per rank and step: DDP all-reduces after the last one only (the others accumulate
    # locally), and the gradient is still the global batch's mean
    small = {**SMALL, "micro_batch_size": 2, "ckpt_interval": 0}
    one = train(tiny_cfg(tmp_path / "one", train=small), progress=False)
    d = tiny_dict(train=small)
    config = write_yaml(tmp_path / "run.yaml", {**d, "train": {**d["train"], "devices": 2}})
    # --json while both ranks train: stdout is one JSON document, so rank 1 printed nothing (the plain output's
    # single "completed:" line is test_two_processes_train_the_one_device_run's)
    r = run_cli(config, tmp_path / "two", "train.log_interval=1", json_out=True)
    assert json.loads(r.stdout)["status"] == "completed"
    two = only_run(tmp_path / "two")
    assert_close_curves(metrics(one.run_dir), metrics(two))
