"""ant.runfolder: the run folder's format in one place. Every file name is spelled there only, JSON is NaN-safe
and atomic, the summary reads back typed, and importing it loads neither torch nor numpy."""

from __future__ import annotations

import ast
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from ant import runfolder
from ant.runfolder import FINISHED, RunStatus, Summary, jsonable

ROOT = Path(__file__).resolve().parents[1]
NAMES = {runfolder.CONFIG, runfolder.SUMMARY, runfolder.METRICS, runfolder.ENV, runfolder.WEIGHTS,
         runfolder.CHECKPOINTS, runfolder.LOGS, runfolder.BRANCH, runfolder.BRANCH_POINTS}  # fmt: skip


def test_every_run_folder_name_is_spelled_only_in_runfolder():
    """A string literal that is exactly a run-folder file name, anywhere in ant/ but runfolder.py, is a second
    spelling (prose that mentions summary.json is fine: it is not the name alone)."""
    found = []
    for path in sorted((ROOT / "ant").rglob("*.py")):
        if path.name == "runfolder.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in NAMES:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not found, found


def test_jsonable_is_strict_json_for_what_runs_and_fits_hold():
    obj = {"loss": math.nan, "inf": -math.inf, "ok": 1.5, "np": np.float64(2.5), "npnan": np.float32("nan"),
           "i": np.int64(3), "b": np.bool_(True), "arr": np.array([1.0, np.nan]), "t": (1, 2), 4: "key",
           "na": pd.NA, "nat": pd.NaT, "status": RunStatus.COMPLETED, "nested": [{"x": math.inf}]}  # fmt: skip
    out = jsonable(obj)
    text = json.dumps(out, allow_nan=False)  # raises on any NaN left
    assert json.loads(text) == {"loss": None, "inf": None, "ok": 1.5, "np": 2.5, "npnan": None, "i": 3, "b": True,
                                "arr": [1.0, None], "t": [1, 2], "4": "key", "na": None, "nat": None,
                                "status": "completed", "nested": [{"x": None}]}  # fmt: skip
    assert type(out["np"]) is float and type(out["i"]) is int  # yaml.safe_dump takes them


def test_summary_round_trip_and_typed_accessors(tmp_path):
    s = {"run_id": "r", "status": "diverged", "final_val_loss": math.nan, "weights_sha256": "ab",
         "skipped_checkpoints": ["x"]}  # fmt: skip
    runfolder.write_summary(tmp_path, s)
    assert [p.name for p in tmp_path.iterdir()] == [runfolder.SUMMARY]  # no temp file left
    assert runfolder.read_summary(tmp_path)["final_val_loss"] is None
    got = Summary.read(tmp_path)
    assert got.status is RunStatus.DIVERGED and got.status in FINISHED and got.finished
    assert got.final_val_loss is None and got.text("weights_sha256") == "ab" and got.text("nope") is None
    assert got.skipped_checkpoints == ["x"]
    runfolder.write_summary(tmp_path, {**s, "status": "running", "final_val_loss": 2.0}, in_place=True)
    assert Summary.read(tmp_path).status is RunStatus.RUNNING and Summary.read(tmp_path).final_val_loss == 2.0
    (tmp_path / runfolder.SUMMARY).write_text('{"status": "comp')  # cut short
    assert Summary.read(tmp_path) is None and Summary.read(tmp_path / "missing") is None
    (tmp_path / runfolder.SUMMARY).write_text('{"status": "exploded"}')
    assert Summary.read(tmp_path).status is None


def test_one_sha256_file(tmp_path):
    from ant.data import fetch
    from ant.train import io

    p = tmp_path / "f"
    p.write_bytes(b"x" * (5 << 20))
    assert runfolder.sha256_file(p) == hashlib.sha256(p.read_bytes()).hexdigest()
    assert fetch.sha256_file is io.sha256_file is runfolder.sha256_file


def test_import_loads_neither_torch_nor_numpy():
    code = "import sys, ant.runfolder; print(sorted({m.split('.')[0] for m in sys.modules}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "torch" not in out and "numpy" not in out
