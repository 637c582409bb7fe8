"""Fig. 1: mean L2 norm of the residual stream entering each block, over training, per architecture.

Paper claim (§1.1, Fig. 1, Table O.1): in GPT+ the norm grows with depth (to ~1e3 in the last layer of the 0.5B
model); nGPT stays at 1; anGPT is strongly reduced. Measured here on the largest model that logged diagnostics.

One row of panels with one shared y-axis: the same norm must look the same in every architecture's panel (a
0.95-1.15 band must not fill a panel the way 1-400 does). The axis is logarithmic when the values span more than a
decade, linear otherwise, with plain tick labels either way. The x-axis is linear in tokens so that the first
diagnostics row (step 0 when logged: the norms at initialisation) is on it; the depth panel shows that first row
(dashed) next to the end of training (solid).
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter, ScalarFormatter

from ant.analysis.common import Context, Section, largest_run_curves, run_script
from ant.laws.plotting import color, label, sort_archs
from ant.laws.reference import PAPER_ALPHA

NAME = "fig1_residual_norms"
PREFIX = "resid_norm_"
DEFAULT_ARCHS = ("gptplus", "ngpt", "angpt")
LOG_SPAN = 10.0  # max/min above which the shared y-axis is logarithmic


def _layer_cols(df) -> list[str]:
    cols = [c for c in df.columns if c.startswith(PREFIX)]
    return sorted(cols, key=lambda c: int(c[len(PREFIX) :]))


def pick_runs(ctx: Context) -> dict:
    """arch -> the diagnostics rows (tokens ascending) of its largest, longest completed run (lowest seed); a
    failed or unfinished run would show its first rows only."""
    curves = ctx.curves
    if "status" in curves:
        curves = curves[curves["status"] == "completed"]
    cols = _layer_cols(curves)
    out = {}
    for arch, run in largest_run_curves(curves, cols).items():
        keep = [x for x in cols if run[x].notna().any()]
        meta = [c for c in ("step", "tokens", "num_params", "run_id") if c in run]
        out[arch] = run.loc[run[keep].notna().any(axis=1), [*meta, *keep]].reset_index(drop=True)
    return out


def compute(ctx: Context) -> dict:
    picked = pick_runs(ctx)
    if not picked:
        ctx.no_data("fig1 (residual norms)", f"'{PREFIX}<i>' columns in metrics.parquet of completed runs")
        return {"per_arch": {}}
    per_arch = {}
    for arch, run in picked.items():
        cols = _layer_cols(run)
        norms = run[cols].ffill()
        final, first = norms.iloc[-1].to_numpy(float), run[cols].iloc[0].to_numpy(float)
        per_arch[arch] = {
            "run_id": run["run_id"].iloc[0],
            "num_params": int(run["num_params"].iloc[0]),
            "tokens": int(run["tokens"].max()),
            "final_norm_per_layer": final.tolist(),
            "last_over_first": float(final[-1] / final[0]),
            "max_norm": float(np.nanmax(run[cols].to_numpy(float))),
            # the first logged diagnostics: the norms at initialisation when step 0 was logged (ant.train does)
            "initial_tokens": int(run["tokens"].iloc[0]),
            "initial_norm_per_layer": first.tolist(),
        }
    return {"per_arch": per_arch}


def _plain_y(ax, lo: float, hi: float) -> None:
    """Shared y-limits with plain tick labels (1, 2, 5, 10, ... or 0.95, 1.00, ...), never 10^0 or an offset."""
    if hi / lo > LOG_SPAN:
        ax.set_yscale("log")
        ax.set_ylim(lo / 1.25, hi * 1.25)
        ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        pad = 0.08 * (hi - lo) or 0.05 * hi
        ax.set_ylim(max(0.0, lo - pad), hi + pad)
        fmt = ScalarFormatter(useOffset=False)
        fmt.set_scientific(False)
        ax.yaxis.set_major_formatter(fmt)


def _empty(ax, text: str) -> None:
    """An empty panel that says what is missing; unlike ant.laws.plotting.placeholder it leaves the tick
    locators alone, which the panels of the row share."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes, fontsize=9, color="0.4")
    ax.tick_params(bottom=False, labelbottom=False)
    ax.grid(False)


def _tokens_label(v: float, _pos=None) -> str:
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:g}"


def _y_range(picked: dict) -> tuple[float, float]:
    vals = np.concatenate([run[_layer_cols(run)].to_numpy(float).ravel() for run in picked.values()])
    vals = vals[np.isfinite(vals) & (vals > 0)]
    return (float(vals.min()), float(vals.max())) if len(vals) else (1.0, 1.0)


def plot(ctx: Context, numbers: dict) -> None:
    picked = pick_runs(ctx)
    archs = sort_archs(picked) or list(DEFAULT_ARCHS)
    # two rows of architecture panels and the depth profile spanning both: one row of five panels was ~5:1
    n = len(archs)
    rows = 2 if n > 1 else 1
    cols = -(-n // rows)
    fig = plt.figure(figsize=(3.4 * cols + 4.6, 2.9 * rows + 0.5), layout="constrained")
    gs = fig.add_gridspec(rows, cols + 1, width_ratios=[1] * cols + [1.3])
    axes: list = []
    for i in range(n):  # created in order, then the depth profile: fig.axes keeps the arch panels first
        r, c = divmod(i, cols)
        axes.append(fig.add_subplot(gs[r, c], sharey=axes[0] if axes else None))
        axes[-1].tick_params(labelleft=c == 0)
    axes.append(fig.add_subplot(gs[:, cols], sharey=axes[0]))
    n_layers = max((len(_layer_cols(r)) for r in picked.values()), default=1)
    cmap = plt.get_cmap("viridis")
    shade = plt.Normalize(0, max(1, n_layers - 1))
    for ax, arch in zip(axes, archs):
        if arch not in picked:
            _empty(ax, f"no {label(arch)} run with residual norms")
            continue
        run = picked[arch]
        for i, col in enumerate(_layer_cols(run)):
            ok = run[col].notna()
            ax.plot(run.loc[ok, "tokens"], run.loc[ok, col], "o-" if ok.sum() == 1 else "-", color=cmap(shade(i)),
                    lw=1.2, ms=3)  # fmt: skip
        ax.set(xlabel="tokens", title=f"{label(arch)} ({_tokens_label(run['num_params'].iloc[0])} params)")
        ax.set_xlim(left=0)
        ax.xaxis.set_major_locator(MaxNLocator(4))
        ax.xaxis.set_major_formatter(FuncFormatter(_tokens_label))
    axes[0].set_ylabel("mean residual L2 norm")
    if picked:
        cb = fig.colorbar(plt.cm.ScalarMappable(cmap=cmap, norm=shade), ax=axes[len(archs) - 1], fraction=0.08,
                          label="layer (input of block i)")  # fmt: skip
        cb.ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax = axes[-1]  # depth profile: the first logged row (dashed) and the end of training (solid), all archs
    for arch in archs:
        d = numbers["per_arch"].get(arch)
        if not d:
            continue
        first, final = d["initial_norm_per_layer"], d["final_norm_per_layer"]
        start = "step 0" if d["initial_tokens"] == 0 else f"{_tokens_label(d['initial_tokens'])} tokens"
        ax.plot(range(len(first)), first, "o--", color=color(arch), mfc="none", ms=3, lw=1,
                label=f"{label(arch)}, {start}")  # fmt: skip
        ax.plot(range(len(final)), final, "o-", color=color(arch), ms=3, label=f"{label(arch)}, end")
    ax.set(xlabel="layer", title="depth profile")
    ax.tick_params(labelleft=True)  # same limits as the row, but far from the first panel's labels
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if numbers["per_arch"]:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    else:
        _empty(ax, "no residual norms logged")
    if picked:
        _plain_y(axes[0], *_y_range(picked))  # sharey: one set of limits and ticks for the whole row
    ctx.save_figure(fig, NAME)


# ---------------------------------------------------------------------------------------------- REPORT.md


def diag_section(f1: dict, fa: dict) -> list[str]:
    out = ["## Residual norms (Fig. 1) and α over training (App. M)", ""]
    per = f1.get("per_arch", {})
    if per:
        for arch, d in per.items():
            out.append(f"- {label(arch)} ({d['num_params']:.3g} params, {d['tokens']:.3g} tokens): final residual norm "
                       f"last/first layer = {d['last_over_first']:.2f}, max {d['max_norm']:.3g}")  # fmt: skip
        g, a = per.get("gptplus"), per.get("angpt")
        if g and a:
            agree = g["last_over_first"] > a["last_over_first"]
            out.append(f"- Claim: GPT+'s residual norm grows with depth, anGPT's far less. Measured growth "
                       f"{g['last_over_first']:.2f}x vs {a['last_over_first']:.2f}x: "
                       f"**{'agrees' if agree else 'disagrees'}**.")  # fmt: skip
    else:
        out.append("Residual norms not measured: " + "; ".join(f1.get("missing", [])))
    pa = fa.get("per_arch", {})
    for arch, d in pa.items():
        for kind in ("alpha_a", "alpha_m"):
            if kind in d:
                k = d[kind]
                lo, hi = PAPER_ALPHA["final_range"]
                inside = lo <= k["final_mean"] <= hi
                if arch == "angpt":  # the paper's claim is about anGPT; other archs are shown for comparison
                    verdict = f"paper 0.05 -> 0.12-0.25: **{'agrees' if inside else 'outside the paper range'}**"
                else:
                    verdict = "for comparison"
                out.append(f"- {label(arch)} {kind}: {k['initial_mean']:.3f} -> {k['final_mean']:.3f} (layers "
                           f"{k['final_min']:.3f}-{k['final_max']:.3f}); {verdict}.")  # fmt: skip
    if not pa:
        out.append("α not measured: " + "; ".join(fa.get("missing", [])))
    return [*out, ""]


SECTION = Section(
    NAME,
    "residual norms per layer (largest run)",
    compute,
    plot,
    report=diag_section,
    reads=("fig1_residual_norms", "alpha_over_training"),
)


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
