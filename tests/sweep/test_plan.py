"""`ant sweep FILE --dry-run`: the plan table and totals, and nothing launched or written."""

from __future__ import annotations

import pytest

from ant.cli import main
from tests.sweep.conftest import write_grid


def test_dry_run_prints_plan_and_launches_nothing(tmp_path, corpus, capsys):
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, seed=[0, 1], tokens=[4096, 8192])
    assert main(["sweep", str(g), "--dry-run"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith(("gptplus-", "angpt-"))]
    assert len(lines) == 8
    head = next(ln for ln in out.splitlines() if ln.startswith("run_id"))
    for col in ("arch", "N", "tokens", "batch", "lr", "FLOPs", "est.time", "status"):
        assert col in head.split()
    assert all(ln.split()[-2] == "missing" for ln in lines)
    assert "8 runs: 8 missing" in out and "time estimate from: " in out
    assert not (tmp_path / "runs").exists()  # nothing launched, no folder made


def test_dry_run_flops_follow_tokens(tmp_path, corpus, capsys):
    from ant.sweep.grid import Grid
    from ant.sweep.plan import build_plan

    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, tokens=[4096, 8192], arch=["angpt"])
    rows, tp = build_plan(Grid.from_yaml(g).expand(), estimate={"flops_per_s": 1e9})
    small, big = sorted(rows, key=lambda r: r.tokens)
    assert big.flops == pytest.approx(2 * small.flops, rel=0.01)
    assert big.est_s == pytest.approx(big.flops / 1e9)
    assert tp.sources == {"grid file estimate.flops_per_s"}


def test_paper_grid_dry_run(capsys):
    assert main(["sweep", "sweeps/paper.yaml", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sweep paper: 528 runs" in out
    assert "angpt-1B-" in out and "a100" in out


def test_bad_grid_exits_2(tmp_path, corpus, capsys):
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["bert"])
    assert main(["sweep", str(g), "--dry-run"]) == 2
    assert "grid.arch" in capsys.readouterr().err
