"""Waiting on SLURM jobs (ant.sweep.slurm.finished) on the real local cluster: submitit's `done()` reads sacct,
which during a requeue can report the old instance as ended; a waiter that trusted it read "failed: srun: task 0:
Terminated" from a job about to resume (a CI failure of the requeue test). `finished` asks squeue, which holds a
live job whatever sacct says. Here sacct's transient is played by a watcher that says "done" at once, against a
real job that squeue shows pending or running."""

from __future__ import annotations

import subprocess

import pytest

from ant.sweep.slurm import LIVE_STATES, finished, queue_state
from tests.sweep.slurm_support import slurm_marks

pytestmark = [*slurm_marks(), pytest.mark.timeout(120)]


def _sbatch(tmp_path, seconds: int) -> str:
    out = subprocess.run(["sbatch", "--parsable", "-o", str(tmp_path / "%j.out"), "--wrap", f"sleep {seconds}"],
                         capture_output=True, text=True, check=True, timeout=30).stdout  # fmt: skip
    return out.strip().split(";")[0]


def test_a_job_squeue_holds_is_not_finished_whatever_sacct_says(tmp_path, monkeypatch):
    import submitit

    job_id = _sbatch(tmp_path, 60)
    try:
        job = submitit.SlurmJob(folder=tmp_path, job_id=job_id)
        # sacct's transient (the old instance reported ended); the watcher is shared by every SlurmJob: patched
        monkeypatch.setattr(job.watcher, "is_done", lambda *a, **k: True)
        assert job.done()  # submitit alone would stop waiting here
        assert queue_state(job_id) in LIVE_STATES
        assert not finished(job)
    finally:
        subprocess.run(["scancel", job_id], capture_output=True, timeout=30)
    # once squeue lets go of it (cancelled, no result), the job is finished: a failure the waiter reports
    for _ in range(60):
        if queue_state(job_id) not in LIVE_STATES:
            break
        subprocess.run(["sleep", "0.5"])
    assert queue_state(job_id) == ""
    assert finished(job)


def test_an_unknown_job_id_is_gone_not_unknown():
    assert queue_state("987654321") == ""
