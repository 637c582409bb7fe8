"""Fig. 3: convergence speedup over GPT+ — how many times more tokens GPT+ needs to reach each candidate's final loss.

Paper claim (§5.2): at 0.5B, anGPT needs 1.40x fewer tokens than GPT+ on average (nGPT 1.29x); ~40 % also at
250M and 1B. Measured per model size that has >= 2 GPT+ budgets, on the best (lr, batch) per budget averaged over
seeds (analysis.common.best_hp_runs), with `ant.laws.speedup.convergence_speedup`: per-budget ratios by
interpolation (budgets beyond the GPT+ range are bounds, never dropped) and from a fitted GPT+ curve
L(D) = E + B D^-b; the summary is the geometric mean over budgets with a parametric-bootstrap interval (see that
module's docstring for the exact definition). Top row: final loss vs tokens (the data); bottom row: the ratios.
"""

from __future__ import annotations

import sys
import textwrap

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

from ant.analysis.common import Context, best_hp_runs, run_script
from ant.laws.fits import FitError
from ant.laws.plotting import color, label, placeholder, sort_archs
from ant.laws.reference import PAPER_SPEEDUP
from ant.laws.speedup import convergence_speedup

NAME = "fig3_speedup"
MIN_BUDGET_SPAN = 1.5  # a budget sweep's largest reference budget over its smallest
REF = "gptplus"


def compute(ctx: Context) -> dict:
    done = best_hp_runs(ctx.done)
    if done.empty or REF not in set(done["arch"]):
        ctx.no_data("fig3 (speedup)", f"completed {REF} runs at >= 2 token budgets of one size")
        return {"reference": REF, "per_size": {}}
    out = {}
    for size, g in done.groupby("size"):
        ref = g[g["arch"] == REF]
        # Budgets that differ only by step rounding (tokens = steps x batch x seq_len: one requested budget trained
        # at several batch sizes) are one budget, not a budget sweep.
        if ref["tokens"].nunique() < 2 or ref["tokens"].max() < MIN_BUDGET_SPAN * ref["tokens"].min():
            continue
        res = {}
        for arch in sort_archs(set(g["arch"]) - {REF}):
            cand = g[g["arch"] == arch]
            try:
                s = convergence_speedup(ref, cand)
            except FitError as e:  # e.g. no finite loss: say so in the JSON instead of failing the whole figure
                ctx.no_data(f"fig3 (speedup {arch} at {size})", str(e))
                continue
            res[arch] = {**s.to_dict(), "seeds": sorted(int(x) for x in cand["seed"].unique())}
        if res:
            pts = g[g["arch"].isin([REF, *res])]
            out[str(size)] = {
                "num_params": float(ref["num_params"].iloc[0]),
                "ref_budgets": sorted(float(t) for t in ref["tokens"].unique()),
                "ref_seeds": sorted(int(x) for x in ref["seed"].unique()),
                "points": {
                    a: [
                        [float(t), int(s), float(v)]
                        for t, s, v in p[["tokens", "seed", "final_val_loss"]].itertuples(index=False)
                    ]
                    for a, p in pts.groupby("arch")
                },  # fmt: skip
                "candidates": res,
            }
    if not out:
        ctx.no_data("fig3 (speedup)", f"one size with {REF} at >= 2 token budgets and another arch at any budget")
    return {"reference": REF, "per_size": out}


# ---------------------------------------------------------------------------------------------- plot
def _human(x: float, _pos=None) -> str:
    """80000 -> '80k', 1.6e10 -> '16B', 5.06e9 -> '5.1B': short plain tick labels for token and size axes."""
    for div, suf in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k"), (1, "")):
        if abs(x) >= div or div == 1:
            v = x / div
            return f"{v:.0f}{suf}" if abs(v) >= 10 else f"{v:.2g}{suf}"
    return ""


def _token_ticks(ax, budgets: list[float]) -> None:
    """A labelled tick at the budgets and nothing else (every tick a reader sees has a number), thinned so that
    neighbours are >= 1/9 of the axis apart in log space and the labels cannot overlap."""
    b = sorted(set(budgets))
    gap = (np.log10(b[-1]) - np.log10(b[0])) / 9
    keep = [b[0]]
    for t in b[1:]:
        if np.log10(t) - np.log10(keep[-1]) >= gap:
            keep.append(t)
    if keep[-1] != b[-1] and len(keep) > 1 and np.log10(b[-1]) - np.log10(keep[-2]) >= gap:
        keep[-1] = b[-1]  # label the largest budget rather than its neighbour
    ax.xaxis.set_major_locator(FixedLocator(keep))
    ax.xaxis.set_major_formatter(FuncFormatter(_human))
    ax.xaxis.set_minor_locator(NullLocator())


def _fmt_summary(r: dict) -> str:
    s, (lo, hi) = r["summary"], r["ci"]
    if s is None:
        return "not determined"
    ci = "" if lo is None and hi is None else f" [{lo:.2f}, {'∞' if hi is None else f'{hi:.2f}'}]"
    sign = {"lower": "≥ ", "upper": "≤ "}.get(r["bound"], "")
    return f"{sign}{s:.2f}×{ci}"


def _loss_panel(ax, d: dict, fit: dict | None) -> None:
    for arch in sort_archs(d["points"]):
        p = np.array(d["points"][arch], dtype=float)
        ax.scatter(p[:, 0], p[:, 2], s=14, color=color(arch), alpha=0.45, lw=0)
        toks = np.unique(p[:, 0])
        ax.plot(toks, [p[p[:, 0] == t, 2].mean() for t in toks], "o-", color=color(arch), ms=4, lw=1.4)
    allb = np.concatenate([np.array(v, dtype=float)[:, 0] for v in d["points"].values()])
    if fit and fit["determined"]:
        D = np.geomspace(allb.min() / 1.15, allb.max() * 1.15, 100)
        ax.plot(D, fit["E"] + fit["B0"] * (D / fit["D0"]) ** -fit["b"], "--", color=color(REF), lw=1)
    ax.set(xscale="log", ylabel="final validation loss")
    _token_ticks(ax, list(allb))


def _ratio_panel(ax, d: dict) -> list:
    handles, tops, n = [], [1.0], len(d["candidates"])
    for i, (arch, r) in enumerate(d["candidates"].items()):
        c, rows = color(arch), r["per_budget"]
        dx = np.exp(0.09 * (i - (n - 1) / 2))  # architectures side by side: equal bounds must not hide each other
        ok = [x for x in rows if x["status"] == "ok"]
        ax.plot([x["tokens"] * dx for x in ok], [x["ratio"] for x in ok], "o-", color=c, ms=5, lw=1.2)
        for x in rows:
            if x["status"] == "ok":
                continue
            up = x["status"] == "lower bound"  # lower bound on the ratio: the truth lies above -> arrow up
            ax.plot(x["tokens"] * dx, x["ratio"], "_", color=c, ms=12, mew=2)
            ax.annotate("", xy=(x["tokens"] * dx, x["ratio"]), xytext=(0, 22 if up else -22),
                        textcoords="offset points", arrowprops={"arrowstyle": "<-", "color": c, "lw": 1.5})  # fmt: skip
        fitted = [x for x in rows if x["fit_ratio"] is not None]
        if fitted:
            t = np.array([x["tokens"] for x in fitted]) * dx * 1.035
            v = np.array([x["fit_ratio"] for x in fitted])
            lo = np.array([x["fit_ratio_lo"] if x["fit_ratio_lo"] is not None else np.nan for x in fitted])
            hi = np.array([x["fit_ratio_hi"] if x["fit_ratio_hi"] is not None else np.inf for x in fitted])
            err = np.vstack([v - np.where(np.isnan(lo), v, lo), np.where(np.isnan(lo), 0, hi - v)])
            err[1][~np.isfinite(err[1])] = 1e3  # unbounded above: the bar leaves the panel
            ax.errorbar(t, v, yerr=err, fmt="s", mfc="white", color=c, ms=5, lw=0.9, capsize=2)
        # No summary line or band over the data: the per-budget ratios are the finding (they change with the
        # budget, and the report gives no single number where they disagree); the summary is the legend's text.
        tops += [x["ratio"] for x in rows] + [x["fit_ratio"] for x in fitted]
        paper = f", paper {PAPER_SPEEDUP[arch]:.2f}×" if arch in PAPER_SPEEDUP else ""
        ip = r["interpolation"]
        how = r["estimator"] if not r["censored"] else (f"interpolation, {ip['n_ok']} of {len(rows)} budgets "
                                                        f"inside the {label(REF)} range")  # fmt: skip
        handles.append(Line2D([], [], color=c, ls=":" if r["censored"] else "-",
                              label=textwrap.fill(f"{label(arch)}: {_fmt_summary(r)} ({how}{paper})", 60)))  # fmt: skip
    fit = next(iter(d["candidates"].values()))["fit"]
    if not fit["determined"]:  # said under the panel, not over the data
        why = textwrap.fill(f"{label(REF)} curve fit not determined: {fit['reason']}", 60)
        handles.append(Line2D([], [], ls="none", label=why))
    ax.axhline(1, color="0.3", lw=0.8)
    # limits from the ratios themselves (error bars that reach further are cut at the frame, not the scale)
    top = min(max(tops) * 1.12, 3.0)
    bottom = min(0.9, min(tops) * 0.9)
    ax.set(xscale="log", ylim=(bottom, top), xlabel="candidate token budget",
           ylabel=f"{label(REF)} tokens / candidate tokens")  # fmt: skip
    ax.secondary_yaxis("right", functions=(lambda r: 100 * (r - 1), lambda p: 1 + p / 100)).set_ylabel(
        "speedup (%)", fontsize=8
    )
    return handles


def plot(ctx: Context, numbers: dict) -> None:
    per = numbers["per_size"]
    # at most 4 columns (the study's four sizes): the sizes with the most reference budgets, small to large
    top = sorted(per, key=lambda s: (len(per[s]["ref_budgets"]), per[s]["num_params"]))[-4:]
    sizes = sorted(top, key=lambda s: per[s]["num_params"])
    if not sizes:
        fig, ax = plt.subplots(figsize=(5, 3))
        placeholder(ax, f"no budget sweep yet: need {REF} at >= 2 token budgets of one size and another architecture")
        ctx.save_figure(fig, NAME)
        return
    fig, axes = plt.subplots(2, len(sizes), figsize=(max(6.4, 4.6 * len(sizes)), 6.8), squeeze=False, sharex="col",
                             gridspec_kw={"height_ratios": [1, 1.15]})  # fmt: skip
    for j, size in enumerate(sizes):
        d = per[size]
        fit = next(iter(d["candidates"].values()))["fit"]  # the reference fit: the same for every candidate
        _loss_panel(axes[0, j], d, fit)
        axes[0, j].set_title(f"{size} ({_human(d['num_params'])} parameters, {len(d['ref_budgets'])} "
                             f"{label(REF)} budgets)")  # fmt: skip
        handles = _ratio_panel(axes[1, j], d)
        _token_ticks(axes[1, j], [x["tokens"] for r in d["candidates"].values() for x in r["per_budget"]]
                     + [p[0] for v in d["points"].values() for p in v])  # fmt: skip
        axes[1, j].legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.2), fontsize=7,
                          title="geometric mean over budgets [95% CI] (not drawn: the per-budget\n"
                                "ratios are the finding; REPORT.md gives none where they disagree)",
                          title_fontsize=7)  # fmt: skip
    archs = sort_archs({a for s in sizes for a in per[s]["points"]})
    key = [Line2D([], [], color=color(a), marker="o", ms=4, label=f"{label(a)} (dots: seeds, line: mean)")
           for a in archs]  # fmt: skip
    key.append(Line2D([], [], color="0.3", marker="o", label="ratio, interpolated"))
    if any(next(iter(per[s]["candidates"].values()))["fit"]["determined"] for s in sizes):
        key += [
            Line2D([], [], color=color(REF), ls="--", label=f"{label(REF)} fit E + B·D^-b"),
            Line2D([], [], color="0.3", marker="s", mfc="white", ls="none", label="ratio, fitted curve [95% CI]"),
        ]
    statuses = {x["status"] for s in sizes for r in per[s]["candidates"].values() for x in r["per_budget"]}
    for st, arrow, where in (("lower bound", "uparrow", "below"), ("upper bound", "downarrow", "above")):
        if st in statuses:
            key.append(Line2D([], [], color="0.3", marker=rf"$\{arrow}$", ms=10, ls="none",
                              label=f"{st} (loss {where} every {label(REF)} run)"))  # fmt: skip
    fig.legend(handles=key, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=min(3, 1 + len(sizes)), fontsize=8)
    fig.tight_layout()
    ctx.save_figure(fig, NAME)


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
