"""`ant sweep FILE --dry-run`: the plan table and totals, and nothing launched or written."""

from __future__ import annotations

from pathlib import Path

import pytest

from ant.cli import main
from tests.sweep.conftest import write_grid

ROOT = Path(__file__).resolve().parents[2]


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
    assert main(["sweep", str(ROOT / "sweeps" / "paper.yaml"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "sweep paper: 528 runs" in out
    assert "angpt-1B-" in out and "a100" in out


def test_bad_grid_exits_2(tmp_path, corpus, capsys):
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["bert"])
    assert main(["sweep", str(g), "--dry-run"]) == 2
    assert "grid.arch" in capsys.readouterr().err


def test_bench_step_time_of_the_same_shape_gives_steps_times_step_plus_overheads(tmp_path, corpus):
    """A single-thread bench row of the run's own (arch, size, batch, seq_len, vocab) is a step time: the
    estimate is steps x that time plus start-up and validation (throughput.overheads_s), one run per core."""
    import json

    from ant.sweep.grid import Grid
    from ant.sweep.plan import build_plan
    from ant.sweep.throughput import EVAL_FRACTION, START_S

    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, tokens=[8192], arch=["angpt"])
    [cfg] = Grid.from_yaml(g).expand()
    bench = tmp_path / "bench"
    bench.mkdir()
    row = {"arch": "angpt", "step_time_ms": 20.0, "lightning_step_time_ms": 25.0, "tokens_per_s": 1.0}
    other = {**row, "arch": "gptplus", "lightning_step_time_ms": 99.0}  # another arch's row is not used
    conf = {"size": "tiny1", "batch": 8, "seq_len": 32, "vocab_size": cfg.model.vocab_size}
    doc = {"device": "cpu (1 threads)", "config": conf, "results": [other, row]}
    (bench / "b.json").write_text(json.dumps(doc))
    [r], tp = build_plan([cfg], concurrency=2, bench_dir=bench)
    train = cfg.steps * 0.025  # the Lightning step, not the bare loop's
    # validation (ant.train.evaluation): step 0 and the log-spaced multiples of eval_interval (10, 20, 30 of 32
    # steps) and the last step, each on all 63 windows (the default evaluates every window); at eval batch 16
    # against the training batch 8, (8 / 16)^0.5 of the cost a token
    assert (cfg.steps, cfg.train.eval_interval) == (32, 10)
    val_tokens = (4 * 63 + 63) * 32
    val = val_tokens * 0.025 / (8 * 32) * EVAL_FRACTION * 0.5**0.5
    assert r.est_s == pytest.approx(train + START_S + val)
    assert any("same arch, size and batch" in s for s in tp.sources)
    (bench / "b.json").write_text(json.dumps({**doc, "config": {**conf, "batch": 16}}))  # another shape: not used
    [r2], _ = build_plan([cfg], concurrency=2, bench_dir=bench)
    assert r2.est_s != pytest.approx(r.est_s)


def test_packed_runs_are_estimated_from_their_share_of_a_packed_worker(tmp_path, corpus):
    """A packed run's summary holds its worker's wall time (K runs trained in it): the planner counts wall / K as
    the run's share, and uses that rate only for runs that will train packed (executor.pack); a run that trains
    alone is estimated from runs that trained alone."""
    import json

    from ant.sweep.grid import Grid
    from ant.sweep.plan import build_plan

    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, tokens=[8192], arch=["angpt"], lr=[1e-3, 3e-3, 1e-2])
    cfgs = Grid.from_yaml(g).expand()
    done, todo = cfgs[:2], cfgs[2]  # two finished runs trained together in 30 s; the third is still to run
    for c in done:
        folder = Path(c.out_dir) / c.run_id()
        folder.mkdir(parents=True)
        summary = {"status": "completed", "flops": 3e9, "wall_time_s": 30.0, "tokens": c.train.tokens,
                   "device": "cpu", "arch": c.model.arch, "size": c.model.size, "batch_size": c.train.batch_size,
                   "seq_len": c.data.seq_len, "packed_with": [x.run_id() for x in done]}  # fmt: skip
        (folder / "summary.json").write_text(json.dumps(summary))
    rows, tp = build_plan(cfgs, concurrency=2, pack=3)
    [r] = [r for r in rows if r.run_id == todo.run_id()]
    assert r.est_s == pytest.approx(15.0)  # its share of a packed worker: 30 s / 2 runs
    assert any("packed" in s for s in tp.sources)
    rows, tp = build_plan(cfgs, concurrency=2)  # packing off: no packed rate may predict it
    [r] = [r for r in rows if r.run_id == todo.run_id()]
    assert r.est_s != pytest.approx(15.0) and not any("packed" in s for s in tp.sources)


def test_runs_in_a_committed_table_are_not_trained_again(tmp_path, corpus, capsys):
    """A study part trained in another session leaves rows in its group's runs.parquet and no run folders here:
    `ant sweep --done-from TABLE` (and the edge extension, which `ant study run` passes it to) counts them done."""
    import pandas as pd

    from ant.sweep.extend import ExtendLimits, extend
    from ant.sweep.grid import Grid

    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, arch=["gptplus"], lr=[1e-3, 3e-3, 1e-2])
    ids = [c.run_id() for c in Grid.from_yaml(g).expand()]
    table = tmp_path / "runs.parquet"
    pd.DataFrame({"run_id": ids, "status": "completed", "final_val_loss": [3.0, 2.5, 2.9]}).to_parquet(table)
    assert main(["sweep", str(g), "--done-from", str(table)]) == 0
    assert "0 to run, 3 done" in capsys.readouterr().out
    assert not (tmp_path / "runs").exists()  # nothing trained
    lines: list[str] = []
    assert extend(str(g), ExtendLimits(max_rounds=1), log=lines.append, done_from=str(table)) == 0
    assert any("interior" in x for x in lines) and not (tmp_path / "runs").exists()  # lr 3e-3 is interior
    assert main(["sweep", str(g), "--done-from", str(tmp_path / "nope.parquet")]) == 2
