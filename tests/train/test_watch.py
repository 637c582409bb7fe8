"""What a run leaves for the people watching it and for later (issue 13): Lightning loggers fed the same rows as
metrics.parquet, plain progress lines off a terminal, env.json per start, the final weights, load_run and
`ant sample`. Real runs on the real corpus, as the other train tests."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from ant.data import val_batches
from ant.errors import ConfigError
from ant.train import io, load_run, train
from ant.train.module import evaluate
from tests.train.conftest import REPO, tiny_cfg
from tests.train.test_resume import stop_at

SHORT = {"tokens": 40 * 8 * 64, "ckpt_interval": 10, "eval_interval": 20, "diag_interval": 20}


def test_csv_and_tensorboard_loggers_get_the_rows_of_metrics_parquet(tmp_path, byte_tokens, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    r = train(tiny_cfg(tmp_path, train={**SHORT, "loggers": ["csv", "tensorboard"]}), progress=False)
    assert r.status == "completed"
    m = pd.read_parquet(r.run_dir / "metrics.parquet")
    csv = pd.read_csv(r.run_dir / "logs" / "csv" / "metrics.csv")
    events = EventAccumulator(str(r.run_dir / "logs" / "tensorboard"))
    events.Reload()
    for column in ("train_loss", "val_loss", "lr"):
        want = m.dropna(subset=[column]).set_index("step")[column]
        got_csv = csv.dropna(subset=[column]).set_index("step")[column]
        tb = {e.step: e.value for e in events.Scalars(column)}
        assert len(want) >= 2 and list(got_csv.index) == list(want.index) == sorted(tb), column
        assert got_csv.tolist() == want.tolist(), column  # the very floats
        assert [tb[s] for s in want.index] == [float(np.float32(v)) for v in want], column  # TensorBoard: float32
    # off a terminal (pytest captures stdout): one plain line per log interval, val loss when fresh
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("step ")]
    assert len(lines) == 40 // 5, lines
    assert re.fullmatch(r"step 20/40  tokens 10,240  loss \d\.\d{4}  val \d\.\d{4}  lr \S+  tok/s [\d,]+  eta \S+",
                        lines[3]), lines[3]  # fmt: skip


def test_a_logger_whose_package_is_missing_is_a_config_error_before_anything_is_written(
    tmp_path, byte_tokens, monkeypatch
):
    # mlflow is in the dev extra: it is made missing here the way check_run looks for it
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else find_spec(name, *a))
    with pytest.raises(ConfigError, match=r"train.loggers: the mlflow logger needs the mlflow package.*allowed"):
        train(tiny_cfg(tmp_path, train={**SHORT, "loggers": ["csv", "mlflow"]}), progress=False)
    assert not list(tmp_path.iterdir())


def test_env_json_one_entry_per_start_with_the_commit(tmp_path, byte_tokens, monkeypatch):
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
    stop_at(monkeypatch, 15)
    stopped = train(tiny_cfg(tmp_path, train=SHORT), progress=False)
    monkeypatch.undo()
    assert len(io.read_json(stopped.run_dir / "env.json")) == 1
    done = train(tiny_cfg(tmp_path, train=SHORT), progress=False)
    first, second = io.read_json(done.run_dir / "env.json")
    assert done.status == "completed" and done.summary["resumed_from_step"] == 15
    for entry in (first, second):
        assert entry["git_commit"] == commit.stdout.strip() and re.fullmatch(r"[0-9a-f]{40}", entry["git_commit"])
        assert isinstance(entry["git_dirty"], bool) and entry["device"] == "cpu" and entry["hostname"]
        assert entry["argv"] and set(entry["versions"]) == {"python", "torch", "lightning", "ant", "numpy", "cuda"}
        assert entry["versions"]["torch"] == torch.__version__
    assert first["started_at"] <= second["started_at"]
    # the CSV logger (on by default) holds the whole curve after the resume, as metrics.parquet does
    m, csv = pd.read_parquet(done.run_dir / "metrics.parquet"), pd.read_csv(done.run_dir / "logs/csv/metrics.csv")
    want = m.dropna(subset=["train_loss"])
    assert (
        csv.dropna(subset=["train_loss"])[["step", "train_loss"]].values.tolist()
        == want[["step", "train_loss"]].values.tolist()
    )


@pytest.mark.parametrize("arch", ["angpt", "gptplus"])
def test_load_run_reproduces_the_final_val_loss_exactly(learned_runs, byte_tokens, arch):
    r = learned_runs[1][arch]
    assert io.sha256_file(r.run_dir / "weights.pt") == r.summary["weights_sha256"]
    assert (r.run_dir / "env.json").is_file()
    cfg, model = load_run(r.run_dir)
    assert cfg.run_id() == r.run_dir.name and not model.training
    t = cfg.train
    batches = list(val_batches(byte_tokens.val, cfg.data.seq_len, t.micro_batch_size or t.batch_size))
    before = torch.get_num_threads()
    torch.set_num_threads(t.num_threads)  # the thread count the run evaluated with: the same summation order
    try:
        assert evaluate(model, batches, "cpu") == r.summary["final_val_loss"]  # bit for bit
    finally:
        torch.set_num_threads(before)


def test_ant_sample_prints_text_in_the_corpus_alphabet(learned_runs, byte_tokens):
    run_dir = learned_runs[1]["angpt"].run_dir
    cmd = [sys.executable, "-m", "ant", "sample", str(run_dir), "--prompt", "And the LORD said",
           "--tokens", "80", "--temperature", "0.5", "--top-k", "5", "--seed", "1"]  # fmt: skip
    r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, env=os.environ)
    assert r.returncode == 0, r.stderr[-2000:]
    text = r.stdout.rstrip("\n")
    assert text.startswith("And the LORD said") and len(text) > len("And the LORD said") + 20, text
    alphabet = set(byte_tokens.tokenizer.decode(byte_tokens.val[:].tolist()))
    assert set(text) <= alphabet, set(text) - alphabet
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120, env=os.environ)
    assert again.stdout == r.stdout  # the seed fixes the sample
    bad_cmd = [*cmd[:4], str(run_dir.parent), "--prompt", "x"]
    bad = subprocess.run(bad_cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no config.yaml" in bad.stderr
