"""Fig. 3: convergence speedup over GPT+ — the token budget GPT+ needs to reach each candidate's final loss.

Paper claim (§5.2): at 0.5B, anGPT needs 1.40x fewer tokens than GPT+ on average (nGPT 1.29x); ~40 % also at
250M and 1B. Measured per model size that has >= 2 GPT+ budgets, using the best (lr, batch) per budget, with a
bootstrap CI over seeds.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import matplotlib.pyplot as plt  # noqa: E402

from analysis.common import Context, best_hp_runs, run_script  # noqa: E402
from ant.laws.plotting import color, label, placeholder, sort_archs  # noqa: E402
from ant.laws.speedup import convergence_speedup  # noqa: E402

NAME = "fig3_speedup"
REF = "gptplus"


def compute(ctx: Context) -> dict:
    done = best_hp_runs(ctx.done)
    if done.empty or REF not in set(done["arch"]):
        ctx.no_data("fig3 (speedup)", f"completed {REF} runs at >= 2 token budgets of one size")
        return {"per_size": {}}
    out = {}
    for size, g in done.groupby("size"):
        ref = g[g["arch"] == REF]
        if ref["tokens"].nunique() < 2:
            continue
        res = {}
        for arch in sort_archs(set(g["arch"]) - {REF}):
            cand = g[g["arch"] == arch]
            s = convergence_speedup(ref, cand)
            res[arch] = {**s.to_dict(), "seeds": sorted(int(x) for x in cand["seed"].unique())}
        if res:
            out[str(size)] = {
                "num_params": float(ref["num_params"].iloc[0]),
                "ref_budgets": sorted(float(t) for t in ref["tokens"].unique()),
                "ref_seeds": sorted(int(x) for x in ref["seed"].unique()),
                "candidates": res,
            }
    if not out:
        ctx.no_data("fig3 (speedup)", f"one size with {REF} at >= 2 token budgets and another arch at any budget")
    return {"reference": REF, "per_size": out}


def plot(ctx: Context, numbers: dict) -> None:
    per = numbers["per_size"]
    # at most 3 panels: the sizes with the most reference budgets (the budget sweeps), small to large
    top = sorted(per, key=lambda s: (len(per[s]["ref_budgets"]), per[s]["num_params"]))[-3:]
    sizes = sorted(top, key=lambda s: per[s]["num_params"]) or [None]
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.6 * len(sizes), 3.6), squeeze=False)
    for ax, size in zip(axes[0], sizes):
        if size is None:
            placeholder(ax, f"no budget sweep yet: need {REF} at >= 2 token budgets")
            continue
        for arch, r in per[size]["candidates"].items():
            rows = r["per_budget"]
            ok = [x for x in rows if x["status"] == "ok"]
            m = r["mean_ratio"]
            mean = f": mean {100 * (m - 1):.0f}%" if m and m == m else ": no budget with a reference"  # m == m: not NaN
            ax.plot([x["tokens"] for x in ok], [100 * (x["ratio"] - 1) for x in ok], "o-", color=color(arch),
                    label=label(arch) + mean)  # fmt: skip
            if r["ci"][0] is not None:
                ax.axhspan(100 * (r["ci"][0] - 1), 100 * (r["ci"][1] - 1), color=color(arch), alpha=0.12, lw=0)
            nr = [x for x in rows if x["status"] != "ok"]
            if nr:
                ax.plot([x["tokens"] for x in nr], [0] * len(nr), "x", color=color(arch), ms=8)
        ax.axhline(0, color="0.3", lw=0.8)
        ax.set(xscale="log", xlabel="candidate token budget", ylabel=f"speedup over {label(REF)} (%)",
               title=f"{size} ({per[size]['num_params']:.3g} params)")  # fmt: skip
        ax.legend(title="x: no reference (loss below every GPT+ run)", title_fontsize=7)
    fig.tight_layout()
    ctx.save_figure(fig, NAME)


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
