"""Study v2's preregistered extrapolation (ant.analysis.study_v2.predict) and IsoFLOP grid, on constructed runs:
losses that follow L = c N^-g and HP optima that follow power laws are extrapolated to the held-out size within
their intervals; the generated IsoFLOP grid expands and holds >= 4 sizes per compute level."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ant.analysis import study_v2, study_v2_extrapolation
from ant.sweep.grid import Grid

ROOT = Path(__file__).resolve().parents[2]

N = {"tiny0": 16.5e3, "d24L2": 30.8e3, "tiny1": 49.3e3, "d40L3": 97.6e3, "tiny2": 135.5e3}
HELD = 295.5e3


def truth(n):  # optimum loss, LR and batch at size n
    return 6.0 * n**-0.12, 0.05 * n**-0.2, 0.0005 * n**0.8


def constructed_runs(noise=0.002):
    import numpy as np

    rng = np.random.default_rng(0)
    rows = []
    for size, n in N.items():
        l0, lr0, b0 = truth(n)
        for arch, off in (("gptplus", 0.0), ("angpt", 0.02)):
            for lr in lr0 * np.array([1 / 3, 1, 3]) * 1.3:
                for b in sorted({max(1, round(b0 * f)) for f in (0.5, 1, 2)}):
                    for seed in (0, 1):
                        loss = (l0 + off) * (1 + 0.02 * math.log(lr / lr0) ** 2 + 0.01 * math.log(b / b0) ** 2)
                        rows.append(
                            {
                                "arch": arch,
                                "size": size,
                                "num_params": n,
                                "tokens": 20 * n,
                                "lr": lr,
                                "batch_size": b,
                                "seed": seed,
                                "status": "completed",
                                "final_val_loss": loss * (1 + noise * rng.standard_normal()),
                            }
                        )
    return pd.DataFrame(rows)


def test_predicts_the_held_out_loss_and_hps_from_the_smaller_sizes():
    p = study_v2.predict(constructed_runs(), {"gptplus": HELD, "angpt": HELD})
    l0, lr0, b0 = truth(HELD)
    for arch, off in (("gptplus", 0.0), ("angpt", 0.02)):
        d = p["per_arch"][arch]
        lo, hi = d["loss"]["interval"]
        assert lo < l0 + off < hi * 1.01 and d["loss"]["value"] == pytest.approx(l0 + off, rel=0.03)
        assert d["lr"] == pytest.approx(lr0 * 1.3, rel=0.35)
        assert d["batch_size"] == pytest.approx(b0, rel=0.35)
    gap = p["gap_angpt_minus_gptplus"]
    assert gap["interval"][0] < gap["value"] < gap["interval"][1]


def test_too_few_sizes_is_one_clear_error():
    from ant.errors import ConfigError

    runs = constructed_runs()
    with pytest.raises(ConfigError, match="prediction"):
        study_v2.predict(runs[runs["size"].isin(["tiny0", "tiny1"])], {"gptplus": HELD, "angpt": HELD})


def test_the_isoflop_grid_is_the_design_and_has_four_sizes_per_level(tmp_path):
    text = study_v2.isoflop_grid_text()
    assert text == study_v2.ISOFLOP_GRID.read_text()  # the committed grid is what the design writes
    doc = yaml.safe_load(text)
    tuned = tmp_path / "tuned.yaml"
    tuned.write_text(
        yaml.safe_dump({a: {s: {"lr": 1e-2, "batch_size": 8} for s in study_v2.LADDER} for a in study_v2.ARCHS})
    )
    for g in doc["grids"]:
        g["lr"] = g["batch_size"] = {"from_study": str(tuned)}
    cfgs = Grid.from_dict(doc).expand()
    from ant.sweep.plan import flops_per_token

    per_level: dict = {}
    for c in cfgs:
        lvl = min(study_v2.LEVELS, key=lambda L: abs(math.log(c.train.tokens * flops_per_token(c) / L)))
        per_level.setdefault(lvl, set()).add(c.model.size)
    assert set(per_level) == set(study_v2.LEVELS)
    assert all(len(s) >= 4 for s in per_level.values())


def test_the_extrapolation_row_reads_the_prediction_against_the_held_out_runs(tmp_path):
    import json

    from ant.analysis.study_common import Study
    from ant.laws.collect import atomic_parquet

    pred = {"held_out": "tiny3", "tokens_per_param": 20, "fit_sizes": list(study_v2.FIT_SIZES),
            "fitting_code_commit": "0123456789abcdef", "per_arch": {
                a: {"num_params": HELD, "lr": 0.01, "batch_size": 32, "loss": {"value": 1.50, "interval": [1.45, 1.55]}}
                for a in study_v2.ARCHS},
            "gap_angpt_minus_gptplus": {"value": 0.0, "interval": [-0.05, 0.05]}}  # fmt: skip
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "prediction.json").write_text(json.dumps(pred))
    st = Study(tmp_path)
    assert study_v2_extrapolation.extrapolation_claim(st).verdict == "predicted, not yet measured"
    runs = pd.DataFrame(
        [
            {
                "run_id": f"{a}-{s}",
                "arch": a,
                "size": "tiny3",
                "num_params": HELD,
                "tokens": 20 * HELD,
                "lr": 0.01,
                "batch_size": 32,
                "seed": s,
                "status": "completed",
                "final_val_loss": 1.52 if a == "gptplus" else 1.60,
            }
            for a in study_v2.ARCHS
            for s in (0, 1)
        ]
    )
    atomic_parquet(runs, tmp_path / "v2" / "runs.parquet")
    c = study_v2_extrapolation.extrapolation_claim(Study(tmp_path))
    assert c.verdict == "outside its interval" and "1 of 2" in c.why  # anGPT's 1.60 lies above [1.45, 1.55]
    # the measured gap 1.60 - 1.52 = +0.08 lies outside the predicted [-0.05, +0.05]
    assert "gap outside its interval" in c.why and "measured +0.0800" in c.ours
    assert "0123456789ab" in c.scale


# ---------------------------------------------------------------------------------------------- IsoFLOP fallback
def _fallback_table(tuned_status: str) -> tuple[pd.DataFrame, list, dict]:
    """angpt d24L2: a 20-tokens/param HP grid (the tuned cell b1/0.01 best, b2/0.03 with a diverged seed) and one
    IsoFLOP design point at 50 tokens/param trained at the tuned cell with `tuned_status`."""
    from ant.laws.isoflop_design import DesignPoint

    n = N["d24L2"]
    d20, d50 = 20 * n, 50 * n
    grid = [((1, 0.01), [1.95, 1.96]), ((2, 0.01), [1.97, 1.975]), ((1, 0.003), [2.0, 2.01]), ((2, 0.03), [1.90, None])]
    rows = []
    for (b, lr), losses in grid:
        for seed, loss in enumerate(losses):
            rows.append({"arch": "angpt", "size": "d24L2", "num_params": n, "tokens": d20, "cfg.train.tokens": d20,
                         "batch_size": b, "lr": lr, "seed": seed, "final_val_loss": loss, "diverged_step": None,
                         "status": "completed" if loss else "diverged"})  # fmt: skip
    rows.append({**rows[0], "tokens": d50, "cfg.train.tokens": d50, "seed": 0, "status": tuned_status,
                 "final_val_loss": 2.2 if tuned_status == "diverged" else 1.9,
                 "diverged_step": 4663 if tuned_status == "diverged" else None})  # fmt: skip
    pts = [DesignPoint(level=2.5e11, size="d24L2", num_params=n, tokens=int(d50), tokens_per_param=50.0)]
    tuned = {"angpt": {"d24L2": {"batch_size": 1, "lr": 0.01}}}
    return pd.DataFrame(rows), pts, tuned


def test_a_diverged_design_point_falls_back_to_the_next_best_completed_cell():
    runs, pts, tuned = _fallback_table("diverged")
    (fb,) = study_v2.isoflop_fallbacks(runs, tuned, pts)
    # b2/0.03 has the lowest loss but a diverged seed; b1/0.01 is the tuned cell: next best is b2/0.01
    assert (fb["batch_size"], fb["lr"], fb["diverged_step"]) == (2, 0.01, 4663)
    assert fb["tuned"] == {"batch_size": 1, "lr": 0.01} and fb["level"] == 2.5e11
    runs_ok, pts, tuned = _fallback_table("completed")
    assert study_v2.isoflop_fallbacks(runs_ok, tuned, pts) == []


def test_isoflop_runs_keep_the_tuned_cell_and_mark_a_fallback():
    from ant.analysis import study_v2_c4

    runs, pts, tuned = _fallback_table("diverged")
    point = runs.iloc[[-1]]
    fallback = point.assign(batch_size=2, status="completed", final_val_loss=1.92)
    done = lambda r: r[r["status"] == "completed"]  # noqa: E731
    r = study_v2_c4.isoflop_runs(done(pd.concat([runs, fallback], ignore_index=True)), pts, tuned)
    assert len(r) == 1 and r["fallback"].all() and r["batch_size"].iloc[0] == 2
    both = pd.concat([runs.iloc[:-1], point.assign(status="completed", final_val_loss=1.9), fallback])
    r = study_v2_c4.isoflop_runs(done(both.reset_index(drop=True)), pts, tuned)
    assert len(r) == 1 and not r["fallback"].any() and r["batch_size"].iloc[0] == 1


def test_the_fallback_grid_expands_to_the_fallback_cells(monkeypatch):
    runs, pts, tuned = _fallback_table("diverged")
    monkeypatch.setattr(study_v2, "isoflop_design", lambda arch="gptplus": pts)
    text = study_v2.isoflop_fallback_grid_text(runs, tuned)
    assert "diverged at step 4663 -> batch 2, LR 0.01" in text
    g = yaml.safe_load(text)["grids"]
    assert g == [{"arch": ["angpt"], "size": ["d24L2"], "tokens": [int(pts[0].tokens)], "batch_size": [2],
                  "lr": [0.01], "seed": [0]}]  # fmt: skip
    with pytest.raises(Exception, match="nothing to retrain"):
        study_v2.isoflop_fallback_grid_text(_fallback_table("completed")[0], tuned)


def test_the_budget_grid_is_the_design_at_the_rule_s_hps_two_seeds_packed_in_level_order():
    """sweeps/study2/isoflop_budget.yaml as committed is what the rule writes from the committed v2 HP runs (so it
    cannot drift from ant.laws.isoflop_design.budget_hps), and it expands to the design's 5 x 4 points per arch, each
    with two seeds that pack together; levels run smallest first, so a short session leaves whole levels."""
    from ant.sweep.packing import pack_groups

    runs = pd.read_parquet(ROOT / "results/study/v2/runs.parquet")
    text = study_v2.isoflop_budget_grid_text(runs)
    assert (ROOT / study_v2.ISOFLOP_BUDGET_GRID).read_text() == text
    pts = study_v2.isoflop_budget_points(runs)
    design = study_v2.isoflop_design()
    assert len(pts) == 2 * len(design) == 40
    for q in pts:  # batch grows with the tokens at every size, so no two levels of a size share a batch
        same = [x for x in pts if x["arch"] == q["arch"] and x["size"] == q["size"] and x["tokens"] > q["tokens"]]
        assert all(x["batch_size"] > q["batch_size"] and x["lr"] > q["lr"] for x in same)
    cfgs = Grid.from_dict(yaml.safe_load(text)).expand()
    assert len(cfgs) == 80 and {c.train.seed for c in cfgs} == {0, 1}
    groups = pack_groups(cfgs, 2)
    assert len(groups) == 40 and all({c.train.seed for c in g} == {0, 1} for g in groups)
    level = {(p.size, p.tokens): p.level for p in design}
    levels = [level[c.model.size, c.train.tokens] for c in cfgs]
    assert levels == sorted(levels)


def test_the_headdim_grid_pairs_each_rung_with_its_head_dim_8_twin_at_the_tuned_cell():
    """Part v2-headdim: each twin has its rung's width, depth and N (so its tokens), only twice the heads; both
    train at the rung's committed tuned cell with the same fresh seeds (>= 10: outside the HP, IsoFLOP and tuned
    readings), three seeds of a shape packed together."""
    from ant.models.sizes import SIZES
    from ant.sweep.packing import pack_groups

    doc = yaml.safe_load((ROOT / "sweeps/study2/headdim.yaml").read_text())
    tuned = yaml.safe_load((ROOT / study_v2.TUNED_V2).read_text())
    cfgs = Grid.from_dict(doc).expand()
    assert len(cfgs) == 36 and doc["executor"]["pack"] == 3
    by = {(c.model.arch, c.model.size, c.train.seed): c for c in cfgs}
    for (arch, size, seed), c in by.items():
        if size.endswith("h8"):
            o = by[arch, size[:-2], seed]
            a, b = SIZES[size], SIZES[size[:-2]]
            assert (a.d_model, a.n_layers, a.head_dim * 2) == (b.d_model, b.n_layers, b.head_dim)
            assert (c.num_params, c.train.tokens) == (o.num_params, o.train.tokens)
            assert (c.train.batch_size, c.optim.lr) == (o.train.batch_size, o.optim.lr)
        else:
            t = tuned[arch][size]
            assert (c.train.batch_size, c.optim.lr) == (t["batch_size"], t["lr"]) and seed >= 10
    assert len(pack_groups(cfgs, 3)) == 12
