"""ant/analysis/figG1_lr_sensitivity.py on synthetic run folders: the figure is written, the LR sensitivity recovers
the law's curvature, an optimum on the LR grid edge gives no sensitivity, and no LR grid gives a message."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from ant.analysis import fig2_hp_trends, figG1_lr_sensitivity
from ant.analysis.common import Context, run_script
from ant.laws.synthetic import SynthLaw, write_hp_sweep

LAW = SynthLaw(bs_coef=1.1e-6, bs_exp=0.984, lr_coef=0.065, lr_exp=-0.178, p_lr=0.1, noise=0.0)
FINE_LRS = tuple(np.geomspace(1 / 6, 6, 7))  # 1.8x steps, optimum inside


@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory):
    """3 sizes with interior LR optima, a 4th whose LR grid stops below the optimum; two seeds at one size."""
    res = tmp_path_factory.mktemp("g1") / "results"
    write_hp_sweep(res, {"angpt": {20: LAW}}, {"32M": 3.2e7, "125M": 1.25e8}, lr_factors=FINE_LRS)
    write_hp_sweep(res, {"angpt": {20: LAW}}, {"0.5B": 5e8}, lr_factors=FINE_LRS, seeds=(0, 1))
    write_hp_sweep(res, {"angpt": {20: LAW}}, {"62M": 6.2e7}, lr_factors=(0.05, 0.1, 0.2, 0.4))
    assert run_script(figG1_lr_sensitivity, ["--results", str(res)]) == 0
    return res


def test_figure_is_written_and_sensitivity_recovers_the_law(lr_sweep):
    assert (lr_sweep / "figures" / "figG1_lr_sensitivity.png").stat().st_size > 10_000
    d = json.loads((lr_sweep / "fits" / "figG1_lr_sensitivity.json").read_text())
    sizes = {z["size"]: z for z in d["per_arch"]["angpt"]["20 tokens/param"]["sizes"]}
    assert list(sizes) == ["32M", "62M", "125M", "0.5B"]  # every size is drawn, edge optima included
    truth = LAW.p_lr * math.log(3.0) ** 2  # the law is quadratic in ln(lr / lr*)
    for name in ("32M", "125M", "0.5B"):
        s = sizes[name]["sensitivity"]
        assert s["lr_best"] == pytest.approx(float(LAW.lr_opt(sizes[name]["N"])), rel=0.02)
        assert s["up"] == pytest.approx(truth, rel=0.05) and s["down"] == pytest.approx(truth, rel=0.05)
        assert len(sizes[name]["batches"]) == 3
    assert [x["seed"] for x in sizes["0.5B"]["sensitivity"]["per_seed"]] == [0, 1]
    edge = sizes["62M"]["sensitivity"]
    assert edge["lr_at_edge"] and edge["up"] is None and edge["down"] is None
    assert all(b["lr_at_edge"] for b in sizes["62M"]["batches"])


def test_report_section_shows_the_numbers(lr_sweep):
    d = json.loads((lr_sweep / "fits" / "figG1_lr_sensitivity.json").read_text())
    text = "\n".join(figG1_lr_sensitivity.lr_sensitivity_section(d))
    assert "LR sensitivity" in text and "optimum on the grid edge" in text
    assert "0.121 (" in text  # 0.1 ln(3)^2 at the interior sizes


def test_fig2_excludes_the_edge_size(lr_sweep):
    ctx = Context(lr_sweep)
    t = fig2_hp_trends.compute(ctx)["per_arch"]["angpt"]["20 tokens/param"]
    assert t["n_excluded"] == 1 and t["excluded"][0]["N"] == 6.2e7 and t["bs_fit"]["n"] == 3
    text = "\n".join(
        fig2_hp_trends.hp_section({"regimes": ["20 tokens/param"], "per_arch": {"angpt": {"20 tokens/param": t}}})
    )
    assert "6.2e+07 (best LR at the edge of the LR grid)" in text


def test_no_lr_grid_gives_a_message_not_axes(tmp_path, capsys):
    res = tmp_path / "results"
    write_hp_sweep(res, {"angpt": {20: LAW}}, {"32M": 3.2e7}, lr_factors=(1.0,), bs_factors=(1.0,))
    for m in (figG1_lr_sensitivity, fig2_hp_trends):
        (res / "figures").mkdir(exist_ok=True)
        (res / "figures" / f"{m.NAME}.png").write_bytes(b"stale")  # a figure from older data must not survive
        assert run_script(m, ["--results", str(res)]) == 0
        assert not (res / "figures" / f"{m.NAME}.png").exists()  # no data, no figure: a message instead
    out = capsys.readouterr().out
    assert "no data for panel figG1" in out and "no data for panel fig2" in out and "an HP sweep" in out
    assert "not drawn: figG1_lr_sensitivity" in out and "not drawn: fig2_hp_trends" in out
