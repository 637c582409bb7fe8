"""The orchestrator benchmark (python -m ant.sweep.orchestrator_bench) at N = 200, so that it cannot rot: every
command runs, the figures are sane, --status reports the states that were written, and the incremental collect
equals a full rebuild."""

from __future__ import annotations

import json

from ant.sweep import orchestrator_bench as bench


def test_benchmark_at_200_runs(tmp_path, capsys):
    out = tmp_path / "orchestrator.json"
    assert bench.main(["--runs", "200", "--verify", "--json", str(out), "--keep", str(tmp_path / "trees")]) == 0
    text = capsys.readouterr().out
    assert "sweep --dry-run" in text and "collect (full)" in text and "states match" in text
    doc = json.loads(out.read_text())
    assert doc["command"].startswith("python -m ant.sweep.orchestrator_bench --runs 200") and doc["cpus"] >= 1
    [r] = doc["grids"]
    assert r["runs"] == 200 and r["states_match"] and r["incremental_equals_full"]
    commands = [t["command"] for t in r["timings"]]
    assert commands == ["sweep --dry-run", "sweep --status", "collect (full)", f"collect (+{bench.NEW_RUNS} runs)"]
    for t in r["timings"]:
        assert t["rc"] == 0 and 0 < t["wall_s"] < 120
        assert abs(t["ms_per_run"] - 1e3 * t["wall_s"] / 200) < 1e-6
        assert 30 < t["peak_rss_mb"] < 1024  # the child's own peak, not the benchmark's
    # the mix of states that was written, as --status reports them (failed_attempt is failed)
    want = {s: round(share * 200) for s, share in bench.MIX.items()}
    assert r["states"]["failed"] == want["failed"] + want["failed_attempt"]
    assert r["states"]["running"] == want["running"] and r["states"]["missing"] == want["missing"]
    assert sum(r["states"].values()) == 200
    # the tree it measured is the ant.train format: collect's tables hold every run folder
    import pandas as pd

    runs = pd.read_parquet(tmp_path / "trees" / "n200" / "results" / "runs.parquet")
    assert len(runs) == r["run_folders"] and runs["status"].eq("completed").sum() >= 160


def test_runs_must_be_a_multiple_of_the_grid_block(tmp_path, capsys):
    assert bench.main(["--runs", "30", "--keep", str(tmp_path / "t")]) == 2
    err = capsys.readouterr().err
    assert "--runs" in err and "multiples of 40" in err
    assert not (tmp_path / "t").exists()
