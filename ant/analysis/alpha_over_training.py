"""App. M: the effective residual interpolation weights alpha_A, alpha_M per layer over training.

Paper claim (§5.7): alpha starts at 0.05 and rises to 0.12-0.25 during training (anGPT, 0.5B).
"""

from __future__ import annotations

import re
import sys

import matplotlib.pyplot as plt
import numpy as np

from ant.analysis.common import Context, Section, largest_run_curves, run_script
from ant.laws.plotting import label, placeholder, sort_archs

NAME = "alpha_over_training"
KINDS = ("alpha_a", "alpha_m")
PAT = re.compile(r"^(alpha_[am])_(\d+)$")


def _cols(df, kind: str) -> list[str]:
    cols = [c for c in df.columns if (m := PAT.match(c)) and m.group(1) == kind]
    return sorted(cols, key=lambda c: int(PAT.match(c).group(2)))


def pick_runs(ctx: Context) -> dict:
    c = ctx.curves
    return largest_run_curves(c, _cols(c, "alpha_a") + _cols(c, "alpha_m"))


def compute(ctx: Context) -> dict:
    picked = pick_runs(ctx)
    if not picked:
        ctx.no_data("App. M (alpha over training)", "'alpha_a_<i>'/'alpha_m_<i>' columns from ngpt/angpt runs")
        return {"per_arch": {}}
    per_arch = {}
    for arch, run in picked.items():
        d = {"run_id": run["run_id"].iloc[0], "num_params": int(run["num_params"].iloc[0])}
        for kind in KINDS:
            cols = [c for c in _cols(run, kind) if run[c].notna().any()]
            if not cols:
                continue
            v = run[cols].dropna(how="all")
            d[kind] = {
                "initial_mean": float(np.nanmean(v.iloc[0])),
                "final_mean": float(np.nanmean(v.iloc[-1])),
                "final_min": float(np.nanmin(v.iloc[-1])),
                "final_max": float(np.nanmax(v.iloc[-1])),
                "final_per_layer": v.iloc[-1].tolist(),
            }
        per_arch[arch] = d
    return {"per_arch": per_arch}


def plot(ctx: Context, numbers: dict) -> None:
    picked = pick_runs(ctx)
    archs = sort_archs(picked) or ["angpt"]
    fig, axes = plt.subplots(len(archs), 2, figsize=(8, 3.0 * len(archs)), squeeze=False)
    for row, arch in zip(axes, archs):
        for ax, kind in zip(row, KINDS):
            run = picked.get(arch)
            cols = [] if run is None else [c for c in _cols(run, kind) if run[c].notna().any()]
            if not cols:
                placeholder(ax, f"no {kind} for {label(arch)}")
                continue
            cmap = plt.get_cmap("plasma")
            for i, col in enumerate(cols):
                ok = run[col].notna()
                ax.plot(run.loc[ok, "tokens"], run.loc[ok, col], color=cmap(i / max(1, len(cols))), lw=1.2,
                        label=f"layer {i}" if len(cols) <= 8 else None)  # fmt: skip
            ax.axhline(0.05, color="0.5", ls=":", lw=1)
            ax.axhspan(0.12, 0.25, color="0.85", alpha=0.5, lw=0)  # the paper's final range
            sym = "A" if kind == "alpha_a" else "M"
            ax.set(xscale="log", xlabel="tokens", ylabel=f"mean $\\alpha_{sym}$",
                   title=f"{label(arch)}: $\\alpha_{sym}$ (grey band: paper's final range)")  # fmt: skip
            if len(cols) <= 8:
                ax.legend(ncol=2)
    fig.tight_layout()
    ctx.save_figure(fig, NAME)


SECTION = Section(
    NAME, "effective alpha per layer over training (largest run)", compute, plot
)  # reported in fig1's section


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
