"""analysis.common helpers: one requested budget stays one budget across batch sizes."""

from __future__ import annotations

import pandas as pd

from ant.analysis.common import best_hp_runs, budget_key


def test_budget_key_joins_step_rounding_and_keeps_budgets_apart():
    # 10 tokens/param at tiny0 asked for at batch 1, 2, 4 (whole steps of 128-token sequences) and the 2x budget
    t = pd.Series([165376.0, 165632.0, 165888.0, 330752.0, 41216.0, 41344.0])
    assert budget_key(t).tolist() == [165376.0, 165376.0, 165376.0, 330752.0, 41216.0, 41216.0]


def test_best_hp_runs_picks_one_config_per_requested_budget():
    rows = [  # one budget at three batch sizes (token counts differ by rounding); batch 2 is best
        {"arch": "angpt", "num_params": 1e4, "tokens": 165376, "lr": 1e-2, "batch_size": 1, "final_val_loss": 2.3},
        {"arch": "angpt", "num_params": 1e4, "tokens": 165632, "lr": 1e-2, "batch_size": 2, "final_val_loss": 2.1},
        {"arch": "angpt", "num_params": 1e4, "tokens": 165888, "lr": 1e-2, "batch_size": 4, "final_val_loss": 2.2},
        {"arch": "angpt", "num_params": 1e4, "tokens": 330752, "lr": 1e-2, "batch_size": 4, "final_val_loss": 2.0},
    ]
    best = best_hp_runs(pd.DataFrame(rows))
    assert sorted(zip(best["tokens"], best["batch_size"])) == [(165632, 2), (330752, 4)]
    assert "_budget" not in best
