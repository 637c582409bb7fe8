"""Watching a sweep while it trains (issue 13): `ant sweep --status` shows step, last val loss, tokens/s, the age
of the newest metric and the commit of a running run, read from its folder; a sweep killed mid-run leaves a
non-empty metrics.parquet; the local executor's sweep-level line counts runs and tokens."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ant.sweep.grid import Grid
from ant.sweep.progress import SweepMonitor, env_commit, last_metrics
from tests.sweep.conftest import write_grid

ROOT = Path(__file__).resolve().parents[2]


def _status(grid: Path) -> dict:
    r = subprocess.run([sys.executable, "-m", "ant.cli", "sweep", str(grid), "--status", "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return {row["run_id"]: row for row in json.loads(r.stdout)["runs"]}


@pytest.mark.slow
def test_status_of_a_running_run_then_kill_leaves_partial_metrics(tmp_path, corpus):
    # one run at a time, long enough (~1,500 steps of tiny1) to be caught between evaluations
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, tokens=[400_000], arch=["gptplus"],
                   executor={"name": "local", "concurrency": 1, "threads_per_run": 1})  # fmt: skip
    [cfg] = Grid.from_yaml(g).expand()
    run_dir = cfg.run_dir()
    sweep = subprocess.Popen([sys.executable, "-m", "ant.cli", "sweep", str(g)], cwd=ROOT, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
    try:
        deadline = time.time() + 300
        live = None
        while time.time() < deadline and sweep.poll() is None:
            live = last_metrics(run_dir)
            if live and live.val_loss is not None and live.step and live.step >= 20:
                break
            time.sleep(0.5)
        assert live is not None and live.val_loss is not None, "no evaluation reached metrics.parquet while running"
        row = _status(g)[cfg.run_id()]
        assert row["state"] == "running"
        assert row["step"] >= live.step and 0 < row["step"] < cfg.steps
        assert row["final_val_loss"] is not None and 0 < row["final_val_loss"] < 10
        assert row["tokens_per_s"] > 0 and 0 <= row["age_s"] < 120
        # env.json is written by ant.train at every start; the commit column reads it: this checkout's HEAD
        head_commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                     text=True).stdout.strip()  # fmt: skip
        assert (run_dir / "env.json").is_file(), sorted(p.name for p in run_dir.iterdir())
        assert row["commit"] == env_commit(run_dir) and row["commit"].rstrip("+") == head_commit[:10], row
        table = subprocess.run([sys.executable, "-m", "ant.cli", "sweep", str(g), "--status"], cwd=ROOT,
                               capture_output=True, text=True, timeout=120).stdout  # fmt: skip
        head = next(ln for ln in table.splitlines() if ln.startswith("run_id"))
        assert head.split()[-5:] == ["val_loss", "step", "tok/s", "age", "commit"], head
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)  # the sweep and its worker, mid-run
        sweep.communicate(timeout=60)
    metrics = pd.read_parquet(run_dir / "metrics.parquet")
    assert len(metrics) > 0 and metrics["val_loss"].notna().any()
    assert metrics["step"].max() < cfg.steps
    row = _status(g)[cfg.run_id()]
    assert row["state"] == "interrupted" and row["step"] >= metrics["step"].max() - 10
    assert row["final_val_loss"] is not None and row["tokens_per_s"] > 0


def test_sweep_line_counts_runs_and_tokens_from_run_folders(tmp_path, corpus):
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, seed=[0, 1])
    cfgs = Grid.from_yaml(g).expand()
    a, b = cfgs[0], cfgs[1]
    lines: list[str] = []
    mon = SweepMonitor(cfgs, workers=2, write=lines.append, tty=False, plain_every=3600)
    # one run has trained half its budget (its newest metrics row), one has finished
    b.run_dir().mkdir(parents=True)
    half = b.train.tokens // 2
    pd.DataFrame({"step": [1, 2], "tokens": [half // 2, half], "val_loss": [5.0, None],
                  "tokens_per_s": [100.0, 120.0]}).to_parquet(b.run_dir() / "metrics.parquet")  # fmt: skip
    mon.finished({"run_id": a.run_id(), "status": "completed", "tokens": a.train.tokens})
    mon.tick([b.run_id()])  # not forced and not due: a log file gets no line
    assert lines == []
    mon.tick([b.run_id()], force=True)
    [line] = lines
    total = len(cfgs)
    assert line.startswith(f"sweep: 1/{total} done, 1 running, 0 failed | ")
    tokens = sum(c.train.tokens for c in cfgs)
    assert f"({(a.train.tokens + half) / tokens:.0%})" in line and "ETA" in line
    got = last_metrics(b.run_dir())
    assert (got.step, got.tokens, got.val_loss, got.tokens_per_s) == (2, half, 5.0, 120.0)
    # a terminal gets one redrawn line, wiped before the next run's own line
    tty: list[str] = []
    mon_tty = SweepMonitor(cfgs, workers=2, write=tty.append, tty=True)
    mon_tty.tick([b.run_id()])
    mon_tty.clear()
    assert tty[0].startswith("\r\x1b[K") and tty[-1] == "\r\x1b[K"


def test_env_commit_is_the_last_start(tmp_path):
    (tmp_path / "env.json").write_text(json.dumps([{"git_commit": "a" * 40, "git_dirty": False},
                                                   {"git_commit": "b" * 40, "git_dirty": True}]))  # fmt: skip
    assert env_commit(tmp_path) == "b" * 10 + "+"
    (tmp_path / "env.json").write_text("not json")
    assert env_commit(tmp_path) is None


def test_collect_carries_the_commit_of_each_run(tmp_path):
    """`ant.laws.collect`'s runs table has git_commit / git_dirty from env.json's last entry (NaN without one), and
    an incremental collect picks up an env.json written after the first collect."""
    from ant.laws.collect import collect
    from ant.laws.synthetic import SynthSuite

    suite = SynthSuite(laws={"angpt": SynthSuite().laws["angpt"]}, sizes={"tiny4": SynthSuite().sizes["tiny4"]},
                       hp_archs=(), budget_multiples=(10, 20), compute_multiples=(), seeds=(0,))  # fmt: skip
    results = suite.write(tmp_path / "results")
    first, _ = collect(results)
    assert "git_commit" in first.columns and first["git_commit"].isna().all()
    run = results / "runs" / first["run_id"].iloc[0]
    (run / "env.json").write_text(json.dumps([{"git_commit": "a" * 40, "git_dirty": False},
                                              {"git_commit": "c" * 40, "git_dirty": True}]))  # fmt: skip
    again = collect(results)[0].set_index("run_id")
    assert again.loc[run.name, "git_commit"] == "c" * 40 and bool(again.loc[run.name, "git_dirty"]) is True
    assert again.drop(index=run.name)["git_commit"].isna().all()
