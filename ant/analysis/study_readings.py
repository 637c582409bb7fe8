"""The study report's claim C7: the paper's open readings (the readings group: anGPT model.options variants vs the
defaults, paired by seed) and alpha over training per learning rate (the main group's anGPT LR scan at tiny2).
study_report.py calls `c7_readings`; study_figures.py draws from the numbers it returns.
"""

from __future__ import annotations

import json
import math
import re

import numpy as np
import pandas as pd

from ant.analysis.study_common import (
    UNDETERMINED,
    Claim,
    Study,
    human,
    not_measured,
    num,
    seeds_text,
    sizes_text,
    t_interval,
    table,
    tokens_text,
    with_ci,
)
from ant.errors import ConfigError
from ant.laws.reference import PAPER_ALPHA

OPTIONS = "cfg.model.options"  # model.options as JSON text in the runs table (ant.laws.collect._flatten)
ALPHA_SIZE = "tiny2"  # alpha over training per LR: the hp grid at this size (issue 11, C7)
ALPHA_PAT = re.compile(r"^alpha_[am]_\d+$")
READINGS_HEADER = ["variant", "reading", "seed pairs", "mean diff (nats)", "relative [95 % CI]", "verdict"]
ALPHA_HEADER = ["LR", "seeds", "final loss", "α first logged", "α final", "α min", "negative from (tokens)"]


READINGS = {  # model.options of sweeps/study/readings.yaml -> what each reading is
    "alpha_scale": "α storage scale (Table F.2: 0.001; default 0.01)",
    "sz_scale": "s_z storage scale (1/√d instead of 0.01)",
    "gate_sqrt_d": "SiLU input × √d (nGPT's gate scale)",
    "qk_scale_per_head": "logit scale g per head (instead of per layer)",
    "abs_alpha": "|α| (nGPT) instead of α",
}


def options_of(runs: pd.DataFrame) -> pd.Series:
    """The model.options of every run as canonical JSON text ('{}' for the defaults)."""
    if OPTIONS not in runs:
        raise ConfigError(f"runs.{OPTIONS}", "missing: cannot tell the readings apart")

    def canon(v) -> str:
        d = json.loads(v) if isinstance(v, str) and v else (v if isinstance(v, dict) else {})
        return json.dumps(d or {}, sort_keys=True)

    return runs[OPTIONS].map(canon)


def readings_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Each variant vs the default options, paired by seed within (arch, size): mean difference and t-interval."""
    r = runs.assign(options=options_of(runs))
    rows = []
    for (arch, size), g in r.groupby(["arch", "size"]):
        base = g[g["options"] == "{}"].groupby("seed")["final_val_loss"].mean()
        for opt, v in g[g["options"] != "{}"].groupby("options"):
            d = (v.groupby("seed")["final_val_loss"].mean() - base).dropna()
            m, lo, hi = t_interval(d.to_numpy())
            base_m = float(base.loc[d.index].mean()) if len(d) else math.nan
            matters = bool(np.isfinite(lo) and (lo > 0 or hi < 0))
            name = ", ".join(f"{k}={x}" for k, x in json.loads(opt).items())
            what = "; ".join(READINGS.get(k, k) for k in json.loads(opt))
            rows.append({"arch": arch, "size": size, "variant": name, "reading": what, "n_pairs": len(d),
                         "diff": m, "lo": lo, "hi": hi, "rel": m / base_m, "rel_lo": lo / base_m,
                         "rel_hi": hi / base_m, "baseline": base_m,
                         "verdict": "matters" if matters else ("not determined (< 2 seed pairs)" if len(d) < 2
                                                                 else "no measurable effect")})  # fmt: skip
    return pd.DataFrame(rows)


def alpha_per_lr(st: Study, size: str = ALPHA_SIZE) -> dict:
    """Mean α over layers (α_A, α_M and both) vs tokens per LR for the anGPT LR scan at `size` and its tuned
    batch (else the batch of the scan's best run); seeds averaged per logged row."""
    runs, curves = st.done("main"), st.curves("main")
    if runs.empty or curves.empty:
        return {}
    r = runs[(runs["arch"] == "angpt") & (runs["size"] == size)]
    r = r[r.groupby("tokens")["lr"].transform("nunique") >= 3]  # the LR scan, not the budget sweep
    if r.empty:
        return {}
    batch = st.tuned_batch("angpt", size)
    if batch is None or batch not in set(r["batch_size"].astype(float)):
        batch = float(r.loc[r["final_val_loss"].idxmin(), "batch_size"])
    r = r[r["batch_size"].astype(float) == batch]
    cols = [c for c in curves.columns if ALPHA_PAT.match(c)]
    if not cols:
        return {}
    out = {"size": size, "batch_size": batch, "per_lr": []}
    for lr, g in r.groupby("lr"):
        c = curves[curves["run_id"].isin(g["run_id"])].dropna(subset=cols, how="all")
        if c.empty:
            continue
        c = c.groupby("tokens")[cols].mean().sort_index()
        kinds = {k: c[[x for x in cols if x.startswith(k)]].mean(axis=1) for k in ("alpha_a", "alpha_m")}
        both = c[cols].mean(axis=1)
        neg = both[both < 0]
        out["per_lr"].append({"lr": float(lr), "final_loss": float(g["final_val_loss"].mean()), "seeds": len(g),
                              "tokens": c.index.tolist(), "alpha": both.tolist(),
                              **{k: v.tolist() for k, v in kinds.items()}, "initial": float(both.iloc[0]),
                              "final": float(both.iloc[-1]), "min": float(both.min()),
                              "negative_from": float(neg.index[0]) if len(neg) else None})  # fmt: skip
    return out if out["per_lr"] else {}


def c7_readings(st: Study) -> Claim:
    p0, (p1, p2) = PAPER_ALPHA["init"], PAPER_ALPHA["final_range"]
    c = Claim("C7", "the paper's open readings; α over training", f"not compared in the paper (main text α scale "
              f"0.01, Table F.2 0.001); α rises from {p0} to {p1}–{p2} over training")  # fmt: skip
    runs = st.done("readings")
    rt = readings_table(runs) if not runs.empty else pd.DataFrame()
    al = alpha_per_lr(st)
    if rt.empty and not al:
        return c.missing("readings")
    rows = [[r.variant, r.reading, r.n_pairs, f"{r.diff:+.4f}", with_ci(100 * r.rel, 100 * r.rel_lo, 100 * r.rel_hi,
             2, " %"), f"**{r.verdict}**"] for r in rt.itertuples()]  # fmt: skip
    matter = [r.variant for r in rt.itertuples() if r.verdict == "matters"] if len(rt) else []
    parts, cells = [], []
    if len(rt):
        parts.append(f"{len(matter)} of {len(rt)} readings matter (t-interval excludes 0)"
                     + (f": {', '.join(matter)}" if matter else ""))  # fmt: skip
        cells += [f"{r.variant}: {with_ci(100 * r.rel, 100 * r.rel_lo, 100 * r.rel_hi, 2, ' %')}"
                  for r in rt.itertuples()]  # fmt: skip
    else:
        parts.append(f"readings {not_measured('readings')}")
    if al:
        best = min(al["per_lr"], key=lambda x: x["final_loss"])
        neg = [x["lr"] for x in al["per_lr"] if x["negative_from"] is not None]
        band = "inside" if p1 <= best["final"] <= p2 else "below" if best["final"] < p1 else "above"
        parts.append(
            f"α at the best LR ({num(best['lr'])}) ends at {best['final']:.3f}, {band} the paper's "
            f"{p1}–{p2}; α turns negative at LR " + (", ".join(num(x) for x in neg) if neg else "none")
        )
        cells.append("mean α final per LR: " + ", ".join(f"{num(x['lr'])}: {x['final']:.3f}" for x in al["per_lr"]))
    c.verdict = f"{len(matter)} of {len(rt)} matter" if len(rt) else UNDETERMINED
    c.why = "; ".join(parts)
    c.ours = "<br>".join(cells)
    c.scale = (f"{sizes_text(runs)}; {tokens_text(runs)}; {seeds_text(runs)} (t with n−1 dof: wide)" if len(runs)
               else "readings: —") + (f"; α: anGPT {al['size']} batch {al['batch_size']:g}, "
                                       f"{len(al['per_lr'])} LRs" if al else "")  # fmt: skip
    c.numbers = {"readings": rt.to_dict(orient="records"), "alpha_per_lr": al}
    c.figures = ["figures/study_c7_readings.png", "figures/study_c7_alpha_per_lr.png"]
    c.section = [
        "Each reading vs the default options, paired by seed: mean difference in final val loss and a 95 % "
        "Student-t interval over the seed pairs (3 seeds: 2 dof, t = 4.3, so only large effects show). 'matters' "
        "only when the interval excludes 0.",
        "",
        *(
            table(READINGS_HEADER, rows) + ["Figure: `figures/study_c7_readings.png`.", ""]
            if rows
            else [f"Readings {not_measured('readings')}.", ""]
        ),  # fmt: skip
        *_alpha_lines(al),
    ]
    return c


def _alpha_lines(al: dict) -> list[str]:
    if not al:
        return [f"α over training per LR: {not_measured('hp')} (anGPT LR scan at {ALPHA_SIZE} with α columns).",
                ""]  # fmt: skip
    rows = [[num(x["lr"]), x["seeds"], num(x["final_loss"], 4), f"{x['initial']:.3f}", f"{x['final']:.3f}",
             f"{x['min']:.3f}", "—" if x["negative_from"] is None else human(x["negative_from"])]
            for x in al["per_lr"]]  # fmt: skip
    return [
        f"### α over training per LR (anGPT {al['size']}, batch {al['batch_size']:g})",
        "",
        "Mean over layers of the effective α_A and α_M (`alpha_a_<i>`, `alpha_m_<i>`), seeds averaged.",
        "",
        *table(ALPHA_HEADER, rows),
        "Figure: `figures/study_c7_alpha_per_lr.png`.",
        "",
    ]
