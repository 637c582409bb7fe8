"""Fig. 2: optimal batch size and learning rate per model size, with the power laws BS(N), LR(N).

Paper claim (§5.1): anGPT BS = 1.1e-6 N^0.984 (R^2 0.974), LR = 0.065 N^-0.178 (R^2 0.659); GPT+ BS = 9e-5
N^0.729 (R^2 0.827), LR = 42 N^-0.482 (R^2 0.783): anGPT's optimal batch grows ~linearly with N, its LR barely
moves. Two-stage Akima procedure of ant.laws.hp on the completed runs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.common import Context, run_script  # noqa: E402
from ant.laws.hp import hp_trends  # noqa: E402
from ant.laws.plotting import color, label, placeholder, sort_archs  # noqa: E402
from ant.laws.reference import PAPER_HP  # noqa: E402

NAME = "fig2_hp_trends"


def compute(ctx: Context) -> dict:
    done = ctx.done
    if done.empty:
        ctx.no_data("fig2 (HP trends)", "completed runs with >= 3 LRs per (arch, size, batch)")
        return {"per_arch": {}}
    try:
        trends = hp_trends(done)
    except ValueError as e:
        ctx.no_data("fig2 (HP trends)", f">= 3 LRs per (arch, size, batch) ({e})")
        return {"per_arch": {}}
    out = {}
    for arch, t in trends.items():
        d = t.to_dict()
        d["seeds"] = sorted(int(s) for s in done.loc[done["arch"] == arch, "seed"].unique())
        out[arch] = d
        if t.per_batch.empty:
            ctx.no_data(f"fig2 {arch}", "an HP sweep: >= 3 LRs per (size, batch)")
        elif t.bs_fit is None:
            ctx.no_data(f"fig2 BS(N)/LR(N) fit for {arch}", f"optima at >= 3 sizes ({'; '.join(t.notes[:3])})")
    return {"per_arch": out}


def plot(ctx: Context, numbers: dict) -> None:
    per = numbers["per_arch"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    if not per:
        for ax in axes:
            placeholder(ax, "no HP sweep yet: need >= 3 LRs per (arch, size, batch)")
    for arch in sort_archs(per):
        d = per[arch]
        if not d["per_size"]:
            continue
        N = np.array([r["N"] for r in d["per_size"]])
        for ax, key, fit_key in ((axes[0], "bs_opt", "bs_fit"), (axes[1], "lr_opt", "lr_fit")):
            y = np.array([r[key] for r in d["per_size"]])
            edge = np.array([r["bs_at_edge"] for r in d["per_size"]])
            ax.scatter(N[~edge], y[~edge], color=color(arch), s=25, zorder=3)
            ax.scatter(N[edge], y[edge], facecolor="none", edgecolor=color(arch), s=25, zorder=3)
            f = d[fit_key]
            if f:
                xs = np.geomspace(N.min() / 1.3, N.max() * 1.3, 50)
                ax.plot(xs, f["coef"] * xs ** f["exponent"], color=color(arch),
                        label=f"{label(arch)}: {f['coef']:.2g} N^{f['exponent']:.3f} (R²={f['r2']:.2f})")  # fmt: skip
            else:
                ax.plot([], [], "o", color=color(arch), label=f"{label(arch)} (no fit: < 3 sizes)")
    for ax, ylabel in ((axes[0], "optimal batch (sequences)"), (axes[1], "optimal learning rate")):
        ax.set(xscale="log", yscale="log", xlabel="parameters N", ylabel=ylabel)
        if per:
            ax.legend()
    axes[0].set_title("batch size (open: optimum at grid edge)")
    axes[1].set_title("learning rate")
    fig.text(0.01, -0.02, "paper (2048-token sequences): " + "; ".join(
        f"{label(a)} BS={v['bs'][0]:.2g}N^{v['bs'][1]}, LR={v['lr'][0]:.2g}N^{v['lr'][1]}" for a, v in PAPER_HP.items()
    ), fontsize=7, color="0.4")  # fmt: skip
    fig.tight_layout()
    ctx.save_figure(fig, NAME)


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
