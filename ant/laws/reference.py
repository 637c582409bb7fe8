"""Published numbers the suite compares against, and the Chinchilla reference points.

Paper values are from the project's paper notes (anGPT, arXiv 2505.22014v2); Chinchilla values from Epoch AI's
refit of Hoffmann et al. Fig. 4, whose points ship in ant/laws/assets (see its README).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from ant.errors import ConfigError

CHINCHILLA_CSV = "chinchilla-fig4-points.csv"
ASSETS = Path(__file__).resolve().parent / "assets"
CHINCHILLA_SHA256 = "193478df4e90f040016431996c45682659306840ecdadf83cfb9cd5ca0aa1b30"

# Approach 3 on the 240 points with the README's protocol (objective 0.00101827), reproduced by ant.laws.fits.
CHINCHILLA_REPRODUCED = {"E": 1.8172, "A": 477.8, "B": 2143.4, "alpha": 0.3473, "beta": 0.3672}
# Epoch AI's published refit (Huber likelihood with a fitted scale, BFGS) and its bootstrap standard errors.
CHINCHILLA_EPOCH = {"E": 1.817, "A": 482.01, "B": 2085.43, "alpha": 0.3478, "beta": 0.3658}
CHINCHILLA_EPOCH_SE = {"E": 0.026, "A": 124.5, "B": 1293.0, "alpha": 0.0154, "beta": 0.0206}
CHINCHILLA_HOFFMANN = {"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}

# Paper §5.1 (Fig. 2): BS(N) in sequences of 2048 tokens, LR(N); (coef, exponent, R^2).
PAPER_HP = {
    "angpt": {"bs": (1.1e-06, 0.984, 0.974), "lr": (0.065, -0.178, 0.659)},
    "gptplus": {"bs": (9e-05, 0.729, 0.827), "lr": (42.0, -0.482, 0.783)},
}
# Paper §5.2: mean convergence speedup vs GPT+ (token-budget ratio).
PAPER_SPEEDUP = {"angpt": 1.40, "ngpt": 1.29}
# Paper §5.3 Table 2: seconds per step, 0.5B, 4x A100.
PAPER_STEP_TIME_S = {"gptplus": 0.1416, "angpt": 0.1455, "ngpt": 0.1552}
# Paper §5.4: L(C) = A C^-alpha; Table J.1: N_opt = N0 C^aN, D_opt = D0 C^aD.
PAPER_FRONTIER = {
    "angpt": {"A": 28.4, "alpha": 0.053, "N0": 0.650506, "aN": 0.451378, "D0": 9.727337, "aD": 0.473190},
    "gptplus": {"A": 32.6, "alpha": 0.056, "N0": 0.336617, "aN": 0.465600, "D0": 13.408079, "aD": 0.466271},
}
# Paper App. M: alpha_A, alpha_M rise from 0.05 to 0.12-0.25 over training (0.5B).
PAPER_ALPHA = {"init": 0.05, "final_range": (0.12, 0.25)}


def chinchilla_csv() -> Path:
    """$ANT_SHARED_DATA/chinchilla-fig4-points.csv when that variable is set, else the copy shipped in
    ant/laws/assets (Epoch AI's extraction, unchanged; provenance in its README), so the reference check runs on
    every machine."""
    env = os.environ.get("ANT_SHARED_DATA")
    return (Path(env) if env else ASSETS) / CHINCHILLA_CSV


def load_chinchilla_points(path: str | Path | None = None, drop_highest: int = 5) -> pd.DataFrame:
    """Epoch's 245 points from Hoffmann et al. Fig. 4 as columns N, C, D (= C / 6N), loss, without the
    `drop_highest` highest-loss points (Epoch drops 5 outliers)."""
    p = Path(path) if path else chinchilla_csv()
    if not p.is_file():
        raise ConfigError("chinchilla_csv", f"file not found: {p} (unset ANT_SHARED_DATA or pass a path)")
    raw = pd.read_csv(p)
    missing = {"Model Size", "Training FLOP", "loss"} - set(raw.columns)
    if missing:
        raise ConfigError("chinchilla_csv", f"{p} lacks columns {sorted(missing)}")
    df = pd.DataFrame({"N": raw["Model Size"], "C": raw["Training FLOP"], "loss": raw["loss"]})
    df["D"] = df["C"] / (6 * df["N"])
    df = df.sort_values("loss", kind="stable")
    if drop_highest:
        df = df.iloc[:-drop_highest]
    return df.reset_index(drop=True).astype(np.float64)
