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
import yaml
from scipy import stats

from ant.analysis.study_v2 import ARCHS, TUNED_V2, at_cell, grid_text, isoflop_design
from ant.fsio import atomic_write_text

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


# ---------------------------------------------------------------------------------------------- a one-family ladder
# Part v2-isoflop-hd8 (preregistered in docs/study.md before its runs): v2-isoflop's points at the head-dim-16 rungs
# retrained as their head-dim-8 twins at the rung's tuned cell, so that with the d-rungs' points the IsoFLOP ladder
# is one head-dim family (tiny0h8, d24L2, tiny1h8, d40L3, tiny2h8, d56L3).
HD8_GRID = "sweeps/study2/isoflop_hd8.yaml"


def hd8_points(tuned: dict) -> list[dict]:
    """One dict per (arch, design point at a head-dim-16 rung): the twin, the point's tokens and level, the rung's
    tuned batch and LR (`tuned`: results/study/v2/tuned.yaml; a rung without a tuned entry has no twin point)."""

    return [{"arch": a, "size": TWINS[p.size], "tokens": int(p.tokens), "level": float(p.level),
             "batch_size": int(tuned[a][p.size]["batch_size"]), "lr": float(tuned[a][p.size]["lr"])}
            for a in ARCHS for p in isoflop_design() if p.size in TWINS and p.size in tuned.get(a, {})]  # fmt: skip


def hd8_grid_text(tuned: dict) -> str:

    head = [
        '# Study v2 part "v2-isoflop-hd8" (C4 on a ladder of one head dim; docs/study.md "The head-dim offset").',
        "# WRITTEN by `python -m ant.analysis.study_v2_headdim` from results/study/v2/tuned.yaml: do not edit by hand.",
        "# v2-isoflop's points at tiny0-tiny2, retrained as their head-dim-8 twins (same N and tokens) at the rung's",
        "# tuned cell, seed 0: with the d-rungs' points, every IsoFLOP level is one head-dim family.",
    ]
    # largest level first: the longest runs start first, so two workers finish together
    pts = sorted(hd8_points(tuned), key=lambda q: (-q["level"], q["arch"]))
    grids = [{"arch": [q["arch"]], "size": [q["size"]], "tokens": [q["tokens"]], "batch_size": [q["batch_size"]],
              "lr": [q["lr"]], "seed": [0]} for q in pts]  # fmt: skip
    return grid_text("study2-isoflop-hd8", head, grids)


def hd8_ladder(tuned_design: pd.DataFrame, runs: pd.DataFrame, tuned: dict) -> pd.DataFrame:
    """The one-family IsoFLOP: the tuned design's head-dim-8 rung points (`tuned_design`, with `level`) and the
    completed twin runs at the hd8 points (`runs`: the v2 table); empty while no twin point has trained."""
    if runs.empty:
        return runs
    done = runs[runs["status"].eq("completed")]
    twins = []
    for q in hd8_points(tuned):
        twins.append(done[at_cell(done, q)].assign(level=q["level"]))  # requested tokens: whole steps train more
    twins = pd.concat(twins) if twins else done.iloc[:0]
    if twins.empty:
        return twins
    return pd.concat([tuned_design[tuned_design["size"].isin(HEAD_DIM_8)], twins], ignore_index=True)


def main() -> int:
    atomic_write_text(HD8_GRID, hd8_grid_text(yaml.safe_load(TUNED_V2.read_text())))
    print(f"wrote {HD8_GRID}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
