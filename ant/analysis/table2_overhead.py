"""Table 2: step-time overhead per architecture relative to GPT+, from the benchmark JSON(s) in results/bench/.

Paper claim (§5.3): 0.5B on 4x A100, seq 2048, batch 8, torch.compile: anGPT +2.75 %, nGPT +9.60 % over GPT+.
Writes results/figures/table2_overhead.md and a bar chart, one group per benchmark file, labelled by what was
measured (device, model size, eager/compiled) rather than by file name.

Error bars: the benchmark reports the median step time and the IQR of single-step times per architecture. A bar
spans +-(IQR/2)/median of the architecture's steps combined in quadrature with GPT+'s (the ratio's spread when both
step times vary by half their IQR); GPT+'s own bar is its own (IQR/2)/median. This is the spread of single steps,
wider than the uncertainty of the median itself, so bars that do not overlap 0 are a clear difference.
"""

from __future__ import annotations

import math
import sys

import matplotlib.pyplot as plt
import numpy as np

from ant.analysis.common import Context, Section, jsonable, run_script
from ant.errors import read_user_file
from ant.fsio import atomic_write_text
from ant.laws.overhead import overhead_table
from ant.laws.plotting import color, label, placeholder, sort_archs

NAME = "table2_overhead"
REF = "gptplus"
HEADER = "| arch | median step time (ms) | IQR (ms) | vs GPT+ (± IQR/2) | paper vs GPT+ | tokens/s | MFU |"


def bench_label(report: dict, stem: str) -> str:
    """'cpu tiny4 compiled', 'H200 0.5B compiled bf16': what was measured, from the report itself."""
    device = str(report.get("device", "unknown")).split(" (")[0].removeprefix("NVIDIA ").strip() or "unknown"
    cfg = report.get("config") if isinstance(report.get("config"), dict) else {}
    parts = [device]
    if cfg.get("size"):
        parts.append(str(cfg["size"]))
    if "compile" in cfg:
        parts.append("compiled" if cfg["compile"] else "eager")
    if cfg.get("dtype") and cfg["dtype"] != "fp32":
        parts.append(str(cfg["dtype"]))
    if report.get("partial"):
        parts.append("(partial)")
    return " ".join(parts) if len(parts) > 1 or device != "unknown" else stem


def _half_iqr_pct(rows: list[dict]) -> dict[str, float]:
    """arch -> +- percentage points of the overhead from the step-time IQRs (NaN where an IQR is missing)."""
    by = {r["arch"]: r for r in rows}
    ref = by.get(REF)

    def rel(r: dict) -> float:
        t, iqr = r.get("step_time_ms"), r.get("step_time_iqr_ms")
        ok = t is not None and iqr is not None and not math.isnan(t) and not math.isnan(iqr) and t > 0
        return 0.5 * iqr / t if ok else math.nan

    out = {}
    for a, r in by.items():
        if ref is None:
            out[a] = math.nan
        elif a == REF:
            out[a] = 100 * rel(r)
        else:
            ratio = r["step_time_ms"] / ref["step_time_ms"]
            out[a] = 100 * ratio * math.hypot(rel(r), rel(ref))
    return out


def compute(ctx: Context) -> dict:
    files = sorted((ctx.results / "bench").glob("*.json"))
    out = {}
    for f in files:
        try:
            raw = read_user_file(f, "bench_json", "json")
            # results/bench also holds other benchmarks' documents (study mix, packed, orchestrator timings):
            # not `ant bench` step-time reports (a results/runs list), so passed over quietly
            if isinstance(raw, dict) and "results" not in raw and "runs" not in raw:
                continue
            t = overhead_table(raw)
        except ValueError as e:  # a report that fails to parse is still named
            print(f"skipping {f}: {e}")
            continue
        rows = t.to_dict(orient="records")
        err = _half_iqr_pct(rows)
        for r in rows:
            r["rel_increase_halfiqr_pct"] = err[r["arch"]]
        out[f.stem] = {"device": t.attrs["device"], "label": bench_label(raw if isinstance(raw, dict) else {}, f.stem),
                       "file": str(f), "rows": rows}  # fmt: skip
    labels = [d["label"] for d in out.values()]
    for name, d in out.items():  # two files measuring the same thing: tell them apart by name
        if labels.count(d["label"]) > 1:
            d["label"] = f"{d['label']} ({name})"
    if not out:
        ctx.no_data("table2 (overhead)", f"a benchmark JSON in {ctx.results / 'bench'} (make bench)")
    return {"per_file": out}


def markdown(numbers: dict) -> str:
    lines = []
    for name, d in numbers["per_file"].items():
        lines += [f"**{d.get('label', name)}** (device: {d['device']}; file: {name})", "", HEADER,
                  "|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in d["rows"]:
            rel = "-" if r["rel_increase_pct"] is None else f"{r['rel_increase_pct']:+.2f}%"
            if rel != "-" and r.get("rel_increase_halfiqr_pct") is not None:
                rel += f" ± {r['rel_increase_halfiqr_pct']:.2f}"
            paper = "-" if r["paper_rel_increase_pct"] is None else f"{r['paper_rel_increase_pct']:+.2f}%"
            tps = "-" if r["tokens_per_s"] is None else f"{r['tokens_per_s']:.0f}"
            mfu = "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
            iqr = "-" if r.get("step_time_iqr_ms") is None else f"{r['step_time_iqr_ms']:.2f}"
            lines.append(f"| {label(r['arch'])} | {r['step_time_ms']:.2f} | {iqr} | {rel} | {paper} | {tps} | {mfu} |")
        lines.append("")
    return "\n".join(lines)


def plot(ctx: Context, numbers: dict) -> None:
    numbers = jsonable(numbers)
    per = numbers["per_file"]
    fig, ax = plt.subplots(figsize=(3.2 + 1.9 * max(1, len(per)), 3.6))
    if not per:
        placeholder(ax, "no benchmark JSON yet (make bench)")
    seen: set[str] = set()
    for i, d in enumerate(per.values()):
        rows = {r["arch"]: r for r in d["rows"]}
        archs = sort_archs(rows)
        for j, a in enumerate(archs):
            v, err = rows[a]["rel_increase_pct"], rows[a].get("rel_increase_halfiqr_pct")
            x = i + (j - (len(archs) - 1) / 2) * 0.25
            if v is not None:  # no GPT+ row in this file: nothing to compare against
                ax.bar(x, v, width=0.23, color=color(a), label=None if a in seen else label(a))
                seen.add(a)
            if v is not None and err is not None:
                ax.errorbar(x, v, yerr=err, color="0.15", lw=1, capsize=3)
            p = rows[a]["paper_rel_increase_pct"]
            if p is not None and not np.isnan(p):
                ax.plot([x - 0.11, x + 0.11], [p, p], color="k", lw=1.5,
                        label=None if "paper" in seen else "paper (0.5B, 4x A100)")  # fmt: skip
                seen.add("paper")
    ax.set_xticks(range(len(per)), [d.get("label", n).replace(" ", "\n", 1) for n, d in per.items()], fontsize=8)
    ax.set(ylabel=f"median step time vs {label(REF)} (%)",
           title="runtime overhead (error bars: ± IQR/2 of single-step times)")  # fmt: skip
    ax.axhline(0, color="0.3", lw=0.8)
    if per:
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    ctx.save_figure(fig, NAME)
    atomic_write_text(ctx.figures / f"{NAME}.md", markdown(numbers))


# ---------------------------------------------------------------------------------------------- REPORT.md


def overhead_section(f: dict) -> list[str]:
    out = ["## Runtime overhead (Table 2, §5.3)", ""]
    per = f.get("per_file", {})
    if not per:
        return [*out, "Not measured: " + ("; ".join(f.get("missing", [])) or "no benchmark JSON."), ""]
    out += [
        "| benchmark (device) | arch | step time (ms) | measured vs GPT+ | paper vs GPT+ |",
        "|---|---|---|---|---|",
    ]
    for name, d in per.items():
        for r in d["rows"]:
            rel = "-" if r["rel_increase_pct"] is None else f"{r['rel_increase_pct']:+.2f}%"
            pap = "-" if r["paper_rel_increase_pct"] is None else f"{r['paper_rel_increase_pct']:+.2f}%"
            out.append(f"| {name} ({d['device']}) | {label(r['arch'])} | {r['step_time_ms']:.2f} | {rel} | {pap} |")
    out += ["", "The paper measured 0.5B on 4x A100 with torch.compile; small models on other devices are dominated by "
            "per-op overheads, so only the ordering (GPT+ <= anGPT < nGPT) is comparable.", ""]  # fmt: skip
    return out


SECTION = Section(NAME, "step-time overhead vs GPT+ (benchmark JSONs)", compute, plot, report=overhead_section)


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
