"""ant/analysis/study.py end to end at reduced size: an HP part and a part that trains at the tuned values, real runs,
committed tables, tuned.yaml, the skip-what-is-committed rule a fresh clone relies on, and the report."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from ant.analysis import study, study_tables
from ant.analysis.study_tables import read_curves, shard_paths
from tests.sweep.conftest import corpus  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow


def _grid(path, text, out, grid: dict) -> str:
    doc = {
        "name": path.stem,
        "out_dir": str(out),
        "base": {
            "data": {
                "corpus": str(text),
                "tokenizer": "bytes",
                "seq_len": 32,
                "val_tokens": 2048,
                "cache_dir": str(path.parent / "cache"),
            },  # fmt: skip
            "train": {"device": "cpu"},
        },
        "grid": grid,
        "executor": {"name": "local", "concurrency": 2, "threads_per_run": 1},
    }
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.fixture
def small_study(tmp_path, corpus, monkeypatch):  # noqa: F811
    root = tmp_path / "results" / "study"
    tuned = root / "tuned.yaml"
    monkeypatch.setattr(study, "STUDY", root)
    monkeypatch.setattr(study, "TUNED", tuned)
    common = {"arch": ["gptplus", "angpt"], "size": ["tiny0"], "seed": [0]}
    hp = _grid(tmp_path / "hp.yaml", corpus, root / "runs" / "main",
               {**common, "tokens": [6144], "batch_size": [4], "lr": [3e-3, 1e-2, 3e-2]})  # fmt: skip
    tuned_spec = {"from_study": str(tuned)}
    budgets = _grid(tmp_path / "budgets.yaml", corpus, root / "runs" / "main",
                    {**common, "tokens": [3072, 12288], "batch_size": tuned_spec, "lr": tuned_spec})  # fmt: skip
    parts = (
        study.Part("hp", hp, "main", "C2, C3"),
        study.Part("speedup", budgets, "main", "C1", needs_tuned=True),
    )
    monkeypatch.setattr(study, "PARTS", parts)
    monkeypatch.setattr(study, "BY_NAME", {p.name: p for p in parts})
    return root


def test_parts_run_commit_tune_and_skip_what_is_committed(small_study, capsys):
    root = small_study
    # before the hp part, the later part is planned with provisional HPs
    [hp, sp] = study.plan(list(study.PARTS))
    assert (hp["runs"], hp["todo"], sp["runs"], sp["provisional"]) == (6, 6, 4, True)

    assert study.main(["run"]) == 0
    runs = pd.read_parquet(root / "main" / "runs.parquet")
    curves = read_curves(root / "main")
    assert len(runs) == 10 and set(runs["status"]) == {"completed"}
    assert set(curves["run_id"]) == set(runs["run_id"]) and curves["val_loss"].notna().any()
    # one append-only shard per merge, each with only the runs that merge added (the second part's merge collects
    # the first part's folders too); no rewritten whole-group file
    shards = shard_paths(root / "main")
    assert not (root / "main" / "curves.parquet").exists() and len(shards) == 2
    assert [pd.read_parquet(x)["run_id"].nunique() for x in shards] == [6, 4]
    # tuned.yaml holds each arch's best grid point (lowest final loss among its three LRs)
    tuned = yaml.safe_load((root / "tuned.yaml").read_text())
    for arch in ("gptplus", "angpt"):
        scan = runs[(runs["arch"] == arch) & (runs["tokens"] == 6144)]
        best = scan.loc[scan["final_val_loss"].idxmin()]
        assert tuned[arch]["tiny0"]["lr"] == pytest.approx(best["lr"])
        at_tuned = runs[(runs["arch"] == arch) & (runs["tokens"] != 6144)]
        assert set(at_tuned["lr"]) == {best["lr"]} and set(at_tuned["batch_size"]) == {4}
    log = yaml.safe_load((root / "parts.json").read_text())
    assert log["hp"]["ran"] == 6 and log["hp"]["wall_s"] > 0 and log["hp"]["est_wall_s"] > 0

    # a fresh clone: run folders gone, committed tables kept -> nothing to train, nothing rewritten
    shutil.rmtree(root / "runs")
    before = (root / "main" / "runs.parquet").read_bytes()
    capsys.readouterr()
    assert study.main(["run"]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped") == 2 and not (root / "runs").exists()
    assert (root / "main" / "runs.parquet").read_bytes() == before
    assert shard_paths(root / "main") == shards
    assert [p["todo"] for p in study.plan(list(study.PARTS))] == [0, 0]


def test_unknown_part_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as e:
        study.main(["run", "--part", "nope"])
    assert e.value.code == 2 and "invalid choice" in capsys.readouterr().err


def test_later_seeds_at_the_tuned_point_do_not_retune(small_study, capsys):
    """Only the HP grid's own runs rank. A later part's extra seeds at the tuned point (worse by the winner's curse)
    once re-ranked the entry, which renames every run planned from it (the v2-speedup bug)."""
    root = small_study
    rows = []
    for lr, loss in ((3e-3, 1.01), (1e-2, 1.00), (3e-2, 1.20)):  # the HP grid, seed 0: lr 1e-2 wins by 0.01
        rows.append({"lr": lr, "seed": 0, "final_val_loss": loss})
    rows += [{"lr": 1e-2, "seed": s, "final_val_loss": 1.05} for s in (1, 2, 3)]  # a later part's seeds
    runs = pd.DataFrame(
        [{"run_id": f"r{i}", "arch": a, "size": "tiny0", "tokens": 6150, "cfg.train.tokens": 6144, "batch_size": 4,
          "status": "completed", **r} for a in ("gptplus", "angpt") for i, r in enumerate(rows)]
    )  # fmt: skip
    (root / "main").mkdir(parents=True)
    runs.to_parquet(root / "main" / "runs.parquet")
    tuned = study.write_tuned("main", root / "tuned.yaml")
    for arch in ("gptplus", "angpt"):
        assert (tuned[arch]["tiny0"]["lr"], tuned[arch]["tiny0"]["n_seeds"]) == (1e-2, 1)


def test_a_written_tuned_entry_is_kept(small_study, capsys):
    """Runs added to the HP cells later (edge extension after the fact) may rank another point first; the entry
    stays, since the runs planned from it carry it in their ids. New (arch, size) pairs are added."""
    root = small_study
    rows = [{"lr": lr, "final_val_loss": loss} for lr, loss in ((3e-3, 1.02), (1e-2, 1.00), (3e-2, 1.20))]
    runs = pd.DataFrame(
        [{"run_id": f"r{i}", "arch": a, "size": "tiny0", "tokens": 6150, "cfg.train.tokens": 6144, "batch_size": 4,
          "seed": 0, "status": "completed", **r} for a in ("gptplus", "angpt") for i, r in enumerate(rows)]
    )  # fmt: skip
    (root / "main").mkdir(parents=True)
    runs.to_parquet(root / "main" / "runs.parquet")
    written = {"gptplus": {"tiny0": {"lr": 3e-3, "batch_size": 4, "final_val_loss": 1.02, "n_seeds": 1}}}
    (root / "tuned.yaml").write_text(yaml.safe_dump(written))
    tuned = study.write_tuned("main", root / "tuned.yaml")
    assert tuned["gptplus"]["tiny0"] == written["gptplus"]["tiny0"]  # kept, though lr 1e-2 now ranks first
    assert tuned["angpt"]["tiny0"]["lr"] == 1e-2  # added
    assert yaml.safe_load((root / "tuned.yaml").read_text()) == tuned
    assert "gptplus tiny0 stays at lr 0.003, batch 4" in capsys.readouterr().out


def test_committed_runs_give_the_planner_measured_rates_packs_found_again():
    """A fresh clone has no run folders: the committed table's finished runs become the planner's measurements.
    A packed worker's runs share their finish time and tokens/s, and its wall time is the worker's, so each run's
    share is wall / K; an unpacked run of the same shape finishing elsewhere stays alone."""
    from ant.sweep.throughput import Throughput

    def row(rid, lr, fin, tps, wall, status="completed"):
        return {"run_id": rid, "status": status, "flops": 6e11, "wall_time_s": wall, "tokens": 1_000_000,
                "arch": "angpt", "size": "tiny1h8", "batch_size": 8, "seq_len": 32, "device": "cpu",
                "world_size": 1, "finished_at": fin, "tokens_per_s": tps, "lr": lr}  # fmt: skip

    runs = pd.DataFrame([row("a", 0.01, "2026-12-08T00:01:00", 3000.0, 300.0),
                         row("b", 0.02, "2026-12-08T00:01:00", 3000.0, 300.1),
                         row("c", 0.04, "2026-12-08T00:01:00", 3000.0, 300.2),
                         row("d", 0.01, "2026-12-08T00:09:00", 5000.0, 200.0),
                         row("e", 0.01, "2026-12-08T00:09:30", 1.0, 1.0, status="diverged")])  # fmt: skip
    got = {s["run_id"]: s for s in study_tables.measured_summaries(runs)}
    assert set(got) == {"a", "b", "c", "d"}
    assert got["a"]["packed_with"] == ["a", "b", "c"] and got["d"]["packed_with"] is None
    tp = Throughput(list(got.values()), bench_dir=tmp_missing())
    packed = tp.same_shape[(True, "cpu", "angpt", "tiny1h8", 8, 32)]
    assert packed == pytest.approx([1e6 / 100.0, 1e6 / (300.1 / 3), 1e6 / (300.2 / 3)])  # tokens / (wall / K)
    assert tp.same_shape[(False, "cpu", "angpt", "tiny1h8", 8, 32)] == [1e6 / 200.0]
    assert study_tables.measured_summaries(runs.drop(columns=["finished_at"])) == []  # a table without the columns


def tmp_missing():
    from pathlib import Path

    return Path("/nonexistent-bench-dir")
