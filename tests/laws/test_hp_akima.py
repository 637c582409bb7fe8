"""The Akima minimum may refine a measured minimum, never move it off the grid's edge (issue 24): the committed
study's tiny3 anGPT curve (1.450 / 1.456 / 1.604 at LR 3e-3 / 1e-2 / 3e-2) had its Akima minimum 1.433 at LR 5.2e-3,
below every measured loss; it must neither set lr* nor the LR sensitivity."""

from __future__ import annotations

import pandas as pd
import pytest

from ant.laws.hp import hp_trends, lr_sensitivity

TINY3 = ([3e-3, 1e-2, 3e-2], [1.449551, 1.456077, 1.603608])


def test_a_measured_minimum_on_the_edge_is_an_edge_optimum_whatever_akima_says():
    s = lr_sensitivity(*TINY3)
    assert s["lr_at_edge"] and s["lr_best"] == pytest.approx(3e-3)
    assert s["loss_best"] == pytest.approx(1.449551)  # the measured loss, not the 1.433 undershoot
    assert s["up"] is None and s["down"] is None


def test_an_interior_minimum_is_still_refined_by_the_interpolant():
    s = lr_sensitivity([1e-3, 3e-3, 1e-2, 3e-2], [1.60, 1.47, 1.45, 1.52])
    assert not s["lr_at_edge"] and 3e-3 < s["lr_best"] < 3e-2 and s["lr_best"] != pytest.approx(1e-2)
    assert 1.44 < s["loss_best"] <= 1.45


def test_the_edge_rule_excludes_the_size_from_the_power_laws():
    rows = [
        {
            "arch": "angpt",
            "num_params": 295e3,
            "batch_size": b,
            "lr": lr,
            "tokens": 2.95e6,
            "final_val_loss": loss + 0.01 * abs(b - 8) / 4,
        }
        for b in (4, 8, 16)
        for lr, loss in zip(*TINY3)
    ]
    t = hp_trends(pd.DataFrame(rows))["angpt"]["10 tokens/param"]
    assert not t.per_size["in_fit"].iloc[0] and "best LR at the edge" in t.per_size["exclude_reason"].iloc[0]


def test_figures_draw_the_shape_preserving_curve_where_akima_undershoots():
    import numpy as np

    from ant.laws.hp import akima_curve, trusted_curve

    x = np.log(TINY3[0])
    assert akima_curve(x, TINY3[1])[1].min() < 1.44  # the undershoot Fig. G.1 drew
    grid, y, fell_back = trusted_curve(x, TINY3[1])
    assert fell_back and y.min() == pytest.approx(min(TINY3[1])) and y[0] == pytest.approx(TINY3[1][0])
    _, y2, fell_back2 = trusted_curve(np.log([1e-3, 3e-3, 1e-2, 3e-2]), [1.60, 1.47, 1.45, 1.52])
    assert not fell_back2 and y2.min() < 1.45  # an interior minimum keeps its Akima refinement
