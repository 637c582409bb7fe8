"""The local executor's concurrency cap, measured: a real `ant sweep` of tiny runs at concurrency 1 and 2, and the
overlap of the runs read back from their attempt logs (`<out_dir>/.locks/<run_id>.attempts`: one `start` line
before a worker imports Lightning and trains, one `end` line when train() returns, each with time and pid).

Also the two per-worker settings the README promises: CPU threads divided between workers (the run's
config.yaml records the `train.num_threads` its worker applied with torch.set_num_threads; the thread count torch
actually ran with is not recorded anywhere), and one GPU per worker via CUDA_VISIBLE_DEVICES (a pure function of
the environment, `local_layout`, plus the pool initializer, exercised in real spawned workers without a GPU).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import time
from pathlib import Path

import pytest
import yaml

from ant.cli import main
from ant.sweep.executors import ExecutorSettings, _init_worker, local_layout
from ant.sweep.grid import Grid
from ant.sweep.locks import read_attempts
from tests.sweep.conftest import write_grid


def _intervals(grid_file: Path) -> list[tuple[float, float, int]]:
    """(start, end, pid) of every run of the grid, from the attempt logs its workers wrote."""
    runs = Grid.from_yaml(grid_file).expand()
    locks = Path(runs[0].out_dir) / ".locks"
    out = []
    for r in runs:
        rows = read_attempts(locks, r.run_id())
        start = [a for a in rows if a["event"] == "start"]
        end = [a for a in rows if a["event"] == "end"]
        assert len(start) == 1 and len(end) == 1 and end[0]["status"] == "completed", rows
        assert start[0]["pid"] == end[0]["pid"]
        out.append((start[0]["time"], end[0]["time"], start[0]["pid"]))
    return out


def max_overlap(intervals: list[tuple[float, float, int]]) -> int:
    """Most intervals open at one moment (sweep line; an end at the same instant as a start closes first)."""
    events = sorted([(s, 1) for s, _, _ in intervals] + [(e, -1) for _, e, _ in intervals], key=lambda x: (x[0], x[1]))
    now = best = 0
    for _, d in events:
        now += d
        best = max(best, now)
    return best


def test_max_overlap_counts_what_it_should():
    assert max_overlap([(0, 1, 0), (1, 2, 0), (2, 3, 0)]) == 1  # back to back is not overlap
    assert max_overlap([(0, 2, 0), (1, 3, 0), (1.5, 4, 0)]) == 3
    assert max_overlap([(0, 2, 0), (1, 3, 0), (2.5, 4, 0)]) == 2


@pytest.mark.slow
@pytest.mark.parametrize("n", [1, 2])
def test_at_most_n_runs_overlap_and_threads_are_divided(tmp_path, corpus, capsys, n):
    # 4 runs (2 archs x 2 seeds) for 2 workers, 3 seeds for 1: more work than workers, so a missing cap would
    # show as more overlapping runs. threads_per_run 0: the executor divides the CPU cores between the workers.
    axes = {"arch": ["gptplus", "angpt"], "seed": [0, 1]} if n == 2 else {"arch": ["angpt"], "seed": [0, 1, 2]}
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, **axes,
                   executor={"name": "local", "concurrency": n, "threads_per_run": 0})  # fmt: skip
    assert main(["sweep", str(g)]) == 0
    out = capsys.readouterr().out
    cpus = len(os.sched_getaffinity(0))
    threads = max(1, cpus // n)
    assert f"{n} at a time, {threads} CPU thread(s) each" in out, out

    spans = _intervals(g)
    overlap = max_overlap(spans)
    print(f"concurrency {n}: {len(spans)} runs, max overlap {overlap}, "
          + ", ".join(f"[{s - spans[0][0]:.1f}, {e - spans[0][0]:.1f}] s pid {p}" for s, e, p in spans))  # fmt: skip
    assert overlap == n  # never more than the cap, and the cap is used (for n=2 two runs did run at once)
    assert len({p for _, _, p in spans}) == n  # n worker processes, each taking runs in turn

    for r in Grid.from_yaml(g).expand():
        recorded = yaml.safe_load((r.run_dir() / "config.yaml").read_text())["train"]["num_threads"]
        assert recorded == threads, (r.run_id(), recorded)


def test_layout_one_worker_per_visible_gpu(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: set(range(8)), raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6")
    s = ExecutorSettings.from_dict
    assert local_layout(s({}), n_runs=10) == (3, 2, ["3", "5", "6"])  # concurrency 0: one worker per GPU
    assert local_layout(s({"concurrency": 8}), n_runs=10)[0] == 3  # never more workers than GPUs
    assert local_layout(s({"concurrency": 2}), n_runs=10) == (2, 4, ["3", "5", "6"])  # 8 cores / 2 workers
    assert local_layout(s({}), n_runs=1)[0] == 1  # nor more workers than runs
    assert local_layout(s({"concurrency": 2, "threads_per_run": 3}), n_runs=10)[1] == 3
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")  # the CUDA way of hiding every GPU
    assert local_layout(s({}), n_runs=10) == (1, 8, [])
    assert local_layout(s({"concurrency": 4}), n_runs=10) == (4, 2, [])


def _report_env(barrier_dir: str, n: int) -> tuple[int, str | None, str | None]:
    # A file barrier: each task waits until n distinct workers hold a task, so every worker is seen exactly once.
    d = Path(barrier_dir)
    (d / str(os.getpid())).touch()
    deadline = time.monotonic() + 60
    while len(list(d.iterdir())) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("OMP_NUM_THREADS")


def test_each_spawned_worker_owns_one_gpu(tmp_path):
    # The pool run_local builds (spawned workers, _init_worker taking one id from a queue) without a GPU: the
    # environment a worker trains in is what CUDA sees, so one id per worker is one GPU per worker.
    ctx = mp.get_context("spawn")
    gpus, workers = ["2", "7"], 2
    queue = ctx.Queue()
    for g in gpus:
        queue.put(g)
    with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(queue, 3)) as pool:
        seen = list(pool.map(_report_env, [str(tmp_path)] * workers, [workers] * workers, timeout=120))
    assert len({pid for pid, _, _ in seen}) == workers, seen
    assert sorted(gpu for _, gpu, _ in seen) == gpus, seen  # each worker one GPU, no GPU twice
    assert {omp for _, _, omp in seen} == {"3"}  # and its share of the CPU threads
