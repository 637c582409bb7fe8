"""`ant sweep --status` / `--dry-run` from one pass over the run folders: the same states as the per-run reading,
`--json` for scripts, no model built and no Lightning imported."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ant.cli import main
from ant.sweep.grid import Grid
from ant.sweep.locks import RunLock, lock_dir, record_attempt
from ant.sweep.orchestrator_bench import Writer
from ant.sweep.plan import build_plan, run_state
from tests.sweep.conftest import write_grid

# one run per case: (what is on disk, the SLURM job's state or None) -> the state --status has always reported
CASES = [
    ("done", None, "done"),
    ("diverged", None, "diverged"),
    ("failed", None, "failed"),  # summary.json says failed
    ("failed_attempt", None, "failed"),  # no summary, the attempt log's last line is a failed end
    ("interrupted", None, "interrupted"),  # a folder without a final summary, nobody on the lock
    ("running", None, "running"),  # a process holds the run's lock
    ("attempt_only", None, "interrupted"),  # an attempt started, no folder yet
    ("missing", None, "missing"),
    ("missing", "PENDING", "queued"),
    ("missing", "RUNNING", "running"),
    ("done", "RUNNING", "done"),  # a finished summary wins over a stale queue state
    ("interrupted", "FAILED", "interrupted"),
]


@pytest.fixture
def sweep(tmp_path, corpus):
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["angpt"], seed=list(range(len(CASES))))
    cfgs = Grid.from_yaml(g).expand()
    writer, jobs, held = Writer(), {}, []
    for cfg, (disk, slurm, _) in zip(cfgs, CASES):
        if disk == "attempt_only":
            record_attempt(lock_dir(cfg.out_dir), cfg.run_id(), event="start", job_id=None)
        else:
            writer.write(cfg, "interrupted" if disk == "running" else disk)
        if disk == "running":
            held.append(RunLock(lock_dir(cfg.out_dir), cfg.run_id()))
            assert held[-1].acquire()
        if slurm:
            jobs[cfg.run_id()] = {"job_id": f"7_{len(jobs)}", "slurm_state": slurm}
    yield g, cfgs, jobs
    for lock in held:
        lock.release()


def test_states_from_one_pass_equal_the_per_run_reading(sweep):
    g, cfgs, jobs = sweep
    rows, _ = build_plan(cfgs, jobs=jobs)
    assert [r.state for r in rows] == [want for _, _, want in CASES]
    assert [r.state for r in rows] == [run_state(c, jobs)[0] for c in cfgs]
    done = rows[0]
    assert done.final_val_loss is not None and rows[8].job == jobs[cfgs[8].run_id()]["job_id"]


def test_status_json(sweep, capsys):
    g, cfgs, _ = sweep
    assert main(["sweep", str(g), "--status", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)  # stdout is the JSON document alone
    assert [r["run_id"] for r in doc["runs"]] == [c.run_id() for c in cfgs]
    assert [r["state"] for r in doc["runs"]] == [run_state(c)[0] for c in cfgs]
    assert sum(doc["counts"].values()) == len(cfgs) and doc["counts"]["done"] == 2
    assert doc["total_flops"] == pytest.approx(sum(r["flops"] for r in doc["runs"]))
    assert doc["est_todo_s"] <= doc["est_run_s"] and doc["time_estimate_from"]
    assert {"num_params", "tokens", "lr", "seed", "est_s", "final_val_loss"} <= set(doc["runs"][0])
    # the table says the same
    assert main(["sweep", str(g), "--status"]) == 0
    text = capsys.readouterr().out
    assert f"{len(cfgs)} runs: " + ", ".join(f"{v} {k}" for k, v in doc["counts"].items()) in text


def test_dry_run_json_and_json_needs_a_mode(tmp_path, corpus, capsys):
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, seed=[0, 1])
    assert main(["sweep", str(g), "--dry-run", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["sweep"] == "t" and doc["counts"] == {"missing": 4} and len(doc["runs"]) == 4
    assert main(["sweep", str(g), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--json" in err and "--dry-run" in err
    assert not (tmp_path / "runs").exists()


def test_planning_builds_no_model(tmp_path, corpus, monkeypatch):
    from ant.models.base import Transformer

    def refuse(*a, **k):
        raise AssertionError("a model was built")

    monkeypatch.setattr(Transformer, "__init__", refuse)
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, size=["tiny1", "tiny3"], seed=[0, 1])
    cfgs = Grid.from_yaml(g).expand()
    rows, _ = build_plan(cfgs)
    assert len(rows) == 8 and all(r.num_params > 0 and r.flops > 0 for r in rows)


def test_dry_run_and_status_do_not_import_lightning(sweep):
    g = sweep[0]
    code = (f"import sys; from ant.cli import main; main(['sweep', {str(g)!r}, '--dry-run']); "
            f"main(['sweep', {str(g)!r}, '--status', '--json']); "
            "import torch; print('LIGHTNING', 'lightning' in sys.modules, 'CUDA', torch.cuda.is_initialized())"
            )  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "LIGHTNING False CUDA False" in out
