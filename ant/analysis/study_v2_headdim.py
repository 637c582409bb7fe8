"""The head-dim offset (part v2-headdim; docs/study.md "The head-dim offset", preregistered before its runs): the v2
ladder alternates head dim 16 (tiny0-tiny2) and 8 (d24L2, d40L3, d56L3), and an offset that alternates along the
ladder is a lack of fit no parabola in log N can absorb. The part trains tiny0-tiny2 and their head-dim-8 twins
(same width, depth and N) at the rung's tuned cell, paired by seed; `offset` measures δ = twin − rung, and
`corrected` is C4's exploratory reading: the IsoFLOP points of the head-dim-8 rungs lowered by δ.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

TWINS = {"tiny0": "tiny0h8", "tiny1": "tiny1h8", "tiny2": "tiny2h8"}
HEAD_DIM_8 = ("d24L2", "d40L3", "d56L3")  # the ladder's head-dim-8 rungs (ant/models/sizes.py)
SEEDS = (20, 21, 22)  # sweeps/study2/headdim.yaml
TPP = 20


def offset(runs: pd.DataFrame, level: float = 0.95) -> dict[str, dict]:
    """Per arch: δ (mean over the (size, seed) pairs of twin − rung final val loss, both completed), its t interval
    over the pairs, the per-size means and the pair count. {} while the part has no pairs."""
    if runs.empty:
        return {}
    r = runs[runs["status"].eq("completed") & runs["seed"].isin(SEEDS)]
    r = r[(r["tokens"] / r["num_params"]).between(TPP * 0.95, TPP * 1.1)]
    out = {}
    for arch, g in r.groupby("arch"):
        loss = g.set_index(["size", "seed"])["final_val_loss"]
        diffs, per_size = [], {}
        for rung, twin in TWINS.items():
            d = [loss[twin, s] - loss[rung, s] for s in SEEDS if (twin, s) in loss.index and (rung, s) in loss.index]
            diffs += d
            if d:
                per_size[rung] = float(np.mean(d))
        if len(diffs) < 2:
            continue
        x = np.asarray(diffs, dtype=float)
        half = float(stats.t.ppf(0.5 + level / 2, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))
        m = float(x.mean())
        out[str(arch)] = {"delta": m, "ci": [m - half, m + half], "pairs": len(x), "per_size": per_size,
                          "is_head_dim": bool(m - half > 0)}  # fmt: skip
    return out


def corrected(g: pd.DataFrame, delta: float) -> pd.DataFrame:
    """The runs with the head-dim-8 rungs' final val loss lowered by δ (the head-dim-16 family's loss at that N)."""
    return g.assign(final_val_loss=g["final_val_loss"] - delta * g["size"].isin(HEAD_DIM_8))
