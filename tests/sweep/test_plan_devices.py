"""The device count in the plan and the SLURM request (issue 15): a train.devices: 4 run takes a quarter of the
wall time and the same GPU-hours; sweeps/paper.yaml puts 0.5B/1B on 4 GPUs without changing a run id, and its
dry run shows GPU-hours per arch and in all; the executor asks for one task (and its GPUs) per device."""

from __future__ import annotations

from pathlib import Path

import pytest

from ant.config import RunConfig
from ant.sweep.executors import ExecutorSettings
from ant.sweep.grid import Grid
from ant.sweep.plan import build_plan
from ant.sweep.plan_table import format_plan, gpu_hours, plan_json
from tests.sweep.conftest import write_grid

ROOT = Path(__file__).resolve().parents[2]


def test_four_devices_quarter_the_time_and_keep_the_gpu_hours(tmp_path, corpus):
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["angpt"])
    (one,) = Grid.from_yaml(g).expand()
    four = RunConfig.from_dict({**one.to_dict(), "train": {**one.to_dict()["train"], "devices": 4}})
    assert one.run_id() == four.run_id()  # devices is not part of the run id (a grid keeps one of the two)
    rows, tp = build_plan([one, four], estimate={"device": "a100"})
    assert (rows[0].devices, rows[1].devices) == (1, 4) and rows[0].gpu and rows[1].gpu
    assert rows[1].est_s == pytest.approx(rows[0].est_s / 4)
    hours = gpu_hours(rows)
    assert hours == {"angpt": pytest.approx(2 * rows[0].est_s / 3600)}
    assert "GPU-hours (est. time x devices): angpt " in format_plan(rows, tp)
    assert plan_json(rows, tp)["gpu_hours"] == hours


def test_cpu_plans_show_no_gpu_hours(tmp_path, corpus):
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["angpt"])
    rows, tp = build_plan(Grid.from_yaml(g).expand(), estimate={"flops_per_s": 1e9})
    assert not any(r.gpu for r in rows) and "GPU-hours" not in format_plan(rows, tp)


def test_paper_grid_puts_the_large_sizes_on_four_gpus(capsys):
    from ant.cli import main

    runs = Grid.from_yaml(ROOT / "sweeps" / "paper.yaml").expand()
    assert {(c.model.size, c.train.devices) for c in runs if c.train.devices > 1} == {("0.5B", 4), ("1B", 4)}
    assert all(c.train.devices == 1 for c in runs if c.model.size not in ("0.5B", "1B"))
    assert all(c.train.batch_size % c.train.devices == 0 for c in runs)
    assert main(["sweep", str(ROOT / "sweeps" / "paper.yaml"), "--dry-run"]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("GPU-hours"))
    per_arch = dict(part.split() for part in line.split(": ", 1)[1].split(" | ")[0].split(", "))
    assert set(per_arch) == {"gptplus", "angpt", "ngpt"}
    # the README's figure to its digits (the paper: ~30k GPU-hours; A100 table rate, linear DDP scaling assumed)
    assert line.rsplit("all ", 1)[1].strip() == "34.9k", line


@pytest.mark.parametrize(("gpus", "devices", "want"), [(0, 2, None), (1, 4, 4), (1, 1, 1), (2, 2, 4)])
def test_executor_asks_for_one_task_and_its_gpus_per_device(tmp_path, gpus, devices, want, slurm_commands):
    pytest.importorskip("submitit")
    from ant.sweep.slurm import slurm_executor

    ex = slurm_executor(ExecutorSettings(name="slurm", gpus_per_node=gpus), tmp_path, "t", (devices, 2))
    params = ex._executor.parameters
    assert params["ntasks_per_node"] == devices and params["nodes"] == 2
    assert params.get("gpus_per_node") == want


def test_local_sweep_refuses_runs_on_several_devices(tmp_path, corpus, capsys):
    from ant.cli import main

    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["angpt"], set={"train.devices": [2]})
    assert main(["sweep", str(g)]) == 2
    assert "train.devices: the local executor trains each run in one worker process" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()  # nothing launched, no folder made


def test_a_wsd_family_on_several_devices_is_refused_before_submission(tmp_path, corpus):
    pytest.importorskip("submitit")
    from ant.errors import ConfigError
    from ant.sweep.slurm import submit_slurm

    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["angpt"])
    (cfg,) = Grid.from_yaml(g).expand()
    two = RunConfig.from_dict({**cfg.to_dict(), "train": {**cfg.to_dict()["train"], "devices": 2}})
    with pytest.raises(ConfigError, match=r"^train\.devices: a wsd family"):
        submit_slurm([[two, two]], ExecutorSettings(name="slurm"), tmp_path / "sub", "t")
    assert not (tmp_path / "sub").exists()
