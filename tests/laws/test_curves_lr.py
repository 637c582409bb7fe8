"""The curves table's `lr` column is the scheduled LR at each row's step (issue 24), not the run's peak: a real
short run with warm-up (cosine and wsd) is trained, collected both ways (the fast Arrow path and read_curve), and
every row the training monitor logged an lr for must match it; evaluation-only rows get the schedule's value too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ant.config import RunConfig
from ant.laws.collect import collect, read_run
from ant.train import train


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lr_runs")
    for schedule in ("cosine", "wsd"):
        cfg = RunConfig.from_dict({
            "model": {"arch": "gptplus", "size": "tiny0"},
            "data": {"tokenizer": "bytes", "seq_len": 32, "val_tokens": 2048},
            "train": {"tokens": 6400, "batch_size": 4, "log_interval": 7, "eval_interval": 10, "num_threads": 1},
            "optim": {"lr": 0.01, "schedule": schedule, "warmup_frac": 0.1},
            "out_dir": str(out),
        })  # fmt: skip
        train(cfg)
    return out


def test_curves_lr_is_the_logged_scheduled_lr(runs_dir: Path):
    runs, curves = collect(runs_dir, write=False, full=True)
    assert len(runs) == 2 and curves["lr"].notna().all()
    for run_id, c in curves.groupby("run_id"):
        logged = pd.read_parquet(runs_dir / run_id / "metrics.parquet").dropna(subset=["lr"])
        assert len(logged) >= 5
        mine = c.set_index("step").loc[logged["step"], "lr"].to_numpy()
        np.testing.assert_allclose(mine, logged["lr"].to_numpy(), rtol=1e-12)
        peak = float(runs.set_index("run_id").loc[run_id, "lr"])
        assert c["lr"].max() <= peak and c["lr"].iloc[-1] == pytest.approx(0.01 * peak)  # not the peak everywhere
        # the exact path (read_curve) gives the same column as the fast one
        _, exact = read_run(runs_dir / run_id)
        np.testing.assert_array_equal(exact["lr"].to_numpy(), c["lr"].to_numpy())
