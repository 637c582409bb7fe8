"""Packed workers in a sweep (ant.sweep.packing): the dry run says which runs could share a process, the local
executor trains them packed when executor.pack asks for it, each in its own run folder, and a rerun has nothing
left to do."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ant.errors import ConfigError
from ant.sweep.executors import ExecutorSettings, work_units
from ant.sweep.grid import Grid
from ant.sweep.packing import PackedUnit, pack_groups, pack_units
from tests.sweep.conftest import write_grid

ROOT = Path(__file__).resolve().parents[2]


def _sweep(grid: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ant.cli", "sweep", str(grid), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)  # fmt: skip


def test_groups_are_one_shape_any_lr_and_seed(tmp_path, corpus):
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, lr=[1e-3, 3e-3, 1e-2], seed=[0, 1], batch_size=[4, 8])
    cfgs = Grid.from_yaml(g).expand()  # 2 archs x 2 batches x 3 LRs x 2 seeds
    groups = pack_groups(cfgs, max_runs=16)
    assert len(groups) == 4 and all(len(grp) == 6 for grp in groups)
    for grp in groups:
        assert len({(c.model.arch, c.train.batch_size) for c in grp}) == 1
        assert len({(c.optim.lr, c.train.seed) for c in grp}) == 6
    assert sorted(len(grp) for grp in pack_groups(cfgs, max_runs=4)) == [3] * 8  # cut into near-equal chunks
    units = pack_units(work_units(cfgs), 4)
    assert all(isinstance(u, PackedUnit) for u in units) and sum(len(u) for u in units) == len(cfgs)


def test_wsd_families_are_never_packed(tmp_path, corpus):
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, schedule="wsd", budgets=[4096, 8192], seed=[0, 1])
    d = yaml.safe_load(g.read_text())
    d["grid"].pop("tokens")  # budgets stand in for the tokens axis
    g.write_text(yaml.safe_dump(d))
    cfgs = Grid.from_yaml(g).expand()
    assert len(cfgs) == 8  # 2 archs x 2 seeds x 2 budgets: 4 families, each a trunk and a branch
    assert pack_groups(cfgs, max_runs=8) == []


def test_pack_is_a_local_executor_option():
    assert ExecutorSettings.from_dict({}).pack == 0  # off by default
    with pytest.raises(ConfigError, match="executor.pack"):
        ExecutorSettings.from_dict({"name": "slurm", "pack": 4})
    with pytest.raises(ConfigError, match="executor.pack"):
        ExecutorSettings.from_dict({"pack": -1})


def test_local_sweep_trains_a_group_packed(tmp_path, corpus):
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["angpt"], lr=[3e-3, 1e-2], seed=[0, 1],
                   executor={"name": "local", "concurrency": 1, "threads_per_run": 1, "pack": 4})  # fmt: skip
    dry = _sweep(g, "--dry-run")
    assert dry.returncode == 0 and "packing: 4 runs in 1 groups of 4 could share a process" in dry.stdout
    assert "at most 4 per worker" in dry.stdout
    p = _sweep(g)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "(1 packed workers)" in p.stdout and "4 completed" in p.stdout
    cfgs = Grid.from_yaml(g).expand()
    ids = sorted(c.run_id() for c in cfgs)
    for c in cfgs:
        s = json.loads((c.run_dir() / "summary.json").read_text())
        assert s["status"] == "completed" and sorted(s["packed_with"]) == ids
        assert (c.run_dir() / "weights.pt").is_file() and (c.run_dir() / "metrics.parquet").is_file()
    again = _sweep(g)
    assert again.returncode == 0 and "0 to run, 4 done" in again.stdout, again.stdout
