"""Goodness of fit of every Chinchilla approach-3 fit: observed vs predicted final loss and the residual
ln(observed / predicted) vs N and vs D, one row per architecture (best-HP runs' final losses, as fit_laws.py fits
them) plus the reference fit on Hoffmann et al.'s points. A good fit scatters around the diagonal and the zero
lines with no trend in N or D; a trend means the law's form does not hold over the design.

Parameters come from results/fits/chinchilla.json (fit_laws.py) so the figure shows the fits the report prints;
without that file the fits are redone here without bootstrap. An under-determined design has no fit and its row
says why; a fitted but not determined one is drawn, titled "not determined".
"""

from __future__ import annotations

import sys
import textwrap

import matplotlib.pyplot as plt
import numpy as np

from ant.analysis.common import Context, Section, best_hp_runs, run_script
from ant.laws.chinchilla import ChinchillaFit, fit_chinchilla
from ant.laws.fits import FitError
from ant.laws.plotting import color, design_ticks, label, placeholder, residual_panels, sort_archs
from ant.laws.reference import load_chinchilla_points

NAME = "fit_residuals"
NEED = "completed runs over >= 3 sizes, >= 3 token budgets and >= 8 (size, budget) points"


def _data(ctx: Context, with_reference: bool) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """fit name -> (N, D, loss) for each architecture and, if asked for and available, the reference points."""
    out = {}
    done = best_hp_runs(ctx.done)
    for arch, g in done.groupby("arch") if not done.empty else []:
        out[arch] = tuple(g[c].to_numpy(dtype=float) for c in ("num_params", "tokens", "final_val_loss"))
    if with_reference:
        try:
            df = load_chinchilla_points()
        except ValueError as e:
            print(f"reference points skipped: {e}")
        else:
            out["reference"] = (df.N.to_numpy(), df.D.to_numpy(), df.loss.to_numpy())
    return out


def _entry(N, D, L, fit: dict) -> dict:
    """Residual numbers of one fit given its JSON parameters (or its reasons when there are none)."""
    base = {"determined": bool(fit.get("determined")), "reasons": list(fit.get("reasons") or []), "N": N, "D": D,
            "observed": L}  # fmt: skip
    if any(fit.get(k) is None for k in ChinchillaFit.PARAMS):
        return base
    params = {k: float(fit[k]) for k in ChinchillaFit.PARAMS}
    pred = ChinchillaFit(**params, objective=np.nan, n=len(N), n_starts=0).predict(N, D)
    r = np.log(L / pred)
    return {**base, "params": params, "predicted": pred, "residual": r, "rms_log": float(np.sqrt(np.mean(r**2))),
            "max_abs_log": float(np.abs(r).max())}  # fmt: skip


def compute(ctx: Context) -> dict:
    ch = ctx.read_json("chinchilla")
    source = "fits/chinchilla.json" if ch is not None else "refit here (no bootstrap)"
    data = _data(ctx, with_reference=ch is None or "reference" in ch)
    per = {}
    for name, (N, D, L) in data.items():
        if ch is not None:
            fit = ch.get("reference") if name == "reference" else ch.get("per_arch", {}).get(name)
            if fit is None:
                continue
        else:
            try:
                fit = fit_chinchilla(N, D, L).to_dict()
            except FitError as e:
                fit = {"determined": False, "reasons": [str(e)]}
        per[name] = _entry(N, D, L, fit)
        if "residual" not in per[name]:
            ctx.no_data(f"fit_residuals {name}", f"{NEED}: not determined ({'; '.join(per[name]['reasons'])})")
    if not per:
        ctx.no_data("fit_residuals", NEED)
    return {"per_fit": per, "source": source}


def _title(name: str, d: dict) -> str:
    who = "Hoffmann et al. Fig. 4 (reference)" if name == "reference" else label(name)
    if d["determined"]:
        return f"{who}: rms residual {100 * d['rms_log']:.2g} %"
    why = textwrap.shorten("; ".join(d["reasons"]), 110, placeholder=" ...")
    return f"{who}: NOT DETERMINED ({why})"


def _data_panels(axes, name: str, d: dict) -> None:
    """Observed final loss vs N (one colour shade per budget would hide the design; plain points show it) and vs D."""
    for ax, x, xl in zip(axes, (d["N"], d["D"]), ("parameters N", "tokens D")):
        ax.scatter(x, d["observed"], s=14, color=color(name), alpha=0.8)
        ax.set(xscale="log", xlabel=xl, ylabel="observed final loss")
        design_ticks(ax, x)
        ax.set_title(f"{label(name)}: the runs (not enough for a fit)", fontsize=9, loc="left", color="#b00000")


def plot(ctx: Context, numbers: dict) -> None:
    per = numbers["per_fit"]
    names = [n for n in sort_archs(per) if n != "reference"] + (["reference"] if "reference" in per else [])
    # where some fits exist, the under-determined ones are a footnote, not a row of placeholder boxes (issue 24)
    unfit = [n for n in names if "residual" not in per[n]] if any("residual" in per[n] for n in names) else []
    names = [n for n in names if n not in unfit]
    fig, axes = plt.subplots(max(1, len(names)), 3, figsize=(13, 3.4 * max(1, len(names))), squeeze=False)
    if not names:
        for ax in axes[0]:
            placeholder(ax, f"need {NEED}")
    for row, name in zip(axes, names):
        d = per[name]
        if "residual" not in d:  # under-determined design: no fit, so show the data it would have been fitted to
            why = textwrap.fill("; ".join(d["reasons"]), 48)
            placeholder(row[0], f"{label(name)}: not determined (no fit)\n\n{why}")
            _data_panels(row[1:], name, d)
            continue
        col = "black" if name == "reference" else color(name)
        residual_panels(row, d["N"], d["D"], d["observed"], d["predicted"], color=col, label=label(name))
        row[0].set_title(_title(name, d), fontsize=9, loc="left", color="black" if d["determined"] else "#b00000")
        scale = 100 * max(0.01, 1.1 * d["max_abs_log"])  # in %, symmetric, >= ±1 % so tiny residuals look tiny
        for ax in row[1:]:
            ax.set_ylim(-scale, scale)
    fig.suptitle(f"Chinchilla approach 3 fits: goodness of fit ({numbers['source']})", fontsize=10)
    if unfit:
        note = "; ".join(f"{label(n)}: {per[n]['reasons'][0].split(':')[0]}" for n in unfit if per[n].get("reasons"))
        fig.text(0.5, 0.003, textwrap.fill(f"Not fitted (too few sizes or budgets): {note}", 160), ha="center",
                 va="bottom", fontsize=8, color="0.25")  # fmt: skip
    fig.tight_layout(rect=(0, 0.04 if unfit else 0, 1, 1))
    ctx.save_figure(fig, NAME)


# after_fits: it reads fits/chinchilla.json, so make_figures computes it, not `ant fit`
SECTION = Section(NAME, "residuals of the Chinchilla fits", compute, plot, after_fits=True)


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
