"""C4's L(C) interval respects the correlation between the front points of one run (issue 24): a per-run offset
moves every point of a run together, so an OLS interval over points is too narrow; the bootstrap over runs is not."""

from __future__ import annotations

import numpy as np

from ant.laws.frontier import compute_frontier
from ant.laws.synthetic import scaling_curves


def test_run_level_noise_widens_the_alpha_interval():
    c = scaling_curves(noise=0.0)
    rng = np.random.default_rng(0)
    offset = {r: 1 + 0.02 * rng.standard_normal() for r in c["run_id"].unique()}
    c = c.assign(val_loss=c["val_loss"] * c["run_id"].map(offset))
    d = compute_frontier(c).to_dict()
    lo, hi = d["alpha_ci"]
    olo, ohi = d["alpha_ci_ols"]
    assert lo <= olo and hi >= ohi and (hi - lo) > 1.2 * (ohi - olo)
    assert "bootstrap over runs" in d["alpha_ci_method"]
    assert compute_frontier(c, boot=0).to_dict()["alpha_ci"] == d["alpha_ci_ols"]
