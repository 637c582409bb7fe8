"""Median pruning actually prunes: `ant tune` on a study designed so that it must.

The study holds two enqueued trials, run in order by one worker: a good LR, which completes (MedianPruner never
prunes before `startup_trials` = 1 finished trial), then an LR 300x too small, whose validation loss at its first
evaluation is far above the completed trial's at the same step. The watcher (ant.sweep.tune._Watcher) reports
it from metrics.parquet, optuna says prune, and the run is stopped at its next step. The trial states are read
back from the journal file on disk, as a later `ant tune` (or another worker) would see them.

The watcher sees val losses when train() writes metrics.parquet, at each checkpoint (every 50 steps here; evals
every 10). The pruned run must still be training when the watcher next polls (every 1 s): a trial is 300 steps,
so 250 steps (~8 s on the 2-core machine) remain after the first write; a slower machine only widens that window.
"""

from __future__ import annotations

import json

import pytest

from ant.cli import main
from ant.sweep.grid import Grid
from ant.sweep.tune import TuneSettings, create_study, storage, study_root
from tests.sweep.conftest import write_grid

GOOD_LR, BAD_LR = 3e-3, 1e-5
STEPS, BATCH, SEQ = 300, 8, 32


@pytest.mark.slow
def test_a_clearly_worse_trial_is_pruned(tmp_path, corpus, capsys):
    import optuna

    tune = {"trials": 2, "workers": 1, "study_dir": str(tmp_path / "studies"), "lr_min": 1e-5, "lr_max": 3e-2,
            "startup_trials": 1, "warmup_evals": 0}  # fmt: skip
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["angpt"], tokens=[STEPS * BATCH * SEQ],
                   batch_size=[BATCH], set={"train.ckpt_interval": [50]}, tune=tune)  # fmt: skip
    grid = Grid.from_yaml(g)
    root = study_root(TuneSettings.from_dict(tune), grid.name)
    name = f"{grid.name}-angpt-tiny1"
    study = create_study(root, name, TuneSettings.from_dict(tune))
    for lr in (GOOD_LR, BAD_LR):  # the design: trial 0 sets the median, trial 1 is clearly worse from step 1
        study.enqueue_trial({"lr": lr})

    assert main(["tune", str(g)]) == 0
    out = capsys.readouterr().out
    assert "(1 of 2 trials complete)" in out, out

    S = optuna.trial.TrialState
    trials = optuna.load_study(study_name=name, storage=storage(root)).trials  # the journal on disk
    good, bad = trials
    print(f"trial 0 lr {good.params['lr']:.3g} {good.state.name}, {len(good.intermediate_values)} evals, "
          f"loss {good.value}; trial 1 lr {bad.params['lr']:.3g} {bad.state.name} after "
          f"{len(bad.intermediate_values)} eval(s) {bad.intermediate_values}")  # fmt: skip
    assert good.state == S.COMPLETE and good.params["lr"] == pytest.approx(GOOD_LR)
    assert bad.state == S.PRUNED and bad.params["lr"] == pytest.approx(BAD_LR)

    # pruned on its intermediate losses, not for diverging: it reported values worse than the median at the
    # same steps, and its run stopped early with a checkpoint (status running: a later retry could resume it)
    # (step 0 is the initial evaluation, the same for both: one seed, one initialisation)
    step = max(bad.intermediate_values)
    assert step > 0 and bad.intermediate_values[step] > good.intermediate_values[step]
    summary = json.loads((root / "runs" / bad.user_attrs["run_id"] / "summary.json").read_text())
    assert summary["status"] == "running" and summary["steps"] < STEPS, summary
    assert summary["diverged_step"] is None
