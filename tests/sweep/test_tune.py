"""optuna tuning with local workers: one shared journal, orphaned trials recovered, resume, best.yaml usable by
a grid (`lr: {from_study: ...}`)."""

from __future__ import annotations

import pytest
import yaml

from ant.errors import ConfigError
from ant.sweep.grid import Grid
from ant.sweep.tune import TuneSettings, create_study, storage, study_root, tune_grid
from tests.sweep.conftest import write_grid


def test_settings_validation():
    with pytest.raises(ConfigError) as e:
        TuneSettings.from_dict({"trails": 3})
    assert e.value.field == "tune.trails"
    with pytest.raises(ConfigError) as e:
        TuneSettings.from_dict({"lr_min": 1e-2, "lr_max": 1e-3})
    assert e.value.field == "tune.lr_min"
    # non-finite, absurd, non-numeric or boolean LR bounds name the field (no OverflowError/ValueError traceback)
    for field, value in [("lr_max", float("inf")), ("lr_max", 1e400), ("lr_max", 1e3), ("lr_min", float("nan")),
                         ("lr_min", "abc"), ("lr_min", 0.0), ("lr_max", True)]:  # fmt: skip
        with pytest.raises(ConfigError) as e:
            TuneSettings.from_dict({field: value})
        assert e.value.field == f"tune.{field}", (field, value)


@pytest.mark.slow
def test_two_workers_share_a_journal_recover_orphans_and_resume(tmp_path, corpus, capfd):
    import optuna

    tune = {"trials": 3, "workers": 2, "study_dir": str(tmp_path / "studies"), "lr_min": 1e-3, "lr_max": 3e-2}
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["angpt"], tune=tune)
    grid = Grid.from_yaml(g)
    settings = TuneSettings.from_dict(tune)
    root = study_root(settings, grid.name)
    # a worker that died mid-trial: a RUNNING trial nobody trains
    orphan = create_study(root, "t-angpt-tiny1", settings).ask()
    orphan.suggest_float("lr", 1e-3, 3e-2, log=True)

    best = tune_grid(grid, settings, log=lambda *a: None)
    study = optuna.load_study(study_name="t-angpt-tiny1", storage=storage(root))
    S = optuna.trial.TrialState
    states = [t.state for t in study.trials]
    assert states[0] == S.FAIL
    done = [t for t in study.trials if t.state in (S.COMPLETE, S.PRUNED)]
    assert len(done) == 3
    # every evaluation reached the trial from inside training (ant.sweep.pruning.ReportToTrial)
    assert all(len(t.intermediate_values) >= 2 for t in done), [t.intermediate_values for t in done]
    # one line per finished or pruned trial (printed by the worker processes): number, params, value, best so far
    lines = [ln for ln in capfd.readouterr().out.splitlines() if ln.startswith("t-angpt-tiny1 trial ")]
    assert sorted(int(ln.split()[2].rstrip(":")) for ln in lines) == sorted(t.number for t in done)
    assert all(" lr " in ln and " -> " in ln and "| best" in ln for ln in lines), lines
    retry = [t for t in done if t.user_attrs.get("retry_of") == 0]
    assert len(retry) == 1 and retry[0].params["lr"] == pytest.approx(study.trials[0].params["lr"])
    pids = {t.user_attrs["run_id"] for t in done}
    assert len(pids) == 3  # three distinct runs, no duplicate LR between the two workers

    # resume with a larger target: only the missing trial runs
    settings.trials = 4
    tune_grid(grid, settings, log=lambda *a: None)
    study = optuna.load_study(study_name="t-angpt-tiny1", storage=storage(root))
    assert len([t for t in study.trials if t.state in (S.COMPLETE, S.PRUNED)]) == 4

    # best.yaml feeds a grid
    best = yaml.safe_load((root / "best.yaml").read_text())
    complete = [t for t in study.trials if t.state == S.COMPLETE]
    assert best["angpt"]["tiny1"]["val_loss"] == pytest.approx(min(t.value for t in complete))
    g2 = write_grid(tmp_path / "g2.yaml", corpus, tmp_path, arch=["angpt"], lr={"from_study": str(root)})
    assert Grid.from_yaml(g2).expand()[0].optim.lr == pytest.approx(best["angpt"]["tiny1"]["lr"])


def test_pruning_reports_each_evaluation_from_inside_training_and_stops_a_bad_trial(tmp_path):
    """ReportToTrial (the Lightning callback the tune worker gives train()) reads each new val loss from the
    Evaluator's table as it is measured, reports it to the trial, and asks the run to stop when optuna prunes."""
    from types import SimpleNamespace

    import optuna

    from ant.sweep.pruning import ReportToTrial
    from ant.train import run as train_run
    from ant.train.callbacks import Evaluator, MetricsTable

    study = optuna.create_study(pruner=optuna.pruners.MedianPruner(n_startup_trials=1, n_warmup_steps=0))
    good = study.ask()
    for step, val in ((10, 2.0), (20, 1.5)):
        good.report(val, step)
    study.tell(good, 1.4)

    table = MetricsTable(tokens_per_step=8)
    trainer = SimpleNamespace(callbacks=[Evaluator(None, table, [], tmp_path / "metrics.parquet")])
    cb = ReportToTrial(study.ask())
    try:
        table.add(5, train_loss=4.0)  # a training row: nothing to report yet
        cb.on_train_batch_end(trainer, None, None, None, 0)
        assert cb.reported == [] and not cb.pruned
        table.add(10, val_loss=3.0)  # worse than the finished trial at the same step
        cb.on_train_batch_end(trainer, None, None, None, 0)
        assert cb.reported == [(10, 3.0)] and cb.pruned and train_run.STOP_REQUESTED.is_set()
        cb.on_train_batch_end(trainer, None, None, None, 0)  # nothing new: nothing reported twice
        assert cb.reported == [(10, 3.0)]
    finally:
        train_run.STOP_REQUESTED.clear()
