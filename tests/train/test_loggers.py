"""The W&B (offline) and MLflow loggers of `train.loggers` receive the rows of metrics.parquet, read back from
what each wrote under <run>/logs/ (the CSV and TensorBoard loggers: tests/train/test_watch.py). MLflow writes to a
SQLite store there (MLflow 3 refuses the old `file:` store) or to the user's MLFLOW_TRACKING_URI."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pandas as pd
import pytest

from ant.train import train
from tests.train.conftest import tiny_cfg

SHORT = {"tokens": 40 * 8 * 64, "ckpt_interval": 10, "eval_interval": 20, "diag_interval": 20}
COLUMNS = ("train_loss", "val_loss", "lr")


def _expected(run_dir: Path, column: str) -> pd.Series:
    m = pd.read_parquet(run_dir / "metrics.parquet")
    want = m.dropna(subset=[column]).set_index("step")[column]
    assert len(want) >= 2, column
    return want


def _mlflow_history(tracking_uri: str, run_name: str) -> dict[str, dict[int, float]]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri)
    (run,) = client.search_runs([client.get_experiment_by_name("ant").experiment_id])
    assert run.info.run_name == run_name
    return {c: {m.step: m.value for m in client.get_metric_history(run.info.run_id, c)} for c in COLUMNS}


def test_mlflow_logger_writes_a_sqlite_store_in_logs_with_the_rows(tmp_path, byte_tokens, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)  # nothing may land in the working directory (the old ./mlruns)
    r = train(tiny_cfg(tmp_path / "runs", train={**SHORT, "loggers": ["mlflow"]}), progress=False)
    assert r.status == "completed", r.summary.get("error")
    assert (r.run_dir / "logs" / "mlflow.db").is_file() and not (tmp_path / "mlruns").exists()
    got = _mlflow_history(f"sqlite:///{r.run_dir / 'logs' / 'mlflow.db'}", r.summary["run_id"])
    for column in COLUMNS:
        want = _expected(r.run_dir, column)
        assert sorted(got[column]) == list(want.index), column
        assert [got[column][s] for s in want.index] == want.tolist(), column  # the very floats (MLflow: float64)


def test_mlflow_logger_uses_the_users_tracking_uri(tmp_path, byte_tokens, monkeypatch):
    pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'mine.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    r = train(tiny_cfg(tmp_path / "runs", train={**SHORT, "loggers": ["mlflow"]}), progress=False)
    assert r.status == "completed", r.summary.get("error")
    assert not (r.run_dir / "logs" / "mlflow.db").exists()
    got = _mlflow_history(uri, r.summary["run_id"])
    want = _expected(r.run_dir, "train_loss")
    assert [got["train_loss"][s] for s in want.index] == want.tolist()


def _wandb_records(path: Path) -> list[bytes]:
    """The records of a W&B transaction log (run-*.wandb): LevelDB's log format, as W&B documents for its
    offline files: a 7-byte file header (':W&B', magic 0xBEE1, version), then 32 KiB blocks of chunks, each a
    7-byte header (crc32, little-endian length, type 1 full / 2 first / 3 middle / 4 last) and its bytes."""
    data, block, records, parts = path.read_bytes(), 32768, [], []
    assert data[:4] == b":W&B", data[:7]
    pos = 7
    while pos + 7 <= len(data):
        left = block - pos % block
        if left < 7:  # a block's tail too short for a header is padding
            pos += left
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if length == 0 and kind == 0:  # zero padding at the end of what was written
            break
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        parts.append(chunk)
        if kind in (1, 4):  # full, or the last piece of a record
            records.append(b"".join(parts))
            parts = []
    return records


def test_wandb_offline_logger_gets_the_rows_of_metrics_parquet(tmp_path, byte_tokens, monkeypatch):
    pytest.importorskip("wandb")
    from wandb.proto import wandb_internal_pb2 as pb

    monkeypatch.delenv("WANDB_MODE", raising=False)  # offline unless the user asks for online (callbacks.py)
    monkeypatch.setenv("WANDB_SILENT", "true")
    r = train(tiny_cfg(tmp_path / "runs", train={**SHORT, "loggers": ["wandb"]}), progress=False)
    assert r.status == "completed", r.summary.get("error")
    import wandb

    wandb.finish()  # W&B's service writes the file behind the run; `ant train` exiting finishes it the same way
    (log,) = (r.run_dir / "logs" / "wandb").glob("offline-run-*/run-*.wandb")
    records: list = []
    for _ in range(120):  # finish() returns before W&B's service has written the run's last records
        records = [pb.Record.FromString(raw) for raw in _wandb_records(log)]
        if any(rec.WhichOneof("record_type") == "exit" for rec in records):
            break
        time.sleep(0.5)
    rows: dict[int, dict[str, float]] = {}
    for rec in records:
        if rec.WhichOneof("record_type") == "history":
            items = {i.key or "/".join(i.nested_key): json.loads(i.value_json) for i in rec.history.item}
            if "trainer/global_step" in items or "_step" in items:
                step = int(items.get("trainer/global_step", items.get("_step")))
                rows.setdefault(step, {}).update({k: v for k, v in items.items() if k in COLUMNS})
    for column in COLUMNS:
        want = _expected(r.run_dir, column)
        got = {s: row[column] for s, row in rows.items() if column in row}
        assert sorted(got) == list(want.index), (column, sorted(got)[:5], list(want.index)[:5])
        assert [got[s] for s in want.index] == want.tolist(), column
