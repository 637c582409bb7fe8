"""The local executor: two sweeps at once never train a run twice; a re-run skips what is done; a failing run
is reported failed while the rest complete."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ant.sweep.grid import Grid
from ant.sweep.locks import RunLock, is_locked, read_attempts
from ant.sweep.plan import build_plan
from tests.sweep.conftest import write_grid

ROOT = Path(__file__).resolve().parents[2]


def sweep(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ant.cli", "sweep", *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip


def test_lock_is_exclusive_and_dies_with_its_holder(tmp_path):
    a = RunLock(tmp_path, "r1")
    assert a.acquire()
    assert is_locked(tmp_path, "r1")
    assert not RunLock(tmp_path, "r1").acquire()
    a.release()
    assert not is_locked(tmp_path, "r1")
    # a holder killed hard leaves no stale lock (flock dies with the process)
    code = f"from ant.sweep.locks import RunLock; RunLock({str(tmp_path)!r}, 'r2').acquire(); import os; os._exit(0)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    assert not is_locked(tmp_path, "r2")


@pytest.mark.slow
def test_two_concurrent_sweeps_never_duplicate_and_rerun_skips(tmp_path, corpus):
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, seed=[0, 1],
                   executor={"name": "local", "concurrency": 1, "threads_per_run": 1})  # fmt: skip
    procs = [sweep(str(g)), sweep(str(g))]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    runs = Grid.from_yaml(g).expand()
    locks = Path(runs[0].out_dir) / ".locks"
    for r in runs:
        starts = [a for a in read_attempts(locks, r.run_id()) if a["event"] == "start"]
        assert len(starts) == 1, (r.run_id(), starts)  # trained exactly once across both sweeps
        assert json.loads((r.run_dir() / "summary.json").read_text())["status"] == "completed"
    # each sweep trained some runs and skipped or found locked the ones the other took
    assert sum(o.count("completed") for o in outs) >= len(runs)
    rows, _ = build_plan(runs)
    assert {r.state for r in rows} == {"done"}
    # a re-run launches nothing
    p = sweep(str(g))
    out = p.communicate(timeout=300)[0]
    assert p.returncode == 0 and "0 to run, 4 done" in out, out
    assert all(len(read_attempts(locks, r.run_id())) == 2 for r in runs)  # one start + one end each, no more


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the failing run is a cuda run on a machine without CUDA")
def test_failing_run_is_reported_and_the_rest_complete(tmp_path, corpus):
    # train.device cuda without CUDA: the worker's train() raises for that run only (the sweep leaves the device
    # to the worker, where a SLURM job may find a GPU its login node lacks; a batch larger than the corpus, which
    # this test used before, is now refused by `ant sweep` itself with exit 2: tests/test_bad_inputs.py)
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["angpt"], set={"train.device": ["cpu", "cuda"]})
    p = sweep(str(g))
    out = p.communicate(timeout=600)[0]
    assert p.returncode == 1, out
    assert "1 completed, 1 failed" in out and "train.device" in out
    rows, _ = build_plan(Grid.from_yaml(g).expand())
    assert sorted(r.state for r in rows) == ["done", "failed"]
    p = sweep(str(g), "--status")
    out = p.communicate(timeout=300)[0]
    assert "1 done, 1 failed" in out, out
