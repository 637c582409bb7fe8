"""collect(): run folders in the ant.train format -> runs and curves tables, robust to broken folders."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from ant.config import RunConfig
from ant.laws.collect import collect, completed, load
from ant.laws.synthetic import SynthLaw, write_run


@pytest.fixture
def results(tmp_path):
    law = SynthLaw()
    for seed in (0, 1):
        write_run(tmp_path / "runs", law, arch="angpt", size="tiny3", num_params=2e6, tokens=40_000_000,
                  batch_size=8, lr=3e-3, seed=seed)  # fmt: skip
    write_run(tmp_path / "runs", law, arch="gptplus", size="tiny4", num_params=4e6, tokens=80_000_000,
              batch_size=16, lr=1e-3, status="diverged")  # fmt: skip
    return tmp_path


def test_one_row_per_run_with_config_and_summary_fields(results):
    runs, curves = collect(results)
    assert len(runs) == 3
    assert set(runs["arch"]) == {"angpt", "gptplus"}
    a = runs[runs["arch"] == "angpt"].iloc[0]
    assert a["num_params"] == 2_000_000 and a["tokens"] == 40_000_000 and a["batch_size"] == 8
    assert a["tokens_per_param"] == pytest.approx(20.0)
    assert a["flops"] == pytest.approx(6 * 2e6 * 40e6)
    assert a["cfg.optim.lr"] == pytest.approx(3e-3) and a["cfg.model.size"] == "tiny3"
    # the final loss in the table is the summary's, which equals the last val_loss of the curve
    c = curves[curves["run_id"] == a["run_id"]]
    assert a["final_val_loss"] == pytest.approx(c.sort_values("step")["val_loss"].iloc[-1])
    assert np.allclose(c["flops"], c["tokens"] * 6 * 2e6)
    assert len(completed(runs)) == 2  # the diverged run has no usable final loss


def test_writes_parquet_atomically_and_load_reads_it_back(results):
    runs, _ = collect(results)
    saved = pd.read_parquet(results / "runs.parquet")
    assert list(saved["run_id"]) == list(runs["run_id"])
    assert not list(results.glob(".*.tmp"))  # no temp files left behind
    # a results folder shipped without its runs still loads
    import shutil

    shutil.rmtree(results / "runs")
    runs2, curves2 = load(results)
    assert len(runs2) == 3 and len(curves2) > 0


def test_broken_folders_are_reported_and_skipped(results):
    (results / "runs" / "empty").mkdir()
    bad = results / "runs" / "badsummary"
    bad.mkdir()
    (bad / "config.yaml").write_text(RunConfig().to_yaml())
    (bad / "summary.json").write_text("{not json")
    nosum = results / "runs" / "running"
    nosum.mkdir()
    (nosum / "config.yaml").write_text(RunConfig().to_yaml())
    with pytest.warns(UserWarning, match="skipped 2 run folder"):
        runs, _ = collect(results)
    assert "running" in set(runs["run_id"])
    assert runs.set_index("run_id").loc["running", "status"] == "missing_summary"


def test_summary_values_override_config_and_folder_name_is_the_id(results):
    run = next((results / "runs").glob("angpt*s0"))
    s = json.loads((run / "summary.json").read_text())
    s["run_id"], s["tokens"] = "something-else", 123
    (run / "summary.json").write_text(json.dumps(s))
    runs, _ = collect(results, write=False)
    row = runs.set_index("run_id").loc[run.name]
    assert row["tokens"] == 123


def test_empty_results_give_empty_tables(tmp_path):
    runs, curves = collect(tmp_path)
    assert runs.empty and curves.empty
    assert not (tmp_path / "runs.parquet").exists()
