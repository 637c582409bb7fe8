"""Fig. 4 / Table J.1: compute scaling — the compute-optimal frontier three ways (ant.laws.frontier): the Pareto
envelope of all training curves with L(C) = A C^-alpha (the paper's method), IsoFLOP profiles (Hoffmann et al.
approach 2) and the allocation implied by a Chinchilla fit (approach 3), each with its N_opt exponent a, its CI and
whether the data determine it; plus anGPT's and GPT+'s measured fronts compared at shared compute levels.

Paper claim (§5.4): anGPT L = 28.4 C^-0.053, GPT+ L = 32.6 C^-0.056 ("nearly identical" exponents, anGPT below
GPT+ at every budget); Table J.1 N_opt, D_opt exponents ~0.45-0.47 with "high uncertainty".
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.lines import Line2D

from ant.analysis.common import Context, Section, best_hp_runs, fmt_ci, md_header, md_row, md_sizes, run_script
from ant.laws.allocation import frontier_three_ways
from ant.laws.frontier import compare_fronts
from ant.laws.plotting import color, label, sort_archs
from ant.laws.reference import PAPER_FRONTIER

NAME = "fig4_compute_scaling"
LEVEL = 0.95  # the paper's Table J.1 intervals
ISOFLOP_BOOT = 200  # bootstrap over runs for the IsoFLOP CIs (cheap)
CHINCHILLA_BOOT = 50  # bootstrap refits for approach 3's CIs (about 0.1-0.3 s each); fewer when --boot is lower
COMPARE = ("angpt", "gptplus")  # the paper's claim: the first below the second at every compute
METHOD_STYLE = {  # how each method is drawn in the N_opt(C) panel
    "envelope": {"ls": "-", "marker": "o", "name": "envelope (Pareto front)"},
    "isoflop": {"ls": "--", "marker": "s", "name": "IsoFLOP profiles"},
    "chinchilla": {"ls": ":", "marker": None, "name": "Chinchilla fit (approach 3)"},
}
ARCH_LS = ("-", "--", "-.", ":")  # L(C) line style per architecture, in sort_archs order


def _curves(ctx: Context) -> pd.DataFrame:
    c = ctx.curves
    if c.empty or "val_loss" not in c:
        return c.iloc[0:0]
    return c[c["status"].eq("completed") & c["val_loss"].notna() & c["flops"].notna()]


def compute(ctx: Context) -> dict:
    c = _curves(ctx)
    if c.empty:
        ctx.no_data("fig4 (compute scaling)", "val_loss curves of completed runs at >= 3 model sizes")
        return {"per_arch": {}, "comparison": None}
    best = best_hp_runs(ctx.done)
    out = {}
    for arch, g in c.groupby("arch"):
        if g["num_params"].nunique() < 2:
            ctx.no_data(f"fig4 {arch}", f"curves of >= 3 model sizes (have {g['num_params'].nunique()})")
            continue
        runs = g.drop_duplicates("run_id")
        final = best[best["arch"] == arch] if "arch" in best else None  # None: the curves' last points
        boot = min(CHINCHILLA_BOOT, ctx.options.boot)  # `--boot 5` (tests, a quick look) refits 5 times
        r = frontier_three_ways(g, final, level=LEVEL, boot=ISOFLOP_BOOT, bootstrap=boot)
        out[arch] = {**r, "n_runs": int(len(runs)), "seeds": sorted(int(s) for s in runs["seed"].unique()),
                     "sizes": sorted(float(n) for n in runs["num_params"].unique())}  # fmt: skip
    return {"per_arch": out, "comparison": _comparison(out)}


def _front(d: dict) -> pd.DataFrame | None:
    pts = d["methods"]["envelope"].get("points")
    return pd.DataFrame({"C": pts["C"], "loss": pts["loss"]}) if pts else None


def _comparison(per: dict) -> dict | None:
    """The measured fronts of COMPARE[0] and COMPARE[1] at 12 log-spaced computes of their shared range."""
    a, b = (per.get(x) for x in COMPARE)
    fa, fb = (_front(x) if x else None for x in (a, b))
    if fa is None or fb is None:
        return None
    r = compare_fronts(fa, fb, n_levels=12)
    return None if r is None else {"archs": list(COMPARE), **r}


# ---------------------------------------------------------------------------------------------- figure
def plot(ctx: Context, numbers: dict) -> None:
    per = numbers["per_arch"]
    archs = sort_archs(per)
    if not archs:
        fig, ax = plt.subplots(figsize=(7, 1.6))
        ax.axis("off")
        need = "; ".join(numbers.get("missing", [])) or "val_loss curves of completed runs at >= 3 model sizes"
        ax.text(0.0, 0.5, f"Fig. 4 (compute scaling) not drawn: no data.\nNeeds {need}.", va="center", wrap=True)
        ctx.save_figure(fig, NAME)
        return
    c = _curves(ctx)
    # the N_opt panel only where some method determined N_opt: an axes of text is an empty panel (issue 24)
    has_nopt = any(r.get("determined") for a in archs for r in per[a]["methods"].values())
    n_panels = len(archs) + 1 + has_nopt
    ncols = 2 if n_panels == 4 else min(n_panels, 3)
    nrows = -(-n_panels // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.2 * ncols, 4.6 * nrows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n_panels:]:
        fig.delaxes(ax)
    norm = LogNorm(vmin=c["num_params"].min(), vmax=c["num_params"].max() * 1.0001)
    for ax, arch in zip(flat, archs):
        _curve_panel(fig, ax, c[c["arch"] == arch], per[arch], arch, norm)
    _loss_panel(flat[len(archs)], per, archs, numbers.get("comparison"))
    if has_nopt:
        _nopt_panel(flat[len(archs) + 1], per, archs)
    else:
        fig.text(0.5, 0.005, f"N_opt(C) not determined by any method (envelope, isoflop, chinchilla) for "
                 f"{', '.join(label(a) for a in archs)}: reasons in results/fits/{NAME}.json and REPORT.md",
                 ha="center", va="bottom", fontsize=8, color="0.25")  # fmt: skip
    fig.tight_layout(rect=(0, 0.03 if not has_nopt else 0, 1, 1))
    ctx.save_figure(fig, NAME)


def _curve_panel(fig, ax, c: pd.DataFrame, d: dict, arch: str, norm) -> None:
    cmap = plt.get_cmap("viridis")
    for _, run in c.groupby("run_id"):
        # the evaluation at step 0 has flops = 0, off a log axis: drawn, it became a flat segment from the edge
        run = run[run["flops"] > 0].sort_values("flops")
        ax.plot(run["flops"], run["val_loss"], color=cmap(norm(run["num_params"].iloc[0])), alpha=0.35, lw=0.9)
    env = d["methods"]["envelope"]
    pts = pd.DataFrame(env["points"]) if env.get("points") else pd.DataFrame(columns=["C", "loss", "N", "used"])
    used = pts["used"].astype(bool)
    ax.scatter(pts.loc[used, "C"], pts.loc[used, "loss"], c=pts.loc[used, "N"], cmap=cmap, norm=norm, s=13,
               edgecolors="black", linewidths=0.5, zorder=3)  # fmt: skip
    ax.scatter(pts.loc[~used, "C"], pts.loc[~used, "loss"], facecolors="white", s=13, linewidths=0.9, zorder=3,
               edgecolors=cmap(norm(pts.loc[~used, "N"].to_numpy(dtype=float))))  # fmt: skip
    handles = [
        Line2D([], [], color="0.5", alpha=0.5, label="training curve (colour: parameters N)"),
        Line2D([], [], ls="", marker="o", mfc="0.6", mec="black", label=f"front point used for N_opt ({used.sum()})"),
        Line2D([], [], ls="", marker="o", mfc="white", mec="0.4",
               label=f"front point excluded: no smaller and larger\nsize reached that compute ({int((~used).sum())})"),
    ]  # fmt: skip
    ax.legend(handles=handles, loc="upper right")
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs C", ylabel="validation loss",
           title=f"{label(arch)}: {d['n_runs']} runs, {len(d['sizes'])} sizes; filled/open: Pareto front")  # fmt: skip
    _plain_loss_ticks(ax)
    cb = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, label="parameters N", pad=0.01)
    sizes = sorted(c["num_params"].unique())
    if len(sizes) <= 10:  # tick the sweep's own sizes: '20M', '1B'
        cb.set_ticks(sizes, labels=[_count(n) for n in sizes])
        cb.ax.minorticks_off()


def _loss_panel(ax, per: dict, archs: list[str], comp: dict | None) -> None:
    for arch, ls in zip(archs, ARCH_LS):
        env, col = per[arch]["methods"]["envelope"], color(arch)
        if not env.get("points"):
            continue
        C, L = np.array(env["points"]["C"]), np.array(env["points"]["loss"])
        ax.plot(C, L, color=col, lw=0, marker="o", ms=2.5, alpha=0.6)
        xs = np.geomspace(C.min(), C.max(), 100)
        if env["loss_determined"]:
            lab = f"{label(arch)}: L = {env['A']:.3g} C^-{env['alpha']:.3f}"
            ax.plot(xs, env["A"] * xs ** -env["alpha"], color=col, ls=ls, lw=2, label=lab)
        else:
            ax.plot(C, L, color=col, ls=ls, lw=1.2, label=f"{label(arch)}: front (L(C) fit not determined)")
    title = "compute frontier L(C) = A C^-alpha (Pareto front)"
    if comp and all(per[x]["methods"]["envelope"].get("curves_fall") for x in comp["archs"]):
        a, b = (label(x) for x in comp["archs"])
        title += f"\n{a} below {b} at {comp['n_below']} of {comp['n']} shared compute levels"
        ax.plot(comp["C"], comp["loss_a"], ls="", marker="|", ms=10, color="0.3", label="shared compute levels")
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs C", ylabel="validation loss", title=title)
    ax.legend(loc="upper right")
    _plain_loss_ticks(ax)


def _nopt_panel(ax, per: dict, archs: list[str]) -> None:
    from matplotlib.ticker import FuncFormatter

    notes, drawn = [], False
    for arch in archs:
        d, col = per[arch], color(arch)
        for m, st in METHOD_STYLE.items():
            r = d["methods"][m]
            C = _method_points(ax, m, r, col)  # the computes the method's estimate rests on
            drawn |= C.size > 0 and m != "chinchilla"
            if r["determined"] and C.size and r.get("N_opt_coef"):
                xs, a = np.geomspace(C.min(), C.max(), 50), r["a"]
                ax.plot(xs, r["N_opt_coef"] * xs ** a[0], color=col, ls=st["ls"], lw=1.8,
                        label=f"{label(arch)} {m}: a = {a[0]:.2f} [{a[1]:.2f}, {a[2]:.2f}]")  # fmt: skip
                drawn = True
            elif not r["determined"]:
                notes.append(f"{label(arch)} {m}: not determined")
    notes.append(f"(reasons: results/fits/{NAME}.json, REPORT.md)")
    title = f"N_opt(C) = N0 C^a, three ways ({LEVEL:.0%} CI)"
    if not drawn:  # nothing to draw: say so instead of empty log axes
        ax.axis("off")
        ax.set_title(title)
        ax.text(0.5, 0.5, "No N_opt estimate or point to show:\n" + "\n".join(notes), transform=ax.transAxes,
                ha="center", va="center", fontsize=8, color="0.25")  # fmt: skip
        return
    handles = [Line2D([], [], color="black", ls=s["ls"], marker=s["marker"], mfc="none", label=s["name"])
               for s in METHOD_STYLE.values()]  # fmt: skip
    ax.add_artist(ax.legend(handles=handles, loc="upper left", title="method"))
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=7)
    if len(notes) > 1:  # what is missing, said in words where its line would be
        ax.text(0.99, 0.99, "\n".join(notes), transform=ax.transAxes, ha="right", va="top", fontsize=7, color="0.25",
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "0.8"}, zorder=5)  # fmt: skip
    ax.set(xscale="log", yscale="log", xlabel="training FLOPs C", ylabel="compute-optimal parameters N_opt",
           title=title)  # fmt: skip
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: _count(v)))
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))


def _method_points(ax, method: str, r: dict, col: str) -> np.ndarray:
    """Draw the points a method's N_opt fit used and return their computes (its line spans only those)."""
    if method == "envelope" and r.get("points"):
        p = pd.DataFrame(r["points"])
        p = p[p["used"].astype(bool)]
        ax.scatter(p["C"], p["N"], color=col, s=8, alpha=0.45)
        return p["C"].to_numpy(dtype=float)
    if method == "isoflop" and r.get("levels"):
        lv = pd.DataFrame(r["levels"])
        lv = lv[lv["kept"].astype(bool)]
        ax.scatter(lv["C"], lv["N_opt"], marker="s", s=24, facecolors="none", edgecolors=col, linewidths=1.2)
        return lv["C"].to_numpy(dtype=float)
    if method == "chinchilla" and r.get("points"):  # the fitted runs' final compute, 6 N D
        p = r["points"]
        return 6.0 * np.asarray(p["N"], dtype=float) * np.asarray(p["D"], dtype=float)
    return np.array([])


def _count(v: float) -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


def _plain_loss_ticks(ax) -> None:
    """Losses span less than a decade: label them 2, 3, 4, ... rather than 3x10^0."""
    from matplotlib.ticker import FormatStrFormatter, LogLocator

    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0)))
    ax.yaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.yaxis.set_minor_formatter(FormatStrFormatter(""))


# ---------------------------------------------------------------------------------------------- REPORT.md


def frontier_section(f: dict) -> list[str]:
    """Fig. 4 / Table J.1 (fig4_compute_scaling.json): the N_opt exponent a three ways side by side, numbers only
    where determined (else "not determined (reason)"), and the below-at-every-compute claim read off the measured
    Pareto fronts at shared compute levels, not off fitted lines."""

    def first_reason(reasons: list[str]) -> str:
        r = (reasons[0] if reasons else "no reason recorded").replace("|", "/")
        return r if len(r) <= 100 else r[:97].rsplit(" ", 1)[0] + " …"

    def claims(per: dict, comp: dict | None) -> list[str]:
        out = []
        fall = {x: (per.get(x) or {}).get("methods", {}).get("envelope", {}).get("curves_fall") for x in per}
        if comp and not all(fall.get(x) for x in comp["archs"]):
            bad = ", ".join(label(x) for x in comp["archs"] if not fall.get(x))
            out.append(f"Claim not tested: anGPT's loss below GPT+'s at every compute budget — {bad}'s losses do not "
                       "fall as the runs train, so its front is noise.")  # fmt: skip
        elif comp:
            a, b, k, n = *(label(x) for x in comp["archs"]), comp["n_below"], comp["n"]
            above = comp.get("n_above", n - k)
            verdict = "agrees" if k == n else f"disagrees ({b} lower at {above}, equal at {n - k - above} of {n})"
            out.append(f"Claim: anGPT's loss is below GPT+'s at every compute budget. At {n} log-spaced computes "
                       f"across the shared range {comp['range'][0]:.3g}-{comp['range'][1]:.3g} FLOPs, the measured "
                       f"Pareto fronts (interpolated in log C) put {a} below {b} at {k} of {n} (gap {b} - {a} from "
                       f"{comp['min_gap']:+.3g} to {comp['max_gap']:+.3g}): **{verdict}**.")  # fmt: skip
        elif "angpt" in per and "gptplus" in per:
            out.append("Claim not tested: anGPT's and GPT+'s fronts share no compute range.")
        ea, eg = ((per.get(x) or {}).get("methods", {}).get("envelope", {}) for x in ("angpt", "gptplus"))
        if ea.get("loss_determined") and eg.get("loss_determined"):
            (la, ha), (lg, hg) = ea["alpha_ci"], eg["alpha_ci"]
            same = la <= hg and lg <= ha
            out.append(f"Claim: the L(C) exponents are nearly identical (0.053 vs 0.056). Measured α "
                       f"{ea['alpha']:.3f} vs {eg['alpha']:.3f}, 95% CIs {'overlap' if same else 'do not overlap'}: "
                       f"**{'agrees' if same else 'disagrees'}**.")  # fmt: skip
        return out

    out = ["## Compute scaling (Fig. 4, Table J.1, §5.4)", ""]
    per = f.get("per_arch", {})
    if not per:
        return [*out, "Not measured: " + ("; ".join(f.get("missing", [])) or "no curves."), ""]
    if any("methods" not in d for d in per.values()):  # a JSON from before the three-way frontier
        return [*out, "Not shown: fits/fig4_compute_scaling.json predates the three-way frontier; rerun "
                "`ant fit`.", ""]  # fmt: skip
    names = {"envelope": "envelope", "isoflop": "IsoFLOP", "chinchilla": "Chinchilla fit"}
    out += ["N_opt ∝ C^a and D_opt ∝ C^b three ways (ant/laws/frontier.py): the Pareto envelope of all training "
            "curves (the paper's method; biased low by a few hundredths on synthetic data), IsoFLOP profiles "
            "(Hoffmann et al. approach 2) and a Chinchilla fit of the best-HP runs' final losses (approach 3). "
            "95% CIs; a method whose data do not determine a shows why instead of a number.", "",
            *md_header(["arch", "paper (Table J.1)", *(f"{v}: a; b" for v in names.values()), "methods agree?",
                      "runs, sizes"])]  # fmt: skip
    why = []
    for arch, d in per.items():
        p = PAPER_FRONTIER.get(arch)
        cells = []
        for m, name in names.items():
            r = d["methods"][m]
            if r["determined"]:
                cells.append(f"{fmt_ci(r['a'][0], r['a'][1:])}; {fmt_ci(r['b'][0], r['b'][1:])}")
            else:
                cells.append(f"not determined ({first_reason(r['reasons'])})")
                why.append(f"- {label(arch)}, {name}: " + "; ".join(r["reasons"]))
        agree = {True: "agree", False: "**disagree**", None: "-"}[d["agree"]]
        out.append(md_row([label(arch), f"a {p['aN']:.3f}; b {p['aD']:.3f}" if p else "-", *cells, agree,
                         f"{d['n_runs']}, {md_sizes(d['sizes'])}"]))  # fmt: skip
    out += ["", *[f"- {label(a)}: {d['agreement']}." for a, d in per.items()]]
    if why:
        out += ["", "Not determined, and why:", *why]
    out += ["", *md_header(["arch", "paper L(C)", "measured L(C) = A C^-α (envelope), α [95% CI]",
                      "front points (used for N_opt / excluded)"])]  # fmt: skip
    for arch, d in per.items():
        env, p = d["methods"]["envelope"], PAPER_FRONTIER.get(arch)
        if env.get("loss_determined"):
            law = f"{env['A']:.3g} C^-{env['alpha']:.3f}, α {fmt_ci(env['alpha'], env['alpha_ci'])}"
        else:
            law = f"not determined ({first_reason(env.get('loss_reasons') or env['reasons'])})"
        n_pts, n_ex = env.get("n_points"), env.get("n_excluded")
        pts = "-" if n_pts is None else f"{n_pts} ({n_pts - n_ex} / {n_ex})"
        out.append(md_row([label(arch), f"{p['A']} C^-{p['alpha']}" if p else "-", law, pts]))
    return [*out, "", *claims(per, f.get("comparison")), ""]


SECTION = Section(NAME, "L(C), N_opt(C), D_opt(C) three ways", compute, plot, report=frontier_section)


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
