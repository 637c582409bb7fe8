"""Plot helpers shared by ant.analysis and the notebooks: one colour and label per architecture, log axes, and
a save that writes PDF + PNG atomically. matplotlib runs headless (Agg) unless a backend was chosen already."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt

from ant.archs import ARCHS, TABLE
from ant.fsio import atomic_write_with

# matplotlib.use after pyplot's import switches pyplot too (no figure exists yet)
if "MPLBACKEND" not in os.environ and not matplotlib.get_backend().lower().startswith(("module://", "inline")):
    matplotlib.use("Agg")

ARCH_ORDER = ARCHS  # plots and tables list the architectures in the config's order
ARCH_LABEL = {a.name: a.label for a in TABLE}  # ant.archs: one row per architecture
ARCH_COLOR = {a.name: a.color for a in TABLE}

plt.rcParams.update(
    {
        "figure.dpi": 110,
        "savefig.dpi": 150,
        "font.size": 10,
        "axes.titlesize": 11,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "legend.fontsize": 8,
        "legend.frameon": False,
    }
)


def label(arch: str) -> str:
    return ARCH_LABEL.get(arch, arch)


def color(arch: str) -> str:
    return ARCH_COLOR.get(arch, "black")


def sort_archs(archs) -> list[str]:
    archs = list(dict.fromkeys(archs))
    return sorted(archs, key=lambda a: (ARCH_ORDER.index(a) if a in ARCH_ORDER else 99, a))


def save_figure(fig, out_dir: str | Path, name: str) -> list[Path]:
    """Write `name`.pdf and `name`.png into out_dir (each atomically, ant.fsio) and close the figure."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tidy_log_axes(fig)
    paths = []
    for ext in ("pdf", "png"):
        path = out / f"{name}.{ext}"
        atomic_write_with(path, lambda tmp, ext=ext: fig.savefig(tmp, format=ext, bbox_inches="tight"))
        paths.append(path)
    plt.close(fig)
    return paths


def tidy_log_axes(fig) -> None:
    """matplotlib labels minor ticks of log axes spanning about a decade, and those labels overlap; keep only the
    decade labels when the axis has at least two of them."""
    import numpy as np
    from matplotlib.ticker import NullFormatter

    for ax in fig.axes:
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            lo, hi = sorted(axis.get_view_interval())
            if scale == "log" and lo > 0 and hi / lo >= 5 and np.floor(np.log10(hi)) >= np.ceil(np.log10(lo)):
                axis.set_minor_formatter(NullFormatter())


def placeholder(ax, text: str) -> None:
    """An empty panel that says what data it needs."""
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True, transform=ax.transAxes, fontsize=9, color="0.4")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.grid(False)


def residual_panels(axes, N, D, observed, predicted, color: str = "black", label: str | None = None):
    """Goodness of fit of any L(N, D) fit on three axes: observed vs predicted loss (with the y = x line),
    and the residual 100 ln(observed / predicted) in % vs N and vs D (with a zero line). Returns the residuals
    (as log ratios). A log ratio, not a difference: the fits minimise a loss on log L and losses differ in scale.
    With few distinct sizes or budgets the axis is ticked at them (design_ticks), so the design is readable."""
    import numpy as np

    N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
    obs, pred = np.asarray(observed, dtype=float), np.asarray(predicted, dtype=float)
    resid = np.log(obs / pred)
    ax_fit, ax_n, ax_d = axes
    ax_fit.scatter(pred, obs, s=12, color=color, alpha=0.75, label=label)
    lo, hi = float(min(obs.min(), pred.min())), float(max(obs.max(), pred.max()))
    ax_fit.plot([lo, hi], [lo, hi], color="0.5", lw=0.8, ls="--", zorder=0)
    ax_fit.set(xlabel="predicted loss", ylabel="observed loss")
    for ax, x, name in ((ax_n, N, "parameters N"), (ax_d, D, "tokens D")):
        ax.scatter(x, 100 * resid, s=12, color=color, alpha=0.75, label=label)
        ax.axhline(0.0, color="0.5", lw=0.8, ls="--", zorder=0)
        ax.set(xscale="log", xlabel=name, ylabel="residual, % (100 ln obs/pred)")
    design_ticks(ax_n, N)
    design_ticks(ax_d, D)
    return resid


def design_ticks(ax, values, max_ticks: int = 8) -> None:
    """Tick a log x axis at the design's own values (model sizes, budgets) when there are few of them, labelled
    '2M', '160k', ...: a sweep's handful of sizes otherwise gets one decade label or unreadable minor labels."""
    import numpy as np
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    v = np.unique(np.asarray(values, dtype=float))
    if 0 < v.size <= max_ticks:
        ax.xaxis.set_major_locator(FixedLocator(v))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: _count(x)))
        ax.xaxis.set_minor_formatter(NullFormatter())
        if v.size > 1 and np.diff(np.log(v)).min() < np.log(1.6):  # neighbours under 1.6x apart: labels would touch
            ax.tick_params(axis="x", labelrotation=45)


def _count(v: float) -> str:
    """1.5e9 -> '1.5B', 2e6 -> '2M': parameter counts as a reader says them."""
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"
