"""The SLURM submission, read without a cluster: the time limit and the signal it asks SLURM to send before it
(`#SBATCH --time`, `#SBATCH --signal=USR2@signal_delay_s`) are the grid's, and the signal is the one the job's
handler (ant.sweep.slurm.RunJob) turns into a checkpoint. The requeue tests (tests/sweep/test_slurm.py,
test_slurm_ddp.py) send that signal themselves; this test is what ties it to the one SLURM would send."""

from __future__ import annotations

import inspect
import signal

import pytest

from ant.sweep.executors import ExecutorSettings
from tests.sweep.slurm_support import REQUEUE_SIGNAL, assert_signal_directives

submitit = pytest.importorskip("submitit")


@pytest.mark.parametrize(("timeout_min", "delay"), [(60, 90), (1, 15), (5, 30)])
def test_the_submission_asks_for_the_time_limit_and_the_signal_before_it(tmp_path, slurm_commands, timeout_min, delay):
    from ant.sweep.slurm import slurm_executor

    settings = ExecutorSettings(name="slurm", timeout_min=timeout_min, signal_delay_s=delay)
    ex = slurm_executor(settings, tmp_path, "t")
    script = ex._executor._make_submission_file_text("python -m submitit.core._submit FOLDER", "uid")
    assert_signal_directives(script, {"timeout_min": timeout_min, "signal_delay_s": delay})
    assert script.count("#SBATCH --signal=") == 1


def test_the_signal_asked_for_is_the_one_the_job_handles():
    from submitit.slurm.slurm import SlurmJobEnvironment

    from ant.sweep.slurm import RunJob

    assert SlurmJobEnvironment.USR_SIG == REQUEUE_SIGNAL
    # RunJob swaps submitit's handler for that signal for one that checkpoints first (and hands it back)
    source = inspect.getsource(RunJob.__call__)
    assert f"signal.SIG{REQUEUE_SIGNAL}" in source
    assert getattr(signal, f"SIG{REQUEUE_SIGNAL}") == signal.SIGUSR2
