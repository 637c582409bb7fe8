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
def test_two_workers_share_a_journal_recover_orphans_and_resume(tmp_path, corpus):
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
    assert states[0] == S.FAIL and study.trials[0].user_attrs["orphaned"]
    done = [t for t in study.trials if t.state in (S.COMPLETE, S.PRUNED)]
    assert len(done) == 3
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
