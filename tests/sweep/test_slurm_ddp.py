"""A data-parallel run as a real SLURM job (issue 15): train.devices: 2 on the CPU makes the executor ask for
tasks_per_node 2; SLURM starts both tasks, each runs the same submitit call, Lightning's SLURMEnvironment wires them
into one DDP run (gloo). It completes with the one-device run's losses; a time-limit signal requeues it (rank 0
alone requeues) and the requeued job resumes from the checkpoint both ranks took part in, with the whole metrics
table of the uninterrupted 2-task job."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from ant.sweep.grid import Grid
from ant.sweep.locks import read_attempts
from tests.sweep.slurm_support import (
    SLURM,
    ant,
    assert_same_curve,
    assert_same_weights,
    assert_signal_directives,
    job_states,
    requeue_grid,
    slurm_marks,
    submission_script,
    sweep_releasing_requeue_holds,
)

pytestmark = slurm_marks()


@pytest.fixture(scope="module")
def ddp_job(tmp_path_factory, corpus):
    """The 2-task run submitted once and left alone: (its sweep folder, its run folder)."""
    root = tmp_path_factory.mktemp("ddp-job")
    g = requeue_grid(root / "g.yaml", corpus, root, devices=2)
    rc, out = ant("sweep", str(g), "--wait")
    assert rc == 0 and "submitted 1 run(s) as SLURM array" in out, out
    cfg = Grid.from_yaml(g).expand()[0]
    return root / "sweeps", cfg


def test_two_task_job_trains_one_ddp_run(ddp_job, requeue_reference):
    sweeps, cfg = ddp_job
    s = json.loads((cfg.run_dir() / "summary.json").read_text())
    assert s["status"] == "completed" and s["replica_sha256"], s  # both ranks ended with rank 0's weights
    assert s["world_size"] == 2 and s["resumed_from_step"] is None, s
    assert "#SBATCH --ntasks-per-node=2" in submission_script(sweeps)
    logs = sorted(sweeps.rglob("*.out"))
    assert len(logs) == 2, logs  # one log per task: rank 0 and rank 1
    assert "COMPLETED" in job_states(sweeps / "t", cfg.run_id())
    # the one-device run of the same config: the same curve up to the all-reduce's float rounding
    a, b = (pd.read_parquet(d / "metrics.parquet") for d in (cfg.run_dir(), requeue_reference))
    assert list(a["step"]) == list(b["step"])
    for col in ("train_loss", "val_loss"):
        assert a[col].to_numpy() == pytest.approx(b[col].to_numpy(), rel=1e-5, nan_ok=True), col


def test_time_limit_requeues_the_two_task_job_and_it_resumes_exactly(tmp_path, corpus, ddp_job):
    ex = {**SLURM, "timeout_min": 5, "signal_delay_s": 15}
    g = requeue_grid(tmp_path / "g.yaml", corpus, tmp_path, devices=2, executor=ex)
    cfg = Grid.from_yaml(g).expand()[0]
    rc, out = sweep_releasing_requeue_holds(g, interrupt=cfg.run_dir())
    assert rc == 0, out
    assert_signal_directives(submission_script(tmp_path / "sweeps"), ex)
    s = json.loads((cfg.run_dir() / "summary.json").read_text())
    assert s["status"] == "completed" and 0 < s["resumed_from_step"] < s["steps"], s
    attempts = read_attempts(cfg.run_dir().parent / ".locks", cfg.run_id())
    assert sum(a.get("event") == "start" for a in attempts) >= 2, attempts  # rank 0 alone records attempts
    assert any(a.get("status") == "interrupted" for a in attempts), attempts
    assert "REQUEUED" in job_states(tmp_path / "sweeps" / "t", cfg.run_id())
    # bit for bit against the same 2-task job run without interruption
    assert_same_curve(cfg.run_dir(), ddp_job[1].run_dir())
    assert_same_weights(cfg.run_dir(), ddp_job[1].run_dir())
