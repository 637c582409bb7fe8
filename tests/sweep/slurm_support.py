"""What the SLURM tests share: the cluster guard, `ant` as a subprocess, and the deterministic requeue.

The requeue tests do not wait for a real time limit (that needed a throughput measurement to size the run, and a
load change could let the run finish first). They wait for the run's first checkpoint and then send the job the
signal its submission asks SLURM to send before the limit (`#SBATCH --signal=USR2@...`, submitit's choice,
checked statically in tests/sweep/test_submission_script.py) with `scancel --signal`, exactly as slurmctld does at
`--time - signal_delay_s`. The rest is the real path: submitit's handler, the checkpoint, `scontrol requeue`, the
requeued job resuming from the checkpoint.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
# Wall-clock columns: the only ones an interrupted run may differ in from an uninterrupted one.
WALL_CLOCK_COLUMNS = ("tokens_per_s", "mfu")
SLURM = {"name": "slurm", "timeout_min": 5, "cpus_per_task": 1, "mem_gb": 1, "signal_delay_s": 30}
# The requeue runs: a fixed budget of 400 steps (batch 8 x seq 32 in write_grid), ~4 s at one thread on an idle
# 2-core machine, slower under load (which only widens the window after the first checkpoint, at step 10, in which
# the signal must land: it landed 2 steps later on a machine loaded 5x); validation every 50 steps, a checkpoint
# every 10.
REQUEUE_TOKENS = 400 * 8 * 32
REQUEUE_TRAIN = {"device": "cpu", "eval_interval": 50, "ckpt_interval": 10}
REQUEUE_SIGNAL = "USR2"  # submitit's SlurmJobEnvironment.USR_SIG: what `#SBATCH --signal=USR2@N` asks for


def cluster_up() -> str | None:
    """None when the local cluster's node is up, else why not."""
    if shutil.which("sinfo") is None:
        return "sinfo not found: no SLURM here (bash scripts/slurm_local.sh start installs and starts one)"
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"sinfo failed: {e}"
    if not any(s in out for s in ("idle", "mixed", "allocated")):
        return f"no SLURM node is up (sinfo: {out.strip() or 'nothing'}); run bash scripts/slurm_local.sh start"
    return None


def slurm_marks() -> list:
    """The marks of a module of SLURM tests: slurm, slow, one xdist group (one cluster of 2 CPUs: its tests run
    one after another on one worker), and a skip naming the cause when no cluster is up."""
    marks = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.xdist_group("slurm")]
    if (why := cluster_up()) is not None:
        # CI (.ci/run) sets ANT_REQUIRE_SLURM=1: a cluster that cannot start is then a collection error naming the
        # cause, not a quietly skipped module behind a green run. Outside CI the module skips with the reason.
        if os.environ.get("ANT_REQUIRE_SLURM") == "1":
            raise RuntimeError(f"ANT_REQUIRE_SLURM=1 but the SLURM tests cannot run: {why}")
        marks.append(pytest.mark.skip(reason=why))
    return marks


def ant(*args: str, timeout: int = 600) -> tuple[int, str]:
    p = subprocess.run([sys.executable, "-m", "ant.cli", *args], cwd=ROOT, text=True, capture_output=True,
                       timeout=timeout)  # fmt: skip
    return p.returncode, p.stdout + p.stderr


def sacct_states(job_ids: list[str]) -> dict[str, str]:
    out = subprocess.run(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(job_ids)],
                         capture_output=True, text=True).stdout  # fmt: skip
    return dict(line.split("|", 1) for line in out.splitlines() if "|" in line)


def job_states(sweep_dir: Path, run_id: str) -> list[str]:
    """Every state sacct recorded for the run's job, requeues included (-D)."""
    job = json.loads((sweep_dir / "jobs.json").read_text())[run_id]["job_id"]
    for _ in range(20):  # accounting lags a little behind the jobs
        states = subprocess.run(["sacct", "-n", "-P", "-X", "-D", "-o", "State", "-j", job], capture_output=True,
                                text=True).stdout.split()  # fmt: skip
        if "COMPLETED" in states:
            break
        time.sleep(1)
    return states


def sweep_releasing_requeue_holds(grid: Path, interrupt: Path | None = None) -> tuple[int, str]:
    """`ant sweep GRID --wait` while a thread releases requeued jobs: SLURM holds a requeued job for ~2 minutes
    (reason BeginTime), and releasing it keeps the test short; the requeue itself (signal, checkpoint,
    scontrol requeue, resume) is untouched. `interrupt`: a run folder; once its first checkpoint is written,
    its job gets the time-limit signal (see the module docstring)."""
    stop = threading.Event()
    sent: list[str] = []
    helper = threading.Thread(target=_requeue_helper, args=(stop, grid, interrupt, sent), daemon=True)
    helper.start()
    try:
        rc, out = ant("sweep", str(grid), "--wait", timeout=900)
    finally:
        stop.set()
        helper.join(10)
    if interrupt is not None:
        assert sent, f"the run finished before its first checkpoint was seen: nothing was interrupted\n{out}"
    return rc, out


def _requeue_helper(stop: threading.Event, grid: Path, interrupt: Path | None, sent: list[str]) -> None:
    jobs = grid.parent / "sweeps" / "t" / "jobs.json"
    while not stop.wait(0.1):
        if interrupt is not None and not sent and jobs.is_file() and _has_checkpoint(interrupt):
            job = next(iter(json.loads(jobs.read_text()).values()))["job_id"]
            subprocess.run(["scancel", f"--signal={REQUEUE_SIGNAL}", job], check=True, capture_output=True)
            sent.append(job)
        release_requeue_holds()


_HELD_SINCE: dict[str, float] = {}  # job id -> when release_requeue_holds first saw it held
# A requeue revokes the job's credential on slurmd, with a time stamp of one-second resolution; an instance of the
# same job id whose new credential is stamped in that same second is refused ("Killing non-startable batch JobId=N:
# Job credential revoked", the job FAILED with no log; a CI failure of the requeue test, which released the hold
# within 0.1 s of the requeue). SLURM's own hold (~2 minutes) is that guard; the test keeps 2 s of it.
RELEASE_AFTER_S = 2.0


def release_requeue_holds() -> None:
    """Start every job SLURM holds after a requeue (reason BeginTime, ~2 minutes otherwise) once it has been held
    for RELEASE_AFTER_S."""
    out = subprocess.run(["squeue", "-h", "-o", "%i %r"], capture_output=True, text=True).stdout
    now = time.monotonic()
    for line in out.splitlines():
        jid, _, reason = line.partition(" ")
        if reason.strip() != "BeginTime":
            continue
        since = _HELD_SINCE.setdefault(jid, now)
        if now - since >= RELEASE_AFTER_S:
            subprocess.run(["scontrol", "update", f"JobId={jid}", "StartTime=now"], capture_output=True)
            del _HELD_SINCE[jid]  # a later requeue of the same job is a new hold


def _has_checkpoint(run_dir: Path) -> bool:
    # the .sha256 is written after its checkpoint: its presence means the checkpoint is complete
    return any((run_dir / "checkpoints").glob("step-*.ckpt.sha256"))


def submission_script(sweep_dir: Path) -> str:
    return next(sweep_dir.rglob("*_submission.sh")).read_text()


def assert_signal_directives(script: str, executor: dict) -> None:
    """The submission asks SLURM for the signal the test sends, signal_delay_s before its time limit."""
    assert f"#SBATCH --signal={REQUEUE_SIGNAL}@{executor['signal_delay_s']}" in script, script
    assert re.search(rf"^#SBATCH --time={executor['timeout_min']}$", script, re.M), script


def assert_same_curve(run_dir: Path, reference_dir: Path) -> None:
    """The whole metrics table equal bit for bit, every column but the wall-clock ones."""
    a, b = (pd.read_parquet(d / "metrics.parquet") for d in (run_dir, reference_dir))
    assert list(a.columns) == list(b.columns)
    drop = [c for c in WALL_CLOCK_COLUMNS if c in a.columns]
    pd.testing.assert_frame_equal(a.drop(columns=drop), b.drop(columns=drop), check_exact=True)


def assert_same_weights(run_dir: Path, reference_dir: Path) -> None:
    """The final weights equal tensor by tensor (weights.pt's bytes differ: torch.save writes a random
    serialization id)."""
    import torch

    a, b = (torch.load(d / "weights.pt", map_location="cpu", weights_only=True) for d in (run_dir, reference_dir))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])]


def requeue_grid(path: Path, corpus: Path, out: Path, devices: int = 1, executor: dict | None = None) -> Path:
    """The grid of the requeue tests: one anGPT run of REQUEUE_TOKENS, on `devices` CPU processes."""
    import yaml

    from tests.sweep.conftest import write_grid

    g = write_grid(path, corpus, out, arch=["angpt"], tokens=[REQUEUE_TOKENS], executor=executor or SLURM)
    d = yaml.safe_load(g.read_text())
    d["base"]["train"] = {**REQUEUE_TRAIN, "devices": devices}
    g.write_text(yaml.safe_dump(d))
    return g
