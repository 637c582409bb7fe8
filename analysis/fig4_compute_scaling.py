"""Fig. 4 / Table J.1: compute scaling — the min-loss envelope L(C) = A C^-alpha over 1500 log-compute bins of
all training curves, and the compute-optimal N_opt(C), D_opt(C) with delta-method 95 % CIs.

Paper claim (§5.4): anGPT L = 28.4 C^-0.053, GPT+ L = 32.6 C^-0.056 ("nearly identical" exponents, anGPT below
GPT+ at every budget); Table J.1 N_opt, D_opt exponents ~0.45-0.47 with "high uncertainty".
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.common import Context, run_script  # noqa: E402
from ant.laws.fits import PowerLawFit  # noqa: E402
from ant.laws.frontier import compute_frontier  # noqa: E402
from ant.laws.plotting import color, label, placeholder, sort_archs  # noqa: E402

NAME = "fig4_compute_scaling"


def _curves(ctx: Context):
    c = ctx.curves
    if c.empty or "val_loss" not in c:
        return c.iloc[0:0]
    ok = c["status"].eq("completed") & c["val_loss"].notna()
    return c[ok]


def compute(ctx: Context) -> dict:
    c = _curves(ctx)
    if c.empty:
        ctx.no_data("fig4 (compute scaling)", "val_loss curves of completed runs at >= 2 model sizes")
        return {"per_arch": {}}
    out = {}
    for arch, g in c.groupby("arch"):
        try:
            f = compute_frontier(g)
        except ValueError as e:
            ctx.no_data(f"fig4 {arch}", f"curves of >= 2 model sizes ({e})")
            continue
        runs = g.drop_duplicates("run_id")
        out[arch] = {
            **f.to_dict(),
            "envelope": f.points.to_dict(orient="list"),
            "n_runs": int(len(runs)),
            "seeds": sorted(int(s) for s in runs["seed"].unique()),
        }
    return {"per_arch": out}


def _fit(d: dict) -> PowerLawFit:
    return PowerLawFit(d["coef"], d["exponent"], d["r2"], d["n"], np.array(d["cov_logcoef_exponent"]), d["level"])


def plot(ctx: Context, numbers: dict) -> None:
    per = numbers["per_arch"]
    c = _curves(ctx)
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    if not per:
        for ax in axes:
            placeholder(ax, "need val_loss curves of completed runs at >= 2 model sizes")
    for arch in sort_archs(per):
        d, col = per[arch], color(arch)
        for _, run in c[c["arch"] == arch].groupby("run_id"):  # every curve, faint
            axes[0].plot(run["flops"], run["val_loss"], color=col, alpha=0.12, lw=0.7)
        env = d["envelope"]
        C = np.array(env["C"])
        xs = np.geomspace(C.min(), C.max(), 100)
        axes[0].scatter(C, env["loss"], color=col, s=6, zorder=3)
        axes[0].plot(xs, d["A"] * xs ** -d["alpha"], color=col, lw=2,
                     label=f"{label(arch)}: L = {d['A']:.3g} C^-{d['alpha']:.3f}")  # fmt: skip
        for ax, key, col_name in ((axes[1], "N_opt", "N"), (axes[2], "D_opt", "D")):
            f = _fit(d[key])
            mid, lo, hi = f.predict_ci(xs)
            ax.scatter(C, env[col_name], color=col, s=6)
            ax.plot(xs, mid, color=col, label=f"{label(arch)}: {f.coef:.3g} C^{f.exponent:.3f}")
            ax.fill_between(xs, lo, hi, color=col, alpha=0.15, lw=0)
    titles = ("loss envelope (1500 log-compute bins)", "N_opt(C), 95% CI", "D_opt(C), 95% CI")
    for ax, t, yl in zip(axes, titles, ("validation loss", "parameters", "tokens")):
        ax.set(xscale="log", yscale="log", xlabel="training FLOPs C", ylabel=yl, title=t)
        if per:
            ax.legend()
    fig.tight_layout()
    ctx.save_figure(fig, NAME)


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
