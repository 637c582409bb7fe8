"""ant/analysis/ scripts on a synthetic results folder: outputs exist, numbers recover the synthetic truth, and an
empty folder gives 'no data for panel' messages instead of errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ant.analysis import fit_laws, make_figures, report, summary_table
from ant.analysis.sections import FIGURES
from ant.laws.synthetic import DEFAULT_LAWS
from tests.analysis.conftest import ANALYSIS_GROUP

ROOT = Path(__file__).resolve().parents[2]
pytestmark = ANALYSIS_GROUP  # one worker builds the shared fitted folder


@pytest.fixture
def made(fitted_results):
    """fit_laws + make_figures + report, once per session (tests/analysis/conftest.py)."""
    return fitted_results


def test_every_figure_and_fit_file_is_written(made):
    import matplotlib.image

    for m in [m for m in FIGURES if not m.SECTION.after_fits]:
        assert (made / "figures" / f"{m.NAME}.pdf").read_bytes()[:5] == b"%PDF-", m.NAME
        png = matplotlib.image.imread(made / "figures" / f"{m.NAME}.png")[..., :3]
        assert png.shape[0] >= 200 and png.shape[1] >= 300, (m.NAME, png.shape)
        # something is drawn (axes, curves, text), and not a solid block: the ink covers 1-60 % of the image
        ink = (png.mean(axis=-1) < 0.9).mean()
        assert 0.01 < ink < 0.6, (m.NAME, ink)
        d = json.loads((made / "fits" / f"{m.NAME}.json").read_text())
        assert isinstance(d["missing"], list)
    assert (made / "figures" / "table2_overhead.md").is_file()
    assert (made / "runs.parquet").is_file()


def test_numbers_recover_the_synthetic_truth(made):
    sp = json.loads((made / "fits" / "fig3_speedup.json").read_text())
    tiny4 = sp["per_size"]["tiny4"]["candidates"]
    truth = DEFAULT_LAWS["angpt"].speedup
    # 5 budgets, linear interpolation in log tokens of a convex curve: a few % of bias, never a wrong sign
    assert tiny4["angpt"]["mean_ratio"] == pytest.approx(truth, rel=0.05)
    assert tiny4["angpt"]["ci"][0] < tiny4["angpt"]["ci"][1]
    hp = json.loads((made / "fits" / "fig2_hp_trends.json").read_text())["per_arch"]
    regime = "20 tokens/param"  # the synthetic HP sweep's budget (SynthSuite)
    assert hp["angpt"][regime]["bs_fit"]["exponent"] > hp["gptplus"][regime]["bs_fit"]["exponent"]
    t2 = json.loads((made / "fits" / "table2_overhead.json").read_text())["per_file"]["bench-cpu"]["rows"]
    assert {r["arch"]: round(r["rel_increase_pct"], 6) for r in t2} == {"gptplus": 0, "angpt": 3.0, "ngpt": 10.0}
    ch = json.loads((made / "fits" / "chinchilla.json").read_text())["per_arch"]
    assert ch["gptplus"]["alpha"] == pytest.approx(DEFAULT_LAWS["gptplus"].alpha, rel=0.05)


def test_report_puts_claims_next_to_measurements(made):
    text = (made / "REPORT.md").read_text()
    for section in ("Hyper-parameter trends", "Convergence speedup", "Runtime overhead", "Compute scaling",
                    "Residual norms"):  # fmt: skip
        assert section in text
    assert "seeds" in text
    # the verdict sits on its claim's line, with the fitted exponents (the synthetic laws: anGPT's optimal batch
    # grows faster with N, see test_numbers_recover_the_synthetic_truth)
    hp = json.loads((made / "fits" / "fig2_hp_trends.json").read_text())["per_arch"]
    fa, fg = (hp[a]["20 tokens/param"]["bs_fit"]["exponent"] for a in ("angpt", "gptplus"))
    (line,) = [ln for ln in text.splitlines() if "anGPT's optimal batch grows faster with N" in ln]
    assert f"Measured {fa:.3f} vs {fg:.3f}: small scale **agrees**" in line, line


def test_empty_results_say_what_is_missing(tmp_path, capsys):
    """A results folder whose one run failed: every panel says what it needs (a folder with no run at all is
    refused instead, exit 2: tests/test_bad_inputs_hostile.py)."""
    from tests.test_bad_inputs_hostile import fake_run

    fake_run(tmp_path / "runs", "gptplus", 3.0)
    (summary,) = (tmp_path / "runs").glob("*/summary.json")
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "status": "failed", "final_val_loss": None}))
    assert fit_laws.main(["--results", str(tmp_path), "--no-reference"]) == 0
    assert make_figures.main(["--results", str(tmp_path)]) == 0
    assert report.main(["--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for panel in ("fig1", "fig2", "fig3", "fig4", "table2", "App. M"):
        assert f"no data for panel {panel}" in out
    assert "Not measured" in (tmp_path / "REPORT.md").read_text()
    assert not list((tmp_path / "figures").glob("*.png"))  # nothing to draw: no empty frames


def test_summary_table(made, capsys):
    assert summary_table.main(["--results", str(made)]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("angpt    tiny4")]
    assert any("±" in ln for ln in lines)  # the budget sweep has 2 seeds
    # the speedup with its interval, as the small sweep prints it (synthetic truth: anGPT 1.4x)
    [line] = [ln for ln in out.splitlines() if ln.strip().startswith("angpt at tiny4:")]
    value, lo, hi = (float(x) for x in line.split(":")[1].replace("x", " ").replace("[", " ").replace(",", " ")
                     .replace("]", " ").split()[:3])  # fmt: skip
    assert lo <= value <= hi and lo - 0.01 <= DEFAULT_LAWS["angpt"].speedup <= hi + 0.01  # printed to 2 decimals


def test_scripts_run_as_plain_commands(synth_results, tmp_path):
    """`python -m ant.analysis.x` from anywhere, not only as imported modules."""
    r = subprocess.run([sys.executable, "-m", "ant.analysis.table2_overhead", "--results", str(synth_results)],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout


def test_boot_reaches_figure_4_from_fit_and_figures(made):
    """`--boot` is every script's flag: figure 4's approach-3 refits follow it (at most 50) whether `ant fit` or
    `ant figures` wrote fits/fig4_compute_scaling.json last (the fixture ran both with --boot 5)."""
    from tests.analysis.conftest import FIT_ARGS

    fig4 = json.loads((made / "fits" / "fig4_compute_scaling.json").read_text())["per_arch"]
    assert fig4, "no architecture fitted"
    for arch, d in fig4.items():
        assert d["methods"]["chinchilla"]["fit"]["n_boot"] == int(FIT_ARGS[1]), arch
