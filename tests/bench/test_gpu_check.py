"""scripts/gpu_check.sh: valid bash, and its bookkeeping (steps.tsv, summary.json, exit code) works without a GPU.

The full CPU dry run of the same path (tiny sizes, a 2-run sweep) takes ~3 minutes on 2 cores; its command is in
the script's header and in results/bench/README.md."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gpu_check.sh"


def test_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_skipped_and_failing_steps_are_recorded_and_the_script_goes_on(tmp_path):
    out = tmp_path / "out"
    # skip everything that needs the GPU path; only `collect` runs (and finds no runs): every step is recorded,
    # the summary is written, and the exit code says whether any step failed.
    env = {
        **os.environ,
        "GPU_CHECK_SKIP": "env bench corpus sweep",
        "GPU_CHECK_SWEEP": str(tmp_path / "missing.yaml"),
        "GPU_CHECK_SIZES": "tiny1",
    }
    env.pop("OUT", None)
    p = subprocess.run(["bash", str(SCRIPT), str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    steps = {r["step"]: r for r in csv.DictReader((out / "steps.tsv").open(), delimiter="\t")}
    assert steps["env"]["status"] == "skipped" and steps["bench-tiny1"]["status"] == "skipped"
    assert steps["sweep-config"]["status"] == "skipped"  # "sweep-config" falls under "sweep"
    summary = json.loads((out / "summary.json").read_text())
    assert [s["step"] for s in summary["steps"]] == list(steps)
    failed = [s for s in steps.values() if s["status"] not in ("ok", "skipped")]
    # `collect` finds no runs under the missing sweep: a failed step, recorded, and the exit code says so
    assert failed and p.returncode != 0, (steps, p.stdout[-2000:])
    assert "outputs in" in p.stdout
    # The device tool returns at most 8 files and nothing in subfolders: logs travel in one archive.
    entries = list(out.iterdir())
    assert len(entries) <= 8 and all(e.is_file() for e in entries), entries
    with tarfile.open(out / "detail.tar.gz") as tar:
        names = tar.getnames()
    assert "detail/logs/collect.log" in names and "detail/nvidia-smi.txt" in names, names


@pytest.mark.slow
def test_cpu_dry_run_of_every_step(tmp_path):
    """The whole script on the CPU path, tiny and eager: env, bench, corpus, a 2-run sweep, collect, the candidate
    bench. The script only ever runs on a scarce device lease, so it must not rot unseen between leases."""
    out = tmp_path / "out"
    env = {
        **os.environ,
        "PYTHON": sys.executable,
        "TMPDIR": str(tmp_path),
        "GPU_CHECK_DEVICE": "cpu",
        "GPU_CHECK_DTYPE": "fp32",
        "GPU_CHECK_COMPILE": "0",
        "GPU_CHECK_SIZES": "tiny1",
        "GPU_CHECK_SEQ": "64",
        "GPU_CHECK_BATCH": "4",
        "GPU_CHECK_STEPS": "3",  # >= --reps (3)
        "GPU_CHECK_SWEEP_SIZES": "tiny1",
        "GPU_CHECK_SWEEP_TOKENS": "20000",
        "GPU_CHECK_SWEEP_VAL_TOKENS": "8192",  # the grid's 131k cost ~40 s a run on CPU, more than all else
        "GPU_CHECK_CORPUS_MB": "0.5",  # plenty for 28k tokens; 2 MB cost 7 s more (parsing, BPE, tokenizing)
        "GPU_CHECK_BUDGET_S": "600",
        # the session's TorchInductor cache (tests/conftest.py), kept between CI runs: the compiled bench step
        # compiles the same tiny graph each time
        "GPU_CHECK_INDUCTOR_CACHE": os.environ["TORCHINDUCTOR_CACHE_DIR"],
    }
    env.pop("OUT", None)
    p = subprocess.run(["bash", str(SCRIPT), str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    steps = {r["step"]: r["status"] for r in csv.DictReader((out / "steps.tsv").open(), delimiter="\t")}
    assert p.returncode == 0 and set(steps.values()) == {"ok"}, (steps, p.stdout[-3000:])
    assert list(steps) == ["env", "bench-tiny1", "corpus", "sweep-config", "sweep", "collect",
                           "bench-tiny1-project-compiled"]  # fmt: skip
    bench = json.loads((out / "bench-tiny1.json").read_text())
    assert [r["arch"] for r in bench["results"]] == ["gptplus", "angpt", "ngpt"]
    assert all(r["step_time_ms"] > 0 and r["lightning_overhead"] is not None for r in bench["results"])
    runs = pd.read_parquet(out / "runs.parquet")
    assert sorted(runs["arch"]) == ["angpt", "gptplus"] and set(runs["status"]) == {"completed"}
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["bench"]) == {"bench-tiny1", "bench-tiny1-project-compiled"}
    assert summary["bench"]["bench-tiny1"]["partial"] is False
    assert len(list(out.iterdir())) <= 8
    assert not list(tmp_path.glob("ant-gpu-check.*"))  # the work folder is removed
