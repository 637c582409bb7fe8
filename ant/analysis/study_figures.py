"""The study report's own figures (results/study/figures/): C4 v2's IsoFLOP profiles, C5 noise scale, C6 wsd vs
cosine, C7 readings and α over training per LR. C1-C4 also show the main group's Fig. 2/3/4/G.1
(results/study/main/figures/). Each function takes the claim's numbers (analysis.study_measures) and draws nothing
when they are empty: the report then says which part to run instead of showing empty axes.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, NullFormatter

from ant.analysis.fig2_hp_trends import plain_log_ticks
from ant.analysis.study_common import Claim, Study, human
from ant.analysis.study_measures import late_rows
from ant.laws.plotting import color, design_ticks, label, save_figure, sort_archs
from ant.laws.reference import PAPER_ALPHA

TOKENS = FuncFormatter(lambda v, _: human(v) if v > 0 else "0")


def draw_all(st: Study, claims: dict[str, Claim], out: Path) -> list[Path]:
    """Every figure whose claim has numbers; returns the PNG paths written."""
    written: list[Path] = []
    figs = (("C4", isoflop_figure), ("C5", noise_figure), ("C6", wsd_figure), ("C7", readings_figure),
            ("C7", alpha_figure))  # fmt: skip
    for key, fn in figs:
        c = claims.get(key)
        if c is not None and c.numbers:
            written += [p for p in fn(st, c.numbers, out) if p.suffix == ".png"]
    return written


# ---------------------------------------------------------------------------------------------- C5
def noise_figure(st: Study, numbers: dict, out: Path) -> list[Path]:
    nt = pd.DataFrame(numbers.get("per_arch_size", []))
    if nt.empty:
        return []
    runs, curves = st.done("noise"), st.curves("noise")
    sizes = list(dict.fromkeys(nt.sort_values("N")["size"]))
    n = len(sizes) + 1
    ncol = min(3, n)
    nrow = -(-n // ncol)
    fig, axes = plt.subplots(nrow, ncol, figsize=(4.4 * ncol, 3.5 * nrow), squeeze=False, layout="constrained")
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    for ax, size in zip(flat, sizes):
        for arch in sort_archs(runs.loc[runs["size"] == size, "arch"]):
            for rid in runs.loc[(runs["size"] == size) & (runs["arch"] == arch), "run_id"]:
                c = curves[curves["run_id"] == rid].dropna(subset=["gns_trace", "gns_g2"]).sort_values("tokens")
                b = c["gns_trace"] / c["gns_g2"]  # the logged EMA ratio (= gns_b_simple), per row
                ok = b > 0  # a negative |G|² EMA early on has no place on a log axis
                ax.plot(c.loc[ok, "tokens"], b[ok], color=color(arch), lw=1, alpha=0.7)
                late = late_rows(c)
                r = nt[(nt["arch"] == arch) & (nt["size"] == size)].iloc[0]
                if len(late) and pd.notna(r["b_simple"]):
                    x = [late["tokens"].min(), late["tokens"].max()]
                    ax.plot(x, [r["b_simple"]] * 2, color=color(arch), lw=2.5, ls="--")
                    if pd.notna(r["lo"]):
                        ax.fill_between(x, r["lo"], r["hi"] if pd.notna(r["hi"]) else r["b_simple"] * 10,
                                        color=color(arch), alpha=0.15, lw=0)  # fmt: skip
        ax.set(yscale="log", xlabel="training tokens", ylabel="B_simple (sequences)",
               title=f"{size} ({human(nt.loc[nt['size'] == size, 'N'].iloc[0])} parameters)")  # fmt: skip
        plain_log_ticks(ax)  # '6', '20' rather than 6x10^0 on a log axis spanning less than two decades
        ax.xaxis.set_major_formatter(TOKENS)
    _noise_vs_n(flat[len(sizes)], nt)
    archs = sort_archs(nt["arch"])
    handles = [Line2D([], [], color=color(a), lw=1.5, label=label(a)) for a in archs] + [
        Line2D([], [], color="0.3", lw=1, label="logged EMA ratio tr Σ / |G|²"),
        Line2D([], [], color="0.3", lw=2.5, ls="--", label="late B_simple (ratio of means, last half) + 95 % CI"),
        Line2D([], [], color="0.3", marker="s", mfc="none", ls="none", label="optimal batch (C3)"),
        Line2D([], [], color="0.3", marker="v", mfc="none", ls="none", label="edge of the batch grid (a bound)"),
        Line2D([], [], color="0.3", marker="x", ls="none", label="tuned batch (trained)"),
    ]
    fig.legend(handles=handles, loc="outside upper center", ncol=3, fontsize=8)
    return save_figure(fig, out, "study_c5_noise_scale")


def _noise_vs_n(ax, nt: pd.DataFrame) -> None:
    for i, arch in enumerate(sort_archs(nt["arch"])):
        g = nt[nt["arch"] == arch].sort_values("N")
        dx = 1 + 0.03 * (i - 0.5)  # side by side: equal values must not hide each other
        ok = g["b_simple"].notna()
        y = g.loc[ok, "b_simple"].astype(float).to_numpy()
        lo = g.loc[ok, "lo"].astype(float).fillna(pd.Series(y, index=g.index[ok])).to_numpy()
        hi = g.loc[ok, "hi"].astype(float).fillna(pd.Series(y * 10, index=g.index[ok])).to_numpy()
        ax.errorbar(g.loc[ok, "N"] * dx, y, yerr=[y - lo, hi - y], fmt="o-", color=color(arch), ms=5, capsize=3)
        b = g[g["bs_opt"].notna()]
        edge = b["bs_edge"].astype(bool) if "bs_edge" in b else pd.Series(False, index=b.index)
        ax.plot(b.loc[~edge, "N"] * dx, b.loc[~edge, "bs_opt"], "s", mfc="none", color=color(arch), ms=8, mew=1.3)
        # an edge optimum is only a bound (the loss still fell at the grid's smallest batch): a downward arrow
        ax.plot(b.loc[edge, "N"] * dx, b.loc[edge, "bs_opt"], "v", mfc="none", color=color(arch), ms=8, mew=1.3)
        t = g[g["tuned"].notna()]
        ax.plot(t["N"] * dx, t["tuned"], "x", color=color(arch), ms=7)
    ax.set(xscale="log", yscale="log", xlabel="parameters N", ylabel="batch (sequences)",
           title="late B_simple vs N, next to the optimal batch")  # fmt: skip
    plain_log_ticks(ax)
    # one tick per size: the two architectures' N differ by ~1 % and their labels overlapped
    design_ticks(ax, nt.groupby("size")["N"].min())


# ---------------------------------------------------------------------------------------------- C6
def wsd_figure(st: Study, numbers: dict, out: Path) -> list[Path]:
    pts = pd.DataFrame(numbers.get("points", []))
    if pts.empty:
        return []
    archs = sort_archs(pts["arch"])
    fig, axes = plt.subplots(1, len(archs), figsize=(4.8 * len(archs), 3.8), squeeze=False, layout="constrained")
    for ax, arch in zip(axes[0], archs):
        g = pts[pts["arch"] == arch]
        for sched, (mk, ls, dx) in {"cosine": ("o", "-", 0.97), "wsd": ("s", "--", 1.03)}.items():
            s = g[g["schedule"] == sched]
            if s.empty:
                continue
            ax.scatter(s["tokens"] * dx, s["final_val_loss"], marker=mk, s=22, color=color(arch), alpha=0.5,
                       facecolors="none" if sched == "wsd" else color(arch))  # fmt: skip
            m = s.groupby("tokens")["final_val_loss"].mean()
            ax.plot(m.index * dx, m.values, ls=ls, marker=mk, ms=4, color=color(arch), lw=1.3,
                    mfc="white" if sched == "wsd" else color(arch), label=f"{sched} (mean over seeds)")  # fmt: skip
        ax.set(xscale="log", xlabel="token budget", ylabel="final validation loss", title=label(arch))
        design_ticks(ax, g["tokens"])
        ax.legend(loc="upper right")
    fig.suptitle("wsd cool-down branches vs separate cosine runs (points: seeds)", fontsize=10)
    return save_figure(fig, out, "study_c6_wsd")


# ---------------------------------------------------------------------------------------------- C7
def readings_figure(st: Study, numbers: dict, out: Path) -> list[Path]:
    rt = pd.DataFrame(numbers.get("readings", []))
    if rt.empty:
        return []
    fig, ax = plt.subplots(figsize=(7.5, 0.55 * len(rt) + 1.6), layout="constrained")
    y = np.arange(len(rt))[::-1]
    for yi, r in zip(y, rt.itertuples()):
        c = "#d62728" if r.verdict == "matters" else "0.35"
        v = 100 * r.rel
        if np.isfinite(r.rel_lo):
            ax.errorbar(v, yi, xerr=[[v - 100 * r.rel_lo], [100 * r.rel_hi - v]], fmt="o", color=c, capsize=4)
        else:
            ax.plot(v, yi, "o", color=c)
    ax.axvline(0, color="0.3", lw=0.9)
    ax.set_yticks(y, [f"{r.variant}\n({r.n_pairs} seed pairs)" for r in rt.itertuples()], fontsize=8)
    ax.set(xlabel="final val loss vs default options, % (+: worse; 95 % t-interval over seed pairs)",
           ylim=(-0.6, len(rt) - 0.4), title="anGPT readings (red: the interval excludes 0)")  # fmt: skip
    ax.grid(axis="y", visible=False)
    return save_figure(fig, out, "study_c7_readings")


def alpha_figure(st: Study, numbers: dict, out: Path) -> list[Path]:
    al = numbers.get("alpha_per_lr") or {}
    if not al:
        return []
    lrs = [x["lr"] for x in al["per_lr"]]
    norm = LogNorm(min(lrs), max(lrs) * 1.0001)
    cmap = plt.get_cmap("viridis")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True, layout="constrained")
    p1, p2 = PAPER_ALPHA["final_range"]
    for ax, kind, sym in zip(axes, ("alpha_a", "alpha_m"), ("A", "M")):
        ax.axhspan(p1, p2, color="0.85", alpha=0.6, lw=0, label=f"paper's final range {p1}–{p2}")
        ax.axhline(PAPER_ALPHA["init"], color="0.5", ls=":", lw=1, label=f"paper's start {PAPER_ALPHA['init']}")
        ax.axhline(0, color="0.2", lw=0.8)
        for x in al["per_lr"]:
            ax.plot(x["tokens"], x[kind], color=cmap(0.9 * norm(x["lr"])), lw=1.5,
                    label=f"lr {x['lr']:.3g} (loss {x['final_loss']:.3f})")  # fmt: skip
        ax.set(xlabel="training tokens", title=f"mean $\\alpha_{sym}$ over layers")
        # symlog: one LR's excursion (lr 0.1 swings α to ±10) flattened every other curve on a linear axis
        ax.set_yscale("symlog", linthresh=0.5, linscale=1.5)
        ax.xaxis.set_major_formatter(TOKENS)
        ax.xaxis.set_minor_formatter(NullFormatter())
    axes[0].set_ylabel("effective α")
    axes[1].legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)
    fig.suptitle(f"anGPT {al['size']}, batch {al['batch_size']:g}: α over training per learning rate", fontsize=10)
    return save_figure(fig, out, "study_c7_alpha_per_lr")


# ---------------------------------------------------------------------------------------------- C4 (v2)
def isoflop_figure(st: Study, numbers: dict, out: Path) -> list[Path]:
    """Study v2's IsoFLOP profiles: one row per design (the LR tuned per point on one head-dim family: part
    v2-isoflop-scan, the points its best runs; batch per budget; batch tuned at 20 tokens/param; the tuned one on a
    ladder of one head dim: part v2-isoflop-hd8), one column
    per architecture (final loss over N, a colour per compute level: points are runs, the line the level's parabola
    through the seed means, x its vertex), and a last column with N_opt(C) and each fitted exponent."""
    from ant.analysis.study_v2_c4 import budget_design, isoflop_budget_runs, scan_runs, tuned_design_runs  # late: C4
    from ant.analysis.study_v2_headdim import hd8_ladder  # late: as above
    from ant.laws.isoflop_design import isoflop_nopt  # late: as above

    pts, laws = budget_design(st)  # the HP laws, fitted once for the three designs below
    tuned = tuned_design_runs(st, budget_points=pts)
    family = hd8_ladder(tuned, st.runs("v2"), st.tuned_of("v2")) if len(tuned) else tuned
    designs = [("LR tuned per point, one head-dim family", scan_runs(st, pts, laws)[0]),
               ("batch per budget", isoflop_budget_runs(st.runs("v2"), pts)[0]),
               ("batch tuned at 20 tokens/param", tuned), ("one head-dim family (exploratory)", family)]  # fmt: skip
    designs = [(name, r) for name, r in designs if len(r)]
    if not designs:
        return []
    archs = sort_archs(pd.concat([r["arch"] for _, r in designs]))
    levels = sorted(set(pd.concat([r["level"] for _, r in designs])))
    cmap = plt.get_cmap("viridis")
    lvl_color = {lv: cmap(i / max(1, len(levels) - 1) * 0.9) for i, lv in enumerate(levels)}
    fig, axes = plt.subplots(len(designs), len(archs) + 1, figsize=(4.2 * (len(archs) + 1), 3.4 * len(designs)),
                             squeeze=False, layout="constrained")  # fmt: skip
    for row, (name, r) in zip(axes, designs):
        for ax, arch in zip(row, archs):
            g = r[r["arch"] == arch]
            for lv, x in g.groupby("level"):
                m = x.groupby("num_params")["final_val_loss"].mean()
                ax.scatter(x["num_params"], x["final_val_loss"], s=12, color=lvl_color[lv], alpha=0.6)
                if len(m) >= 3:
                    ln = np.log(m.index.to_numpy(float))
                    p = np.polyfit(ln, m.to_numpy(float), 2)
                    grid = np.linspace(ln.min(), ln.max(), 60)
                    ax.plot(np.exp(grid), np.polyval(p, grid), color=lvl_color[lv], lw=1.2, label=f"{lv:.3g} FLOPs")
                    v = -p[1] / (2 * p[0]) if p[0] > 0 else np.nan
                    if ln.min() < v < ln.max():
                        ax.plot(np.exp(v), np.polyval(p, v), "x", color=lvl_color[lv], ms=8, mew=2)
            ax.set(xscale="log", xlabel="parameters N", ylabel="final validation loss")
            ax.set_title(f"{label(arch)}: {name}", fontsize=9)  # the design names are long: neighbours' titles touched
            design_ticks(ax, g["num_params"])
        ax = row[-1]
        for arch in archs:
            g = r[r["arch"] == arch]
            est = isoflop_nopt(g, boot=0) if len(g) else None
            if est is None:
                continue
            k = est.levels[est.levels["kept"]]
            ax.plot(k["level"], k["N_opt"], "o", color=color(arch), label=f"{label(arch)}: a = {est.a:.3g}")
            if np.isfinite(est.a) and len(k) >= 2:
                c0 = np.exp(np.mean(np.log(k["N_opt"])) - est.a * np.mean(np.log(k["level"])))
                cc = np.geomspace(k["level"].min(), k["level"].max(), 20)
                ax.plot(cc, c0 * cc**est.a, color=color(arch), lw=1.2)
        ax.set(xscale="log", yscale="log", xlabel="training FLOPs C", ylabel="N_opt (parabola vertex)",
               title="N_opt ∝ C^a")  # fmt: skip
        ax.legend(loc="upper left")
        ax.yaxis.set_major_formatter(TOKENS)
        ax.yaxis.set_minor_formatter(TOKENS)
    # every level of every panel (anGPT has one GPT+ lacks, part v2-isoflop-scan-up): not the first panel's lines
    h = [Line2D([], [], color=lvl_color[lv], lw=1.2) for lv in levels]
    fig.legend(h, [f"{lv:.3g} FLOPs" for lv in levels], loc="outside right upper", title="compute level", fontsize=7)
    fig.suptitle("Study v2 IsoFLOP profiles (points: runs; lines: parabolas through the seed means; x: vertices)",
                 fontsize=10)  # fmt: skip
    return save_figure(fig, out, "study_c4_isoflop")
