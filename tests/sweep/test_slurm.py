"""Against the real local SLURM cluster (scripts/slurm_local.sh start; `make test` starts it): job arrays, a
failing run, a time-limit requeue with an exact resume (the whole metrics table), and optuna workers as array tasks."""

from __future__ import annotations

import json
import re
import time

import pytest
import torch

from ant.sweep.grid import Grid
from ant.sweep.locks import read_attempts
from ant.sweep.plan import build_plan
from tests.sweep.conftest import write_grid
from tests.sweep.slurm_support import (
    SLURM,
    ant,
    assert_same_curve,
    assert_same_weights,
    assert_signal_directives,
    job_states,
    requeue_grid,
    sacct_states,
    slurm_marks,
    submission_script,
    sweep_releasing_requeue_holds,
)

pytestmark = slurm_marks()


@pytest.mark.skipif(torch.cuda.is_available(), reason="the failing runs are cuda runs on a machine without CUDA")
def test_array_completes_and_a_failing_run_is_reported(tmp_path, corpus):
    # 4 runs in one array; the 2 with train.device cuda fail inside their job on this CPU machine (a batch larger
    # than the corpus, used before, is now refused by `ant sweep` itself before submission: exit 2)
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, set={"train.device": ["cpu", "cuda"]}, executor=SLURM)
    runs = Grid.from_yaml(g).expand()
    good = [r.run_id() for r in runs if r.train.device == "cpu"]
    rc, out = ant("sweep", str(g))  # returns at once: submission only
    assert rc == 0 and "submitted 4 run(s) as SLURM array" in out, out
    # A second submission never submits a queued, running or done run again. Each of the two failing runs may
    # already have failed (they fail within seconds, independently), and failed runs are retried by design, so
    # 0, 1 or 2 are to run, and never a cpu one.
    rc, out = ant("sweep", str(g), "--wait")
    to_run = re.search(r"(\d+) to run", out)
    assert to_run and int(to_run.group(1)) in (0, 1, 2), out
    assert not any(run_id in out.split("to run", 1)[1] for run_id in good), out
    jobs = json.loads((tmp_path / "sweeps" / "t" / "jobs.json").read_text())
    assert len(jobs) == 4
    deadline = time.time() + 300
    while time.time() < deadline:
        states = sorted(r.state for r in build_plan(runs)[0])
        if states == ["done", "done", "failed", "failed"]:
            break
        time.sleep(2)
    assert states == ["done", "done", "failed", "failed"]
    for _ in range(20):  # accounting lags a little behind the jobs
        acct = sacct_states([j["job_id"] for j in jobs.values()])
        if sorted(acct.values()) == ["COMPLETED", "COMPLETED", "FAILED", "FAILED"]:
            break
        time.sleep(1)
    assert sorted(acct.values()) == ["COMPLETED", "COMPLETED", "FAILED", "FAILED"], acct
    rc, out = ant("sweep", str(g), "--status")
    assert rc == 0 and "2 done, 2 failed" in out and "slurm_job" in out, out
    # a job's .out file (stdout is no terminal there) has one plain line per log interval of its run
    step_line = re.compile(r"^step \d+/\d+  tokens [\d,]+  loss \d+\.\d{4}  .*tok/s [\d,]+  eta ", re.M)
    logs = [p.read_text(errors="replace") for p in (tmp_path / "sweeps").rglob("*.out")]
    assert sum(1 for text in logs if len(step_line.findall(text)) >= 2) >= 2, logs


def test_time_limit_requeues_and_resumes_exactly(tmp_path, corpus, requeue_reference):
    # the time-limit signal arrives after the first checkpoint (sent by the test: slurm_support): the job
    # checkpoints at the next step, submitit requeues it, the requeued job resumes and finishes the run
    ex = {**SLURM, "timeout_min": 5, "signal_delay_s": 15}
    g = requeue_grid(tmp_path / "g.yaml", corpus, tmp_path, executor=ex)
    cfg = Grid.from_yaml(g).expand()[0]
    rc, out = sweep_releasing_requeue_holds(g, interrupt=cfg.run_dir())
    assert rc == 0, out
    assert_signal_directives(submission_script(tmp_path / "sweeps"), ex)
    summary = json.loads((cfg.run_dir() / "summary.json").read_text())
    assert summary["status"] == "completed"
    assert 0 < summary["resumed_from_step"] < summary["steps"], summary  # the last job continued a checkpoint
    attempts = read_attempts(cfg.run_dir().parent / ".locks", cfg.run_id())
    assert any(a.get("status") == "interrupted" for a in attempts), attempts  # stopped by the USR2 signal
    assert "REQUEUED" in job_states(tmp_path / "sweeps" / "t", cfg.run_id())
    # the whole curve equals the same run trained without interruption, bit for bit (README)
    assert_same_curve(cfg.run_dir(), requeue_reference)
    ref = json.loads((requeue_reference / "summary.json").read_text())
    assert (summary["final_val_loss"], summary["steps"]) == (ref["final_val_loss"], ref["steps"])
    assert_same_weights(cfg.run_dir(), requeue_reference)


def test_tune_workers_as_array_tasks_share_one_journal_and_resume(tmp_path, corpus):
    import optuna

    from ant.sweep.tune import storage

    tune = {"trials": 4, "workers": 2, "study_dir": str(tmp_path / "studies"), "lr_min": 1e-3, "lr_max": 3e-2}
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["angpt"], executor=SLURM, tune=tune)
    rc, out = ant("tune", str(g), "--executor", "slurm")
    assert rc == 0 and "submitted 2 SLURM worker(s)" in out, out
    root = tmp_path / "studies" / "t"
    study = optuna.load_study(study_name="t-angpt-tiny1", storage=storage(root))
    assert len(study.trials) == 4 and len({t.number for t in study.trials}) == 4
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    assert all(t.state in finished for t in study.trials)
    locks = root / "runs" / ".locks"
    tasks = {a["job_id"] for t in study.trials for a in read_attempts(locks, t.user_attrs["run_id"])}
    assert len(tasks) == 2, tasks  # both array tasks told trials into the one journal
    rc, out = ant("tune", str(g), "--executor", "slurm", "--trials", "6")  # resume: only the 2 missing trials
    assert rc == 0 and "2 trial(s) to run" in out, out
    study = optuna.load_study(study_name="t-angpt-tiny1", storage=storage(root))
    assert len(study.trials) == 6
    assert (root / "best.yaml").is_file()
