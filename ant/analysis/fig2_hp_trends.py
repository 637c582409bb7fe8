"""Fig. 2: optimal batch size and learning rate per model size, with the power laws BS(N), LR(N), per budget regime.

Paper claim (§5.1, 20 tokens/param): anGPT BS = 1.1e-6 N^0.984 (R^2 0.974), LR = 0.065 N^-0.178 (R^2 0.659); GPT+
BS = 9e-5 N^0.729 (R^2 0.827), LR = 42 N^-0.482 (R^2 0.783): anGPT's optimal batch grows ~linearly with N, its LR
barely moves. Two-stage Akima procedure of ant.laws.hp on the completed runs, one trend per (arch, tokens per
parameter); optima on the edge of the searched grid are drawn hollow and left out of the power laws.
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ant.analysis.common import Context, Section, fmt_ci, md_header, md_row, md_sizes, run_script
from ant.archs import PAPER_ORDER
from ant.laws.fits import FitError
from ant.laws.hp import hp_trends
from ant.laws.plotting import color, label, sort_archs
from ant.laws.reference import PAPER_HP

NAME = "fig2_hp_trends"
BY = "tokens_per_param"
NEED = ("an HP sweep: >= 3 LRs x >= 3 batch sizes per model size at one token budget, at >= 3 sizes "
        "(e.g. the hp-sweep grid of sweeps/paper.yaml: `ant sweep sweeps/paper.yaml`)")  # fmt: skip


def compute(ctx: Context) -> dict:
    done = ctx.done
    empty = {"by": BY, "regimes": [], "per_arch": {}}
    if done.empty:
        ctx.no_data("fig2 (HP trends)", NEED)
        return empty
    try:
        trends = hp_trends(done, by=BY)
    except FitError as e:
        ctx.no_data("fig2 (HP trends)", f"{NEED}; {e}")
        return empty
    out: dict = {}
    budgets: dict[str, float] = {}
    for arch, per in trends.items():
        rows = done[done["arch"] == arch]
        seq = sorted(int(s) for s in rows["seq_len"].dropna().unique()) if "seq_len" in rows else []
        out[arch] = {}
        for regime, t in per.items():
            budgets[regime] = t.budget
            out[arch][regime] = {**t.to_dict(), "seeds": sorted(int(s) for s in rows["seed"].unique()),
                                 "seq_len": seq[0] if len(seq) == 1 else None}  # fmt: skip
            if t.bs_fit is None:
                why = "; ".join(n for n in t.notes if "interior" in n or "excluded" in n)[:300]
                ctx.no_data(f"fig2 BS(N)/LR(N) fit for {arch} at {regime}", f">= 3 sizes with interior optima ({why})")
    return {"by": BY, "regimes": sorted(budgets, key=budgets.get), "per_arch": out}


def _message_figure(ctx: Context, text: str) -> None:
    """No HP grid in the data: a figure that only says which sweep would produce it, no empty axes."""
    fig = plt.figure(figsize=(8, 1.4))
    fig.text(0.5, 0.5, "Fig. 2 (optimal batch and LR vs model size) not drawn:\n" + text, ha="center", va="center",
             fontsize=9, color="0.25", wrap=True)  # fmt: skip
    ctx.save_figure(fig, NAME)


def plain_log_ticks(ax) -> None:
    """Log axes spanning less than two decades get ticks at 1, 2, 5 x 10^k with plain labels (0.002, 50, 20M):
    with matplotlib's default, such an axis shows one or no labelled tick."""
    for axis, lim, scale in ((ax.xaxis, ax.get_xlim(), ax.get_xscale()), (ax.yaxis, ax.get_ylim(), ax.get_yscale())):
        lo, hi = sorted(lim)
        if scale != "log":
            continue
        if lo > 0 and hi / lo < 100:
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0) if hi / lo < 10 else (1.0, 2.0, 5.0)))
            axis.set_minor_formatter(NullFormatter())
        axis.set_major_formatter(FuncFormatter(lambda v, _: plain(v)))


def plain(v: float) -> str:
    for unit, scale in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if v >= scale:
            return f"{v / scale:g}{unit}"
    return f"{v:.3g}"


def _paper_line(ax, arch: str, key: str, N: np.ndarray, y: np.ndarray, span: np.ndarray) -> None:
    """The paper's exponent (fitted at 32M-1B, 20 tokens/param) as a dotted slope through the geometric mean of
    this architecture's optima (`N`, `y`), drawn over `span`'s sizes. Only the exponents compare (the paper's
    coefficients are for 2048-token batches of BPE tokens at 10,000x the size, and its regime may not be this
    one), so the line says how steep, not where."""
    p = PAPER_HP.get(arch)
    if p is None or not len(N):
        return
    exp = p[key][1]
    n0, y0 = np.exp(np.log(N).mean()), np.exp(np.log(y).mean())
    xs = np.geomspace(span.min() / 1.3, span.max() * 1.3, 50)
    ax.plot(xs, y0 * (xs / n0) ** exp, color=color(arch), ls=":", lw=1.2, alpha=0.8,
            label=f"paper {label(arch)}: slope N^{exp} (32M-1B)")  # fmt: skip


def excluded_text(per_size: list[dict]) -> str:
    """Why sizes are out of the fit, counted by kind: ', 3 excluded: edge' or ', 1 excluded: one batch size' (a
    baseline trained at a single batch has no batch optimum at all; calling that an edge optimum was wrong)."""
    kinds: dict[str, int] = {}
    for r in per_size:
        if r["in_fit"]:
            continue
        why = r.get("exclude_reason") or ""
        kind = "too few batch sizes" if "need >= 3" in why else "edge"
        if kind != "edge" and int(r.get("n_batches") or 0) == 1:
            kind = "one batch size"
        kinds[kind] = kinds.get(kind, 0) + 1
    return "".join(f", {n} excluded: {k}" for k, n in kinds.items())


def plot(ctx: Context, numbers: dict) -> None:
    per, regimes = numbers["per_arch"], numbers["regimes"]
    if not regimes:
        _message_figure(ctx, "; ".join(numbers.get("missing", [])) or NEED)
        return
    fig, axes = plt.subplots(len(regimes), 2, figsize=(11, 4.6 * len(regimes)), squeeze=False, layout="constrained")
    for row, regime in zip(axes, regimes):
        for ax, key in zip(row, ("bs", "lr")):
            for arch in sort_archs(per):
                d = per[arch].get(regime)
                if not d or not d["per_size"]:
                    continue
                ps = d["per_size"]
                N = np.array([r["N"] for r in ps])
                y = np.array([r[f"{key}_opt"] for r in ps])
                inside = np.array([bool(r["in_fit"]) for r in ps])
                ax.scatter(N[inside], y[inside], color=color(arch), s=30, zorder=3)
                ax.scatter(N[~inside], y[~inside], facecolor="none", edgecolor=color(arch), s=30, zorder=3, lw=1.2)
                f = d[f"{key}_fit"]
                n_ex = excluded_text(ps)
                if f:
                    xs = np.geomspace(N.min() / 1.3, N.max() * 1.3, 50)
                    lo, hi = f["exponent_ci"]
                    ci = f" [{lo:.2f}, {hi:.2f}]" if lo is not None else ""
                    ax.plot(xs, f["coef"] * xs ** f["exponent"], color=color(arch),
                            label=f"{label(arch)}: {f['coef']:.2g} N^{f['exponent']:.3f}{ci}, R²={f['r2']:.2f} "
                                  f"({d['n_interior']} sizes{n_ex})")  # fmt: skip
                else:
                    why = f"no fit ({d['n_interior']} interior optima, need 3{n_ex})"
                    ax.plot([], [], "o", color=color(arch), label=f"{label(arch)}: {why}")
                pick = inside if inside.any() else np.ones_like(inside)
                _paper_line(ax, arch, key, N[pick], y[pick], N)
            seq = {per[a][regime].get("seq_len") for a in per if regime in per[a]}
            unit = f"sequences of {seq.pop()} tokens" if len(seq) == 1 and None not in seq else "sequences"
            ylabel = f"optimal batch ({unit})" if key == "bs" else "optimal learning rate"
            ax.set(xscale="log", yscale="log", xlabel="parameters N", ylabel=ylabel,
                   title=f"{'batch size' if key == 'bs' else 'learning rate'} at {regime}")  # fmt: skip
            plain_log_ticks(ax)
            ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=1, fontsize=7)
    fig.suptitle("Optimal HPs per model size (filled: interior optimum, in the fit; hollow: excluded, an optimum on "
                 "the edge of the searched grid or a single batch size;\ndotted: the paper's exponent, drawn through "
                 "our optima (only the slopes compare))", fontsize=9)  # fmt: skip
    ctx.save_figure(fig, NAME)


# ---------------------------------------------------------------------------------------------- REPORT.md


def hp_section(f: dict) -> list[str]:
    """One table per budget regime (fig2_hp_trends.json: per_arch[arch][regime]); sizes whose optimum is on the
    edge of the searched grid are excluded from the power laws and counted; no fit reads 'not determined'."""
    per, regimes = f.get("per_arch", {}), f.get("regimes", [])
    out = ["## Hyper-parameter trends (Fig. 2, §5.1)", ""]
    if any("bs_fit" in d for d in per.values()):  # a pooled-budget JSON from before per-regime trends
        return [*out, "Not shown: fits/fig2_hp_trends.json predates per-regime trends; rerun `ant fit`.", ""]
    if not regimes:
        return [*out, "Not measured: " + ("; ".join(f.get("missing", [])) or "no HP sweep with >= 3 sizes."), ""]
    out += [
        "One trend per token budget (tokens per parameter; the paper's sweep is at 20). Optima on the edge of the "
        "searched LR or batch grid are bounds, not optima: they are excluded from the power laws and counted.",
        "",
    ]
    cols = ["arch", "paper BS(N)", "measured BS(N) exponent [95% CI], R²", "paper LR(N)",
            "measured LR(N) exponent [95% CI], R²", "sizes in the fit", "excluded from the fit (why)"]  # fmt: skip
    for regime in regimes:
        out += [f"### {regime}", "", *md_header(cols)]
        for arch in (*PAPER_ORDER, *sorted(set(per) - set(PAPER_ORDER))):
            d, p = (per.get(arch) or {}).get(regime), PAPER_HP.get(arch)
            if not d:
                continue
            pb = f"{p['bs'][0]:.2g} N^{p['bs'][1]} (R² {p['bs'][2]})" if p else "-"
            pl = f"{p['lr'][0]:.2g} N^{p['lr'][1]} (R² {p['lr'][2]})" if p else "-"
            bs, lr = d["bs_fit"], d["lr_fit"]
            if bs and lr:
                mb = f"{fmt_ci(bs['exponent'], bs['exponent_ci'])}, {bs['r2']:.2f}"
                ml = f"{fmt_ci(lr['exponent'], lr['exponent_ci'])}, {lr['r2']:.2f}"
            else:
                mb = ml = f"not determined ({d['n_interior']} sizes with an interior optimum, need 3)"
            inside = [r["N"] for r in d["per_size"] if r["in_fit"]]
            ex = "; ".join(f"{e['N']:.3g} ({e['reason']})" for e in d["excluded"]) or "-"
            out.append(md_row([label(arch), pb, mb, pl, ml, md_sizes(inside), ex]))
        out += ["", *_hp_claims(per, regime), ""]
    return out


def _hp_claims(per: dict, regime: str) -> list[str]:
    a, g = (per.get("angpt") or {}).get(regime), (per.get("gptplus") or {}).get(regime)
    if not (a and g and a["bs_fit"] and g["bs_fit"]):
        return ["Claims not tested at this budget: both anGPT and GPT+ need >= 3 sizes with interior optima."]
    where = "" if regime.startswith("20 tokens/param") else " (the paper measured at 20 tokens/param)"
    out = []
    for key, claim, paper in (("bs_fit", "anGPT's optimal batch grows faster with N than GPT+'s", "0.984 vs 0.729"),
                              ("lr_fit", "anGPT's optimal LR depends less on N", "-0.178 vs -0.482")):  # fmt: skip
        fa, fg = a[key], g[key]
        agree = fa["exponent"] > fg["exponent"]
        (lo_a, hi_a), (lo_g, hi_g) = fa["exponent_ci"], fg["exponent_ci"]
        sep = None not in (lo_a, hi_a, lo_g, hi_g) and (lo_a > hi_g or hi_a < lo_g)
        caveat = "" if sep else " in the point estimates, but the 95% CIs overlap, so the data cannot separate them"
        out.append(f"Claim{where}: {claim} ({paper}). Measured {fa['exponent']:.3f} vs {fg['exponent']:.3f}: "
                   f"small scale **{'agrees' if agree else 'disagrees'}**{caveat}.")  # fmt: skip
    return out


SECTION = Section(
    NAME, "optimal LR and batch per size and budget; their power laws in N", compute, plot, report=hp_section
)


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
