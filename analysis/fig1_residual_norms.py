"""Fig. 1: mean L2 norm of the residual stream entering each block, over training, per architecture.

Paper claim (§1.1, Fig. 1, Table O.1): in GPT+ the norm grows with depth (to ~1e3 in the last layer of the 0.5B
model); nGPT stays at 1; anGPT is strongly reduced. Measured here on the largest model that logged diagnostics.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from analysis.common import Context, largest_run_curves, run_script  # noqa: E402
from ant.laws.plotting import color, label, placeholder, sort_archs  # noqa: E402

NAME = "fig1_residual_norms"
PREFIX = "resid_norm_"


def _layer_cols(df) -> list[str]:
    cols = [c for c in df.columns if c.startswith(PREFIX)]
    return sorted(cols, key=lambda c: int(c[len(PREFIX) :]))


def pick_runs(ctx: Context) -> dict:
    """arch -> curve rows (with diagnostics) of its largest, longest run (lowest seed)."""
    cols = _layer_cols(ctx.curves)
    return {
        arch: run[["tokens", "num_params", "run_id", *[x for x in cols if run[x].notna().any()]]]
        for arch, run in largest_run_curves(ctx.curves, cols).items()
    }


def compute(ctx: Context) -> dict:
    picked = pick_runs(ctx)
    if not picked:
        ctx.no_data("fig1 (residual norms)", f"'{PREFIX}<i>' columns in metrics.parquet of completed runs")
        return {"per_arch": {}}
    per_arch = {}
    for arch, run in picked.items():
        cols = _layer_cols(run)
        final = run[cols].ffill().iloc[-1].to_numpy(float)
        per_arch[arch] = {
            "run_id": run["run_id"].iloc[0],
            "num_params": int(run["num_params"].iloc[0]),
            "tokens": int(run["tokens"].max()),
            "final_norm_per_layer": final.tolist(),
            "last_over_first": float(final[-1] / final[0]),
            "max_norm": float(np.nanmax(run[cols].to_numpy(float))),
        }
    return {"per_arch": per_arch}


def plot(ctx: Context, numbers: dict) -> None:
    picked = pick_runs(ctx)
    archs = sort_archs(picked) or ["gptplus", "ngpt", "angpt"]
    fig, axes = plt.subplots(1, len(archs) + 1, figsize=(3.3 * (len(archs) + 1), 3.2))
    for ax, arch in zip(axes, archs):
        if arch not in picked:
            placeholder(ax, f"no {label(arch)} run with residual norms")
            continue
        run = picked[arch]
        cols = _layer_cols(run)
        cmap = plt.get_cmap("viridis")
        for i, col in enumerate(cols):
            ok = run[col].notna()
            ax.plot(run.loc[ok, "tokens"], run.loc[ok, col], color=cmap(i / max(1, len(cols) - 1)), lw=1.2)
        ax.set(
            xscale="log", yscale="log", xlabel="tokens", title=f"{label(arch)} ({run['num_params'].iloc[0]:.3g} params)"
        )
        sm = plt.cm.ScalarMappable(cmap=cmap, norm=plt.Normalize(0, len(cols) - 1))
        cb = fig.colorbar(sm, ax=ax, label="layer (input of block i)", fraction=0.05)
        cb.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel("mean residual L2 norm")
    ax = axes[-1]  # depth profile at the end of training, all archs together
    for arch in archs:
        if arch in numbers["per_arch"]:
            f = numbers["per_arch"][arch]["final_norm_per_layer"]
            ax.plot(range(len(f)), f, "o-", color=color(arch), label=label(arch), ms=3)
    ax.set(yscale="log", xlabel="layer", title="end of training")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if numbers["per_arch"]:
        ax.legend()
    else:
        placeholder(ax, "no residual norms logged")
    fig.tight_layout()
    ctx.save_figure(fig, NAME)


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
