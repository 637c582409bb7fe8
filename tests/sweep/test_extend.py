"""The edge-extension planner (ant.sweep.extend) on synthetic loss surfaces: from a grid whose optimum sits on an
edge it walks, round by round, to an interior optimum, and it stops at the declared limit when the optimum keeps
running away."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from ant.errors import ConfigError
from ant.sweep.extend import ExtendLimits, next_points


def bowl(lr_opt: float, b_opt: float):
    """A loss surface quadratic in log LR and log batch, minimum 1.0 at (lr_opt, b_opt)."""
    return lambda lr, b: 1.0 + 0.05 * math.log(lr / lr_opt) ** 2 + 0.02 * math.log(b / b_opt) ** 2


def walk(surface, lrs, batches, limits, rounds=20):
    """Run the planner to its fixed point: every added point is 'trained' on the surface."""
    grid = pd.DataFrame([{"lr": lr, "batch_size": b} for lr in lrs for b in batches])
    rows = grid.assign(final_val_loss=[surface(r.lr, r.batch_size) for r in grid.itertuples()])
    added = []
    for _ in range(rounds):
        new = next_points(rows, limits, grid)
        if not new:
            break
        added += new
        rows = pd.concat(
            [
                rows,
                pd.DataFrame(
                    [
                        {"lr": p.lr, "batch_size": p.batch_size, "final_val_loss": surface(p.lr, p.batch_size)}
                        for p in new
                    ]
                ),
            ]
        )
    return rows, added


def interior(rows) -> bool:
    m = rows.groupby(["batch_size", "lr"])["final_val_loss"].mean()
    b, lr = m.idxmin()
    lrs, bs = sorted(m[b].index), sorted(m.index.get_level_values(0).unique())
    return lrs[0] < lr < lrs[-1] and bs[0] < b < bs[-1]


def test_walks_from_an_edge_start_to_the_interior_optimum():
    # grid LRs 1e-2..1e-1 (half decades), batches 8..32; the truth: lr 1e-3, batch 2 (below both edges)
    surface = bowl(1e-3, 2)
    lrs, batches = [1e-2, 3.16e-2, 1e-1], [8, 16, 32]
    rows, added = walk(surface, lrs, batches, ExtendLimits(max_per_side=4))
    assert interior(rows)
    m = rows.groupby(["batch_size", "lr"])["final_val_loss"].mean()
    b, lr = m.idxmin()
    assert b == 2 and lr == pytest.approx(1e-3, rel=0.02)
    assert {p.side for p in added} == {"lr_low", "batch_low"}
    assert all(p.batch_size >= 1 for p in added)


def test_an_interior_optimum_adds_nothing():
    rows, added = walk(bowl(1e-2, 8), [3e-3, 1e-2, 3e-2], [4, 8, 16], ExtendLimits())
    assert added == [] and interior(rows)


def test_stops_at_the_limit_when_the_optimum_runs_away():
    # the loss keeps falling with the LR: two points beyond the upper edge, then the cell keeps its edge optimum
    rows, added = walk(
        lambda lr, b: 2.0 - math.log(lr) * 0.01 + 0.02 * math.log(b / 8) ** 2,
        [1e-3, 3e-3, 1e-2],
        [4, 8, 16],
        ExtendLimits(max_per_side=2),
    )
    high = [p for p in added if p.side == "lr_high"]
    assert len({p.lr for p in high}) == 2
    assert max(rows["lr"]) == pytest.approx(1e-2 * (1e-2 / 3e-3) ** 2, rel=1e-3)
    assert not interior(rows)


def test_lr_and_batch_bounds_are_limits_too():
    rows, added = walk(bowl(1e-2, 0.1), [1e-2, 3e-2, 1e-1], [2, 4, 8], ExtendLimits(max_per_side=5))
    assert min(rows["batch_size"]) == 1  # a batch below 1 sequence is never proposed
    rows, added = walk(lambda lr, b: 2.0 - lr, [0.1, 0.3, 0.9], [4, 8, 16], ExtendLimits(max_per_side=5))
    assert max(rows["lr"]) <= 1.0


def test_a_new_batch_gets_its_own_three_point_lr_scan():
    new = next_points(
        pd.DataFrame(
            [
                {"lr": lr, "batch_size": b, "final_val_loss": bowl(1e-2, 1)(lr, b)}
                for lr in (3e-3, 1e-2, 3e-2)
                for b in (4, 8, 16)
            ]
        ),
        ExtendLimits(),
    )
    assert sorted(p.lr for p in new if p.side == "batch_low") == [3e-3, 1e-2, 3e-2]
    assert {p.batch_size for p in new} == {2}


def test_bad_limits_are_one_clear_error():
    with pytest.raises(ConfigError, match="--max-per-side: must be a whole number"):
        ExtendLimits(max_per_side=-1)


def test_a_grid_cell_is_arch_size_budget_whatever_the_batch_resolves_to():
    from pathlib import Path

    from ant.sweep.extend import cell_key
    from ant.sweep.grid import Grid

    cfgs = Grid.from_yaml(Path(__file__).parents[2] / "sweeps" / "study2" / "hp.yaml").expand()
    cells = {cell_key(c) for c in cfgs}
    assert len(cells) == len({(c.model.arch, c.model.size) for c in cfgs}) == 8


def test_a_point_at_another_batch_is_the_run_the_grid_itself_would_train():
    """with_point from a cell member at batch 4 to (lr 0.03, batch 8): the same run id as the grid's own run at
    that point (steps and the derived intervals belong to the new batch). A stale `steps` made the worker train
    such points under other run ids than the extension log held, and their cells were never decided again."""
    from pathlib import Path

    from ant.sweep.extend import Point, with_point
    from ant.sweep.grid import Grid

    cfgs = Grid.from_yaml(Path(__file__).parents[2] / "sweeps" / "study2" / "hp.yaml").expand()

    def pick(batch: int, lr: float):
        [c] = [c for c in cfgs if (c.model.arch, c.model.size, c.train.batch_size, c.optim.lr, c.train.seed)
               == ("gptplus", "d24L2", batch, lr, 0)]  # fmt: skip
        return c

    template, target = pick(4, 0.003), pick(8, 0.03)
    new = with_point(template, Point(lr=0.03, batch_size=8, side="batch_high", why="test"))
    assert new.steps == target.steps == template.steps // 2
    assert new.train.eval_interval == target.train.eval_interval != template.train.eval_interval
    assert new.run_id() == target.run_id()


# anGPT at tiny2 and d56L3 (study v2, 20 tokens/param, mean final val loss over seeds 0-2): flat batch curves whose
# best grid point is interior while the fit's Akima minima put the batch optimum on an edge
FLAT_TINY2 = {  # (batch, lr): loss
    (8, 0.0009): 1.5994, (8, 0.003): 1.5286, (8, 0.01): 1.5790, (8, 0.03): 1.6906,
    (16, 0.0009): 1.6533, (16, 0.003): 1.5282, (16, 0.01): 1.5578, (16, 0.03): 1.6370,
    (32, 0.003): 1.5493, (32, 0.01): 1.5286, (32, 0.03): 1.6219,
}  # fmt: skip
FLAT_D56L3 = {
    (16, 0.0009): 1.7033, (16, 0.003): 1.5232, (16, 0.01): 1.5405, (16, 0.03): 1.6525,
    (32, 0.003): 1.5927, (32, 0.01): 1.5223, (32, 0.03): 1.6039,
    (64, 0.003): 1.6634, (64, 0.01): 1.5410, (64, 0.03): 1.6108,
}  # fmt: skip


def _cell(points: dict) -> pd.DataFrame:
    return pd.DataFrame([{"batch_size": b, "lr": lr, "final_val_loss": v} for (b, lr), v in points.items()])


@pytest.mark.parametrize(
    ("points", "best_batch", "side", "new_batch", "lrs"),
    [(FLAT_TINY2, 16, "batch_high", 64, {0.003, 0.01, 0.03}), (FLAT_D56L3, 32, "batch_low", 8, {0.0009, 0.003, 0.01})],
)
def test_a_batch_optimum_the_fit_puts_on_an_edge_is_extended(points, best_batch, side, new_batch, lrs):
    from ant.laws.hp import batch_optimum

    cell = _cell(points)
    fit = batch_optimum(cell)
    assert fit["bs_at_edge"]  # what the BS(N) fit would exclude ...
    m = cell.groupby(["batch_size", "lr"])["final_val_loss"].mean()
    assert m.idxmin()[0] == best_batch  # ... though the best grid point is inside
    added = [p for p in next_points(cell, ExtendLimits()) if p.side.startswith("batch")]
    assert {p.side for p in added} == {side} and {p.batch_size for p in added} == {new_batch}
    assert {p.lr for p in added} == lrs  # its own three-point LR scan around the edge batch's best LR
