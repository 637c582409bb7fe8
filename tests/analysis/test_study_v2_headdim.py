"""The head-dim offset (ant.analysis.study_v2_headdim, part v2-headdim) on CONSTRUCTED runs: δ is the paired twin −
rung difference with a t interval over the pairs, and an IsoFLOP ladder whose head-dim-8 rungs sit δ above a smooth
surface is undetermined as read, and recovered once the offset is removed (C4's exploratory rows)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ant.analysis import study_v2_c4
from ant.analysis import study_v2_headdim as headdim
from tests.analysis.test_study_v2_claims import ALPHA, BETA, _row, budget_table, study

N = {"tiny0": 16.5e3, "tiny1": 49.3e3, "tiny2": 135.5e3}


def twin_runs(delta: float, noise: float = 0.005, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for arch in ("gptplus", "angpt"):
        for rung, n in N.items():
            for s in headdim.SEEDS:
                base = 6.0 * n**-0.12
                rows.append(_row(arch, rung, n, 20 * n, 0.01, 4, s, base + noise * rng.standard_normal()))
                twin = base + delta + noise * rng.standard_normal()
                rows.append(_row(arch, headdim.TWINS[rung], n, 20 * n, 0.01, 4, s, twin))
    return pd.DataFrame(rows)


def test_the_offset_is_the_paired_difference_with_a_t_interval():
    off = headdim.offset(twin_runs(0.08, noise=0.0))
    for arch in ("gptplus", "angpt"):
        o = off[arch]
        assert o["delta"] == pytest.approx(0.08) and o["pairs"] == 9 and o["is_head_dim"]
        assert o["ci"][0] == pytest.approx(0.08) and set(np.round(list(o["per_size"].values()), 9)) == {0.08}
    o = headdim.offset(twin_runs(0.08, noise=0.01))["angpt"]
    assert o["ci"][0] < 0.08 < o["ci"][1] and o["is_head_dim"]
    noisy = headdim.offset(twin_runs(0.0, noise=0.01))["gptplus"]  # no offset: the interval holds 0
    assert noisy["ci"][0] < 0 < noisy["ci"][1] and not noisy["is_head_dim"]
    assert headdim.offset(twin_runs(0.08).iloc[:0]) == {}


def test_removing_a_measured_offset_recovers_an_isoflop_exponent_a_jagged_ladder_hid(tmp_path, monkeypatch):
    monkeypatch.setattr(study_v2_c4, "A3_BOOT", 5)
    runs, pts, bpts = budget_table()
    hd8 = runs["size"].isin(headdim.HEAD_DIM_8)
    runs.loc[hd8, "final_val_loss"] += 0.08  # the head-dim-8 rungs sit 0.08 above the smooth surface
    c = study_v2_c4.c4_v2(study(tmp_path, pd.concat([runs, twin_runs(0.08)], ignore_index=True)), pts, bpts)
    assert c.numbers["head_dim_offset"]["gptplus"]["is_head_dim"]
    raw = c.numbers["per_arch"]["gptplus"]["isoflop"]
    fixed = c.numbers["exploratory"]["batch per budget"]["gptplus"]["isoflop"]
    assert not raw["determined"] and fixed["determined"], (raw["reasons"], fixed["reasons"])
    truth = BETA / (ALPHA + BETA)
    assert fixed["ci"][0] <= truth <= fixed["ci"][1] and fixed["lack_of_fit_sd"] < raw["lack_of_fit_sd"] / 3
    assert "head-dim offset removed (exploratory)" in "\n".join(c.section) and c.verdict == "not determined"


def test_the_hd8_isoflop_grid_is_the_tiny_rung_points_as_twins_at_the_tuned_cell():
    """sweeps/study2/isoflop_hd8.yaml as committed is what hd8_grid_text writes: every v2-isoflop point at tiny0-tiny2
    (10 per arch), as the twin (same N, the point's tokens) at the rung's tuned cell, largest level first."""
    from pathlib import Path

    import yaml

    from ant.analysis import study_v2

    root = Path(__file__).resolve().parents[2]
    tuned = yaml.safe_load((root / study_v2.TUNED_V2).read_text())
    text = headdim.hd8_grid_text(tuned)
    assert (root / headdim.HD8_GRID).read_text() == text
    grids = yaml.safe_load(text)["grids"]
    design = [p for p in study_v2.isoflop_design() if p.size in headdim.TWINS]
    assert len(grids) == 2 * len(design) == 20
    twin_of = {v: k for k, v in headdim.TWINS.items()}
    for g in grids:
        rung = twin_of[g["size"][0]]
        assert any(p.size == rung and p.tokens == g["tokens"][0] for p in design)
        t = tuned[g["arch"][0]][rung]
        assert (g["batch_size"], g["lr"], g["seed"]) == ([t["batch_size"]], [t["lr"]], [0])
    lv = {(p.size, p.tokens): p.level for p in design}
    levels = [lv[twin_of[g["size"][0]], g["tokens"][0]] for g in grids]
    assert levels == sorted(levels, reverse=True)


def test_a_ladder_of_one_head_dim_decides_what_the_mixed_ladder_hid(tmp_path, monkeypatch):
    """The tuned design's head-dim-8 rungs sit 0.08 high; the twins at the tiny rungs' points are head dim 8 too
    (0.08 high): the mixed ladder zig-zags, the one-family ladder is smooth and recovers the exponent."""
    import yaml

    monkeypatch.setattr(study_v2_c4, "A3_BOOT", 5)
    runs, pts, _ = budget_table()
    runs = runs[runs["batch_size"].eq(8)].copy()  # the tuned design only
    runs.loc[runs["size"].isin(headdim.HEAD_DIM_8), "final_val_loss"] += 0.08
    tuned = {a: {s: {"batch_size": 8, "lr": 0.01} for s in set(runs["size"])} for a in ("gptplus", "angpt")}
    loss = {(x.arch, x.size, x.tokens): x.final_val_loss for x in runs.itertuples()}
    twins = [_row(q["arch"], q["size"], 0.0, q["tokens"], 0.01, 8, 0, 0.0) for q in headdim.hd8_points(tuned)]
    twin_of = {v: k for k, v in headdim.TWINS.items()}
    for t in twins:
        rung = twin_of[t["size"]]
        t["num_params"] = float(runs.loc[runs["size"].eq(rung), "num_params"].iloc[0])
        t["final_val_loss"] = loss[t["arch"], rung, t["tokens"]] + 0.08
    st = study(tmp_path, pd.concat([runs, pd.DataFrame(twins)], ignore_index=True))
    (tmp_path / "v2" / "tuned.yaml").write_text(yaml.safe_dump(tuned))
    c = study_v2_c4.c4_v2(st, pts, [])
    mixed = c.numbers["per_arch"]["gptplus"]["isoflop"]
    one = c.numbers["exploratory"][study_v2_c4.FAMILY]["gptplus"]["isoflop"]
    assert not mixed["determined"] and one["determined"], (mixed["reasons"], one["reasons"])
    truth = BETA / (ALPHA + BETA)
    assert one["ci"][0] <= truth <= one["ci"][1] and one["lack_of_fit_sd"] < mixed["lack_of_fit_sd"] / 3
