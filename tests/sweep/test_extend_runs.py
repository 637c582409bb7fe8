"""ant.sweep.extend end to end with real runs (local executor, real Lightning): a grid whose best LR is its highest
gets the next LR a grid step above, trains it, logs it, and a rerun at the round limit adds nothing."""

from __future__ import annotations

import json

import pytest

from ant.sweep.extend import ExtendLimits, extend
from tests.sweep.conftest import corpus, write_grid  # noqa: F401  (the fixture)

pytestmark = pytest.mark.slow


def test_an_edge_optimum_gets_one_more_lr_and_the_limit_holds(tmp_path, corpus):  # noqa: F811
    # LRs far below any sane optimum: the loss falls with the LR, so the best is the grid's upper edge
    grid = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["gptplus"], size=["tiny0"], batch_size=[4],
                      lr=[1e-5, 3e-5, 1e-4])  # fmt: skip
    lines: list[str] = []
    assert extend(str(grid), ExtendLimits(max_rounds=1, max_per_side=1), log=lines.append) == 0
    log = json.loads((tmp_path / "sweeps" / "t" / "extensions.json").read_text())
    assert [e["side"] for e in log] == ["lr_high"] and log[0]["round"] == 1
    assert log[0]["config"]["optim"]["lr"] == pytest.approx(1e-4 * (1e-4 / 3e-5), rel=1e-4)
    summary = json.loads((tmp_path / "runs" / log[0]["run_id"] / "summary.json").read_text())
    assert summary["status"] == "completed"
    lines.clear()
    assert extend(str(grid), ExtendLimits(max_rounds=1, max_per_side=1), log=lines.append) == 0
    assert any("round limit" in x for x in lines)
    assert len(json.loads((tmp_path / "sweeps" / "t" / "extensions.json").read_text())) == 1
