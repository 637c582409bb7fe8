"""SLURM refusing a submission (controller down): one line with sbatch's own message, exit 1, nothing left behind.

No cluster is needed: `sbatch` on PATH is a script that fails the way the real one does when slurmctld cannot be
reached (its message on stderr, exit 1), and submitit calls it exactly as it calls the real one."""

from __future__ import annotations

import stat

import pytest

from ant.cli import main
from tests.sweep.conftest import write_grid

MESSAGE = "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"


@pytest.fixture
def controller_down(slurm_commands):
    sbatch = slurm_commands / "sbatch"
    sbatch.write_text(f"#!/bin/sh\necho '{MESSAGE}' >&2\nexit 1\n")
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IEXEC)
    return slurm_commands


@pytest.mark.parametrize("tokens", [[4096], [4096, 8192]], ids=["one-job", "job-array"])
def test_refused_submission_is_one_line_exit_1_and_leaves_nothing(tokens, controller_down, corpus, tmp_path, capsys):
    grid = write_grid(tmp_path / "g.yaml", corpus, tmp_path, tokens=tokens, executor={"name": "slurm"})
    assert main(["sweep", str(grid)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert [ln for ln in err[:-1] if not ln.startswith("[ant data]")] == [], err  # only the data build's progress
    assert err[-1] == f"ant sweep: error: SLURM submission failed, nothing was queued: {MESSAGE}"
    assert "Traceback" not in "\n".join(err)
    assert not (tmp_path / "sweeps").exists()  # no pickles, scripts or jobs.json
    assert not (tmp_path / "runs").exists()


def test_an_existing_submission_folder_keeps_what_it_had(controller_down, corpus, tmp_path, capsys):
    grid = write_grid(tmp_path / "g.yaml", corpus, tmp_path, executor={"name": "slurm"})
    old = tmp_path / "sweeps" / "t" / "slurm" / "41_0"
    old.mkdir(parents=True)
    (old / "41_0_log.out").write_text("an earlier job's log\n")
    assert main(["sweep", str(grid)]) == 1
    assert sorted(p.name for p in (tmp_path / "sweeps" / "t" / "slurm").rglob("*")) == ["41_0", "41_0_log.out"]
