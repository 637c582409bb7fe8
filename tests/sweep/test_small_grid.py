"""`sweeps/small.yaml` is the grid the README's `make sweep-small` section describes: GPT+ and anGPT at tiny1
(49k parameters, bytes, sequences of 128), both at batch 2 and their best LR there in the committed study grid,
tokens per parameter 2.5-20 (123k-991k tokens), 3 seeds: 24 runs, two at a time with one CPU thread each.

The run itself (3-9 min on 2 cores, by host) is not part of the suite: `make sweep-small` is that run; its pieces are
tested separately (local executor, fits, figures, report; docs/testing.md).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ant.sweep.grid import Grid
from ant.sweep.packing import pack_groups

ROOT = Path(__file__).resolve().parents[2]


def test_small_grid_is_the_one_the_readme_describes(monkeypatch):
    monkeypatch.chdir(ROOT)  # the grid names results/study/tuned.yaml relative to the repository root
    grid = Grid.from_yaml(ROOT / "sweeps" / "small.yaml")
    runs = grid.expand()
    assert len(runs) == 24 and len({r.run_id() for r in runs}) == 24
    assert {r.model.arch for r in runs} == {"gptplus", "angpt"} and {r.model.size for r in runs} == {"tiny1"}
    assert {r.data.tokenizer for r in runs} == {"bytes"} and {r.data.seq_len for r in runs} == {128}
    assert {r.data.corpus for r in runs} == {"default"} and {r.train.seed for r in runs} == {0, 1, 2}
    assert all(49_000 <= r.num_params < 50_000 for r in runs)
    tokens = sorted({r.train.tokens for r in runs})
    assert 123_000 <= tokens[0] < 124_500 and 986_000 <= tokens[-1] < 992_000, tokens
    for arch in ("gptplus", "angpt"):
        per_param = sorted({round(r.train.tokens / r.num_params, 1) for r in runs if r.model.arch == arch})
        assert per_param == [2.5, 5.0, 10.0, 20.0], (arch, per_param)

    # batch 2 at each arch's best LR for batch 2 in the study's committed HP grid (its best batch, 1, would double
    # the job's time); the grid says 1e-2 for both
    assert {(r.optim.lr, r.train.batch_size) for r in runs} == {(1e-2, 2)}
    hp = pd.read_parquet(ROOT / "results" / "study" / "main" / "runs.parquet")
    scan = hp[(hp["size"] == "tiny1") & (hp["batch_size"] == 2) & (hp["seed"] == 0)]
    for arch in ("gptplus", "angpt"):
        losses = scan[scan["arch"] == arch].set_index("lr")["final_val_loss"]
        assert len(losses) == 5 and losses.idxmin() == 1e-2, (arch, losses.to_dict())

    assert grid.executor["name"] == "local"
    assert (grid.executor["concurrency"], grid.executor["threads_per_run"]) == (2, 1)
    # the README's "8 packed workers of 3 seeds": every (arch, budget) cell's seeds may share a process
    groups = pack_groups(runs, grid.executor["pack"])
    assert grid.executor["pack"] == 3 and sorted(len(g) for g in groups) == [3] * 8
