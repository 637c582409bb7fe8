"""Study v2's report row "X: a preregistered extrapolation" (issue 24 item 6): the prediction that
`ant.analysis.study_v2` wrote and committed before the held-out runs, against those runs."""

from __future__ import annotations

import json


def extrapolation_claim(st):
    """The headline row "X: a preregistered extrapolation" (issue 24 item 6): the prediction file against the held-out
    tiny3 runs (mean over seeds), each error against its interval. Missing data say which parts make them."""
    from ant.analysis.study_common import Claim, pct, table  # late: the report row only

    c = Claim("X", "preregistered extrapolation to a held-out size (beyond the paper; OLMo's model ladder)",
              "— (the paper fits laws; it does not predict a held-out size)")  # fmt: skip
    path = st.root / "v2" / "prediction.json"
    if not path.is_file():
        return c.missing("v2-hp v2-hp2 v2-hp3 v2-predict", "no prediction yet: ")
    p = json.loads(path.read_text())
    runs = st.done("v2")
    held = runs[runs["size"].eq(p["held_out"])] if len(runs) else runs
    rows, cells, inside, measured = [], [], [], {}
    for arch, d in p["per_arch"].items():
        lo, hi = d["loss"]["interval"]
        g = held[(held["arch"] == arch) & held["lr"].round(12).eq(round(d["lr"], 12))
                 & held["batch_size"].eq(d["batch_size"])] if len(held) else held  # fmt: skip
        meas = float(g["final_val_loss"].mean()) if len(g) else None
        err = None if meas is None else d["loss"]["value"] / meas - 1
        ok = None if meas is None else lo <= meas <= hi
        inside.append(ok)
        measured[arch] = meas
        rows.append([arch, f"{d['loss']['value']:.4f} [{lo:.4f}, {hi:.4f}]", f"{d['lr']:.3g}", d["batch_size"],
                     "—" if meas is None else f"{meas:.4f} ({len(g)} seeds)", pct(err),
                     "—" if ok is None else ("inside" if ok else "outside")])  # fmt: skip
        cells.append(f"{arch}: predicted {d['loss']['value']:.4f} [{lo:.4f}, {hi:.4f}]"
                     + ("" if meas is None else f", measured {meas:.4f} ({pct(err)})"))  # fmt: skip
    gap, gap_ok = p.get("gap_angpt_minus_gptplus"), None
    if gap and None not in (measured.get("angpt"), measured.get("gptplus")):
        m_gap, (glo, ghi) = measured["angpt"] - measured["gptplus"], gap["interval"]
        gap_ok = glo <= m_gap <= ghi
        rows.append(["gap anGPT − GPT+", f"{gap['value']:+.4f} [{glo:+.4f}, {ghi:+.4f}]", "", "", f"{m_gap:+.4f}",
                     f"{gap['value'] - m_gap:+.4f} (absolute)", "inside" if gap_ok else "outside"])  # fmt: skip
        cells.append(f"gap anGPT − GPT+: predicted {gap['value']:+.4f} [{glo:+.4f}, {ghi:+.4f}], measured {m_gap:+.4f}")
    c.ours = "<br>".join(cells)
    c.scale = (f"fit on {', '.join(p['fit_sizes'])} at {p['tokens_per_param']} tokens/param; held out "
               f"{p['held_out']}; prediction from commit {p['fitting_code_commit'][:12]}")  # fmt: skip
    if any(v is None for v in inside):
        c.verdict, c.why = "predicted, not yet measured", "run `ant study run --part v2-heldout` (after committing)"
    else:
        k = sum(inside)
        c.verdict = "within its interval" if k == len(inside) else "outside its interval"
        c.why = f"{k} of {len(inside)} held-out losses inside their 95 % prediction intervals"
        if gap_ok is not None:
            c.why += f"; the anGPT − GPT+ gap {'inside' if gap_ok else 'outside'} its interval"
        # an interval this wide is a weak test: say how wide beside how far off the point predictions were
        half = max((d["loss"]["interval"][1] - d["loss"]["interval"][0]) / 2 / d["loss"]["value"]
                   for d in p["per_arch"].values())  # fmt: skip
        errs = [abs(d["loss"]["value"] / measured[a] - 1) for a, d in p["per_arch"].items()]
        off = f"{100 * min(errs):.1f}–{100 * max(errs):.1f} %"
        c.why += f" (intervals up to ±{100 * half:.0f} % wide; point predictions {off} off)"
    c.numbers = {"prediction": p}
    c.section = [
        f"Written before the held-out runs by `ant study run --part v2-predict` ({path.name}; the commit that adds it "
        "precedes the commit of the held-out runs' data in `git log`); `ant.analysis.study_v2` says how.",
        "",
        *table(
            [
                "arch",
                "predicted loss [95 % PI]",
                "LR",
                "batch",
                "measured",
                "error (predicted/measured − 1)",
                "vs interval",
            ],
            rows,
        ),
    ]
    return c
