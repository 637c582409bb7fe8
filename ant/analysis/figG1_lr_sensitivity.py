"""Fig. G.1: final loss vs learning rate per model size (one panel per size, one curve per batch size), and an
LR-sensitivity number per (arch, size): the loss increase at 3x and 1/3x the optimal LR.

Paper (App. G, paper-notes §6): anGPT's loss is flat-ish around the optimal LR, whose value barely moves with
size (~2e-3); GPT+'s optimum moves from 1e-2 (32M) to ~2.7e-3 (0.5B). Curves are the Akima interpolants over
log LR of ant.laws.hp (stage 1), per budget regime; a star marks each curve's minimum, a hollow square a minimum
on the edge of the LR grid (a bound, not an optimum). The sensitivity is read off the Akima curve of the batch
size with the lowest minimum among those measured with >= 2 seeds at >= 3 LRs (else among all batches), as the
mean over seeds and per seed; None where 3x or 1/3x the optimum lies outside the measured LRs.
"""

from __future__ import annotations

import sys

import matplotlib.pyplot as plt
import numpy as np

from ant.analysis.common import Context, run_script
from ant.analysis.fig2_hp_trends import plain, plain_log_ticks
from ant.laws.fits import FitError
from ant.laws.hp import assign_regimes, hp_trends, lr_sensitivity, trusted_curve
from ant.laws.plotting import label, sort_archs

NAME = "figG1_lr_sensitivity"
BY = "tokens_per_param"
FACTOR = 3.0
LOSS = "final_val_loss"
NEED = "an LR sweep: >= 3 LRs per (model size, batch size) at one token budget (>= 5 LRs, half-decade steps, for C2)"


def _sensitivity(g, batch: float) -> dict:
    """lr_sensitivity of the seed-mean curve at `batch`, plus one entry per seed with >= 3 LRs there."""
    gb = g[g["batch_size"] == batch]
    s = {"batch_size": batch, **lr_sensitivity(gb["lr"], gb[LOSS], FACTOR), "per_seed": []}
    for seed, gs in gb.groupby("seed") if "seed" in gb else []:
        if gs["lr"].nunique() >= 3:
            r = lr_sensitivity(gs["lr"], gs[LOSS], FACTOR)
            s["per_seed"].append({"seed": int(seed), **{k: r[k] for k in ("lr_best", "up", "down", "up_rel",
                                                                          "down_rel")}})  # fmt: skip
    return s


def compute(ctx: Context) -> dict:
    done = ctx.done
    out: dict = {"by": BY, "factor": FACTOR, "per_arch": {}}
    if done.empty:
        ctx.no_data("figG1 (loss vs LR)", NEED)
        return out
    try:
        trends = hp_trends(done, by=BY)
    except FitError as e:
        ctx.no_data("figG1 (loss vs LR)", f"{NEED}; {e}")
        return out
    pts = assign_regimes(done, by=BY, loss=LOSS)
    for arch, per in trends.items():
        for regime, t in per.items():
            g_reg = pts[(pts["arch"] == arch) & (pts["regime"] == regime)]
            sizes = []
            for N, pb in t.per_batch.groupby("N"):
                g = g_reg[g_reg["num_params"] == N]
                batches = []
                for r in pb.sort_values("batch_size").itertuples():
                    m = g[g["batch_size"] == r.batch_size].groupby("lr")[LOSS].agg(["mean", "count"])
                    batches.append({"batch_size": r.batch_size, "lr": m.index.tolist(), "loss": m["mean"].tolist(),
                                    "n_seeds": m["count"].tolist(), "lr_best": r.lr_best, "loss_best": r.loss_best,
                                    "lr_at_edge": bool(r.lr_at_edge)})  # fmt: skip
                # a sensitivity needs seeds for its spread: the best batch among those with >= 3 LRs measured
                # with >= 2 seeds (the study's seeds are at batch 4), else the best batch overall
                seeded = [b["batch_size"] for b in batches if sum(n >= 2 for n in b["n_seeds"]) >= 3]
                pool = pb[pb["batch_size"].isin(seeded)] if seeded else pb
                best = float(pool.loc[pool["loss_best"].idxmin(), "batch_size"])
                name = str(g["size"].iloc[0]) if "size" in g and len(g) else f"{N:.3g}"
                sizes.append({"N": float(N), "size": name, "batches": batches, "sensitivity": _sensitivity(g, best)})
            out["per_arch"].setdefault(arch, {})[regime] = {"budget": t.budget, "sizes": sizes}
    return out


def _message_figure(ctx: Context, text: str) -> None:
    fig = plt.figure(figsize=(8, 1.4))
    fig.text(0.5, 0.5, "Fig. G.1 (loss vs learning rate per size) not drawn:\n" + text, ha="center", va="center",
             fontsize=9, color="0.25", wrap=True)  # fmt: skip
    ctx.save_figure(fig, NAME)


def _fmt_delta(v) -> str:
    return "outside grid" if v is None else f"+{v:.3g}"


def _panel(ax, s: dict, factor: float) -> None:
    batches = s["batches"]
    cmap = plt.get_cmap("viridis")
    for i, b in enumerate(batches):
        c = cmap(i / max(1, len(batches) - 1) * 0.9)
        lr, loss = np.asarray(b["lr"]), np.asarray(b["loss"])
        # where the Akima curve invents a minimum below every measured loss (the rule ant.laws.hp applies to lr*),
        # the figure draws the shape-preserving PCHIP curve, dashed, instead of the undershoot
        x, y, pchip = trusted_curve(np.log(lr), loss)
        ax.plot(np.exp(x), y, color=c, lw=1.3, ls="--" if pchip else "-",
                label=f"batch {b['batch_size']:g}" + (" (PCHIP: Akima undershot)" if pchip else ""))  # fmt: skip
        ax.plot(lr, loss, "o", color=c, ms=3.5)
        if b["lr_at_edge"]:
            ax.plot(b["lr_best"], b["loss_best"], "s", mfc="none", mec=c, ms=9, mew=1.5, zorder=4)
        else:
            ax.plot(b["lr_best"], b["loss_best"], "*", color=c, mec="k", mew=0.5, ms=12, zorder=4)
    sens = s["sensitivity"]
    for key, x in (("up", sens["lr_best"] * factor), ("down", sens["lr_best"] / factor)):
        if sens[key] is not None:  # where the sensitivity is read, when inside the measured LRs
            ax.axvline(x, color="0.55", ls=":", lw=0.9, zorder=0)
    txt = (f"at batch {sens['batch_size']:g}: loss at {factor:g}x lr* {_fmt_delta(sens['up'])}, "
           f"at 1/{factor:g}x {_fmt_delta(sens['down'])}")  # fmt: skip
    if sens["lr_at_edge"]:
        txt = f"at batch {sens['batch_size']:g}: optimum on the LR grid edge, no sensitivity"
    ax.set_title(f"{s['size']} ({plain(s['N'])} params)\n{txt}", fontsize=8)
    ax.set(xscale="log", xlabel="learning rate")
    plain_log_ticks(ax)
    ax.legend(fontsize=7, loc="upper center")


def layout(rows: list[tuple[str, str, int]], ncol: int) -> list[list[tuple[str, str, int]]]:
    """Figure rows of (arch, regime, panel index): each (arch, regime) with >= 2 sizes gets a row of its own; the
    single-size ones (the GPT and nGPT baselines: one size each) share rows, so no row is mostly empty panels."""
    out, singles = [], []
    for arch, regime, n in rows:
        if n >= 2:
            out.append([(arch, regime, j) for j in range(n)])
        else:
            singles.append((arch, regime, 0))
    out += [singles[i : i + ncol] for i in range(0, len(singles), ncol)]
    return out


def plot(ctx: Context, numbers: dict) -> None:
    per = numbers["per_arch"]
    rows = [(a, r, len(per[a][r]["sizes"])) for a in sort_archs(per) for r in per[a]]
    if not rows:
        _message_figure(ctx, "; ".join(numbers.get("missing", [])) or f"need {NEED}")
        return
    ncol = max(n for *_, n in rows)
    grid = layout(rows, ncol)
    fig = plt.figure(figsize=(3.6 * ncol, 3.4 * len(grid)), layout="constrained")
    gs = fig.add_gridspec(len(grid), 2 * ncol)  # half-columns: a short row is centred, not left-aligned
    for i, panels in enumerate(grid):
        off = ncol - len(panels)
        for j, (arch, regime, k) in enumerate(panels):
            ax = fig.add_subplot(gs[i, off + 2 * j : off + 2 * j + 2])
            _panel(ax, sorted(per[arch][regime]["sizes"], key=lambda s: s["N"])[k], numbers["factor"])
            if k == 0:
                ax.set_ylabel(f"{label(arch)}, {regime}\nfinal val loss (mean over seeds)")
    fig.suptitle("Loss vs learning rate (curves: Akima interpolation in log LR, dashed PCHIP where Akima dips "
                 "below every measured loss; ★ minimum; □ minimum on the edge\nof the LR grid, only a bound; dotted: "
                 "1/3x and 3x lr* of the batch named in the panel title, where the sensitivity is read)",
                 fontsize=9)  # fmt: skip
    ctx.save_figure(fig, NAME)


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
