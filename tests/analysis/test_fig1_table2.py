"""Fig. 1 and the Table 2 figure read the way a reader of the paper expects: one y-axis shared by the row (log only
when the norms span decades) with plain tick labels and the step-0 profile; overhead bars with IQR error bars,
labelled by device/size/mode rather than by file name."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from matplotlib.container import ErrorbarContainer

from ant.analysis import fig1_residual_norms as fig1
from ant.analysis import table2_overhead as table2
from ant.analysis.common import Context
from ant.laws.synthetic import SynthLaw, write_run

ROOT = Path(__file__).resolve().parents[2]


def captured(ctx: Context) -> list:
    """Keep the figures a plot() would save (and close), to look at their axes."""
    figs: list = []
    ctx.save_figure = lambda fig, name: figs.append(fig)  # type: ignore[method-assign]
    return figs


def tick_labels(ax) -> list[str]:
    ax.figure.canvas.draw()
    return [t.get_text() for t in ax.get_yticklabels() if t.get_text()]


def test_fig1_one_log_axis_per_row_with_plain_labels(synth_results):
    ctx = Context(synth_results)
    numbers = fig1.compute(ctx)
    per = numbers["per_arch"]
    assert set(per) == {"gptplus", "ngpt", "angpt"}  # nGPT is shown when present
    for d in per.values():  # the first logged row: the depth profile before (most of) training
        assert len(d["initial_norm_per_layer"]) == len(d["final_norm_per_layer"])
        assert d["initial_tokens"] < d["tokens"]
    assert per["gptplus"]["last_over_first"] > per["angpt"]["last_over_first"] > per["ngpt"]["last_over_first"]
    figs = captured(ctx)
    fig1.plot(ctx, numbers)
    axes = figs[0].axes[:4]  # three architectures + the depth profile (the colour bar comes after)
    assert {ax.get_ylim() for ax in axes} == {axes[0].get_ylim()}
    assert all(ax.get_yscale() == "log" for ax in axes)  # GPT+ spans 1 to ~30 here
    labels = tick_labels(axes[0])
    assert "1" in labels and not any("$" in t or "10^" in t for t in labels)
    legend = [t.get_text() for t in axes[3].get_legend().get_texts()]
    assert any("tokens" in t or "step 0" in t for t in legend) and any(t.endswith("end") for t in legend)


def test_fig1_narrow_range_is_linear_without_offset(tmp_path):
    runs = tmp_path / "results" / "runs"
    for arch, growth in (("angpt", 0.05), ("ngpt", 0.0)):  # norms within 1.0-1.25: no decade to show
        write_run(runs, SynthLaw(resid_growth=growth), arch=arch, size="tiny3", num_params=2e6, tokens=40_000_000,
                  batch_size=8, lr=1e-3)  # fmt: skip
    ctx = Context(tmp_path / "results")
    numbers = fig1.compute(ctx)
    figs = captured(ctx)
    fig1.plot(ctx, numbers)
    axes = figs[0].axes[:3]
    assert all(ax.get_yscale() == "linear" for ax in axes)
    lo, hi = axes[0].get_ylim()
    assert 0.9 < lo < 1.0 and 1.25 < hi < 1.35  # the data's range, not a zoom that makes 1.0-1.25 look dramatic
    assert tick_labels(axes[0]) and axes[0].yaxis.get_offset_text().get_text() == ""


@pytest.fixture
def bench_results(tmp_path) -> Path:
    """Two measured CPU benchmark reports as `ant bench` writes them (with IQRs), one of them twice."""
    bench = tmp_path / "results" / "bench"
    bench.mkdir(parents=True)
    for name in ("bench-cpu-2026-11-28-quiet-tiny3-compiled.json", "bench-cpu-2026-11-28-quiet-tiny4-eager.json"):
        shutil.copy(ROOT / "results" / "bench" / name, bench / name)
    shutil.copy(bench / "bench-cpu-2026-11-28-quiet-tiny3-compiled.json", bench / "copy-of-tiny3.json")
    return tmp_path / "results"


def test_table2_labels_and_iqr_error_bars(bench_results):
    ctx = Context(bench_results)
    per = table2.compute(ctx)["per_file"]
    labels = {name: d["label"] for name, d in per.items()}
    assert labels["bench-cpu-2026-11-28-quiet-tiny4-eager"] == "cpu tiny4 eager"
    assert labels["bench-cpu-2026-11-28-quiet-tiny3-compiled"].startswith("cpu tiny3 compiled (")  # told apart
    raw = json.loads((bench_results / "bench" / "bench-cpu-2026-11-28-quiet-tiny4-eager.json").read_text())
    t = {r["arch"]: r for r in raw["results"]}
    rows = {r["arch"]: r for r in per["bench-cpu-2026-11-28-quiet-tiny4-eager"]["rows"]}
    ref, ang = t["gptplus"], t["angpt"]
    rel = lambda r: r["step_time_iqr_ms"] / 2 / r["step_time_ms"]  # noqa: E731
    ratio = ang["step_time_ms"] / ref["step_time_ms"]
    assert rows["angpt"]["rel_increase_pct"] == pytest.approx(100 * (ratio - 1))
    spread = 100 * ratio * math.hypot(rel(ang), rel(ref))  # half-IQRs in quadrature
    assert rows["angpt"]["rel_increase_halfiqr_pct"] == pytest.approx(spread)
    assert rows["gptplus"]["rel_increase_halfiqr_pct"] == pytest.approx(100 * rel(ref))
    figs = captured(ctx)
    table2.plot(ctx, table2.compute(ctx))
    ax = figs[0].axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert "cpu\ntiny4 eager" in ticks and all(t.startswith("cpu\n") for t in ticks)
    assert sum(isinstance(c, ErrorbarContainer) for c in ax.containers) == 3 * 3  # per architecture and file
    md = (bench_results / "figures" / "table2_overhead.md").read_text()
    assert "**cpu tiny4 eager**" in md and "±" in md


def test_table2_without_iqr_has_no_error_bars(synth_results):
    rows = table2.compute(Context(synth_results))["per_file"]["bench-cpu"]["rows"]
    assert all(math.isnan(r["rel_increase_halfiqr_pct"]) for r in rows)  # the file reports no IQR


def test_table2_passes_over_other_benchmarks_documents_and_names_a_broken_report(bench_results, capsys):
    """results/bench holds the study-mix and packed benchmarks' JSON beside `ant bench` reports: the table reads
    the reports alone without a line about the others, and still names a report it cannot read."""
    bench = bench_results / "bench"
    for name in ("study-mix-2026-12-07-quiet-compiled-k8.json", "packed-compiled-cpu-2026-12-07-quiet-seq32.json"):
        shutil.copy(ROOT / "results" / "bench" / name, bench / name)
    (bench / "bench-broken.json").write_text(json.dumps({"device": "cpu", "results": []}))
    per = table2.compute(Context(bench_results))["per_file"]
    assert not any(n.startswith(("study-mix", "packed")) for n in per) and "bench-broken" not in per
    out = capsys.readouterr().out
    assert "study-mix" not in out and "packed" not in out
    assert "skipping" in out and "bench-broken.json" in out and "no results list found" in out
