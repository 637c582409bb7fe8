"""Table 2: step-time overhead per architecture relative to GPT+, from the benchmark JSON(s) in results/bench/.

Paper claim (§5.3): 0.5B on 4x A100, seq 2048, batch 8, torch.compile: anGPT +2.75 %, nGPT +9.60 % over GPT+.
Writes results/figures/table2_overhead.md and a bar chart, one group per benchmark file (device).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from analysis.common import Context, run_script  # noqa: E402
from ant.laws.collect import atomic_write_text  # noqa: E402
from ant.laws.overhead import overhead_table  # noqa: E402
from ant.laws.plotting import color, label, placeholder, sort_archs  # noqa: E402

NAME = "table2_overhead"
HEADER = "| arch | step time (ms) | vs GPT+ | paper vs GPT+ | tokens/s | MFU |"


def compute(ctx: Context) -> dict:
    files = sorted((ctx.results / "bench").glob("*.json"))
    out = {}
    for f in files:
        try:
            t = overhead_table(f)
        except ValueError as e:
            print(f"skipping {f}: {e}")
            continue
        out[f.stem] = {"device": t.attrs["device"], "file": str(f), "rows": t.to_dict(orient="records")}
    if not out:
        ctx.no_data("table2 (overhead)", f"a benchmark JSON in {ctx.results / 'bench'} (make bench)")
    return {"per_file": out}


def markdown(numbers: dict) -> str:
    lines = []
    for name, d in numbers["per_file"].items():
        lines += [f"**{name}** (device: {d['device']})", "", HEADER, "|---|---|---|---|---|---|"]
        for r in d["rows"]:
            rel = "-" if r["rel_increase_pct"] is None else f"{r['rel_increase_pct']:+.2f}%"
            paper = "-" if r["paper_rel_increase_pct"] is None else f"{r['paper_rel_increase_pct']:+.2f}%"
            tps = "-" if r["tokens_per_s"] is None else f"{r['tokens_per_s']:.0f}"
            mfu = "-" if r["mfu"] is None else f"{100 * r['mfu']:.1f}%"
            lines.append(f"| {label(r['arch'])} | {r['step_time_ms']:.2f} | {rel} | {paper} | {tps} | {mfu} |")
        lines.append("")
    return "\n".join(lines)


def plot(ctx: Context, numbers: dict) -> None:
    from analysis.common import jsonable

    numbers = jsonable(numbers)
    per = numbers["per_file"]
    fig, ax = plt.subplots(figsize=(2.2 + 2.2 * max(1, len(per)), 3.4))
    if not per:
        placeholder(ax, "no benchmark JSON yet (make bench)")
    for i, d in enumerate(per.values()):
        rows = {r["arch"]: r for r in d["rows"]}
        archs = sort_archs(rows)
        for j, a in enumerate(archs):
            v = rows[a]["rel_increase_pct"]
            x = i + (j - (len(archs) - 1) / 2) * 0.25
            ax.bar(x, 0 if v is None else v, width=0.23, color=color(a), label=label(a) if i == 0 else None)
            p = rows[a]["paper_rel_increase_pct"]
            if p is not None and not np.isnan(p):
                ax.plot([x - 0.11, x + 0.11], [p, p], color="k", lw=1.5)
    ax.set_xticks(range(len(per)), [f"{n}\n({d['device']})" for n, d in per.items()], fontsize=8)
    ax.set(ylabel="step time vs GPT+ (%)", title="runtime overhead (black: paper, 4xA100)")
    ax.axhline(0, color="0.3", lw=0.8)
    if per:
        ax.legend()
    fig.tight_layout()
    ctx.save_figure(fig, NAME)
    atomic_write_text(markdown(numbers), ctx.figures / f"{NAME}.md")


if __name__ == "__main__":
    sys.exit(run_script(sys.modules[__name__]))
