"""The one list of analysis sections (ant.analysis.sections): every module that declares a SECTION is on it, and
one registration reaches `ant fit`, `ant figures` and `ant report` alike (a toy section, no other edit)."""

from __future__ import annotations

import re
import types
from pathlib import Path

import matplotlib.pyplot as plt

from ant.analysis import fit_laws, make_figures, report, sections
from ant.analysis.common import Context, Section

ANALYSIS = Path(sections.__file__).parent


def test_every_module_with_a_section_is_listed_once_under_its_own_name():
    declared = sorted(p.stem for p in ANALYSIS.glob("*.py") if re.search(r"^SECTION = ", p.read_text(), re.M))
    assert sorted(sections.NAMES) == declared  # a section left off the list would be silently skipped
    assert len({s.name for s in sections.SECTIONS}) == len(sections.SECTIONS)
    for m in sections.MODULES:
        assert m.SECTION.name == m.NAME, m.__name__
        for name in m.SECTION.report_reads if m.SECTION.report else ():  # a report reads fits `ant fit` writes
            assert name in {s.name for s in sections.FITTED}, (m.NAME, name)


def test_the_report_keeps_its_section_order():
    # REPORT.md's order (the committed study reports are regenerated identical): Fig. 2, G.1, 3, Table 2, Fig. 4,
    # Chinchilla, Fig. 1 with alpha
    reported = [s.name for s in sections.SECTIONS if s.report is not None]
    assert reported == ["fig2_hp_trends", "figG1_lr_sensitivity", "fig3_speedup", "table2_overhead",
                        "fig4_compute_scaling", "chinchilla", "fig1_residual_norms"]  # fmt: skip


def _toy_module() -> types.ModuleType:
    """A figure module as a contributor writes one: NAME, compute, plot, its report lines, SECTION."""
    toy = types.ModuleType("toy_runs_per_arch", "Toy: completed runs per architecture.")

    def compute(ctx: Context) -> dict:
        return {"per_arch": {a: int(n) for a, n in ctx.done["arch"].value_counts().items()}}

    def plot(ctx: Context, numbers: dict) -> None:
        fig, ax = plt.subplots()
        ax.bar(list(numbers["per_arch"]), list(numbers["per_arch"].values()))
        ctx.save_figure(fig, toy.NAME)

    def lines(f: dict) -> list[str]:
        return ["## Toy: runs per architecture", "", *(f"- {a}: {n}" for a, n in sorted(f["per_arch"].items())), ""]

    toy.NAME, toy.compute, toy.plot = "toy_runs_per_arch", compute, plot
    toy.SECTION = Section(toy.NAME, "completed runs per architecture", compute, plot, report=lines)
    return toy


def test_one_registration_reaches_fit_figures_and_report(results_copy, monkeypatch):
    toy = _toy_module()
    modules = (*sections.MODULES, toy)
    registry = {"MODULES": modules, "SECTIONS": tuple(m.SECTION for m in modules)}
    registry["FITTED"] = tuple(s for s in registry["SECTIONS"] if not s.after_fits)
    registry["FIGURES"] = tuple(m for m in modules if m.SECTION.plot is not None)
    # only the toy's numbers are computed here (the real sections' fits are test_scripts.py's business): every
    # other fitted section is replaced by an empty compute under its own name
    stub = {s.name: Section(s.name, s.fits, lambda ctx: {}, report=s.report, reads=s.reads) for s in registry["FITTED"]}
    registry["FITTED"] = tuple(stub.get(s.name, s) if s is not toy.SECTION else s for s in registry["FITTED"])
    registry["SECTIONS"] = tuple(stub.get(s.name, s) if s is not toy.SECTION else s for s in registry["SECTIONS"])
    registry["FIGURES"] = (toy,)
    for k, v in registry.items():
        monkeypatch.setattr(sections, k, v)
    args = ["--results", str(results_copy)]
    assert fit_laws.main([*args, "--no-reference", "--boot", "0", "--workers", "1"]) == 0
    assert (results_copy / "fits" / "toy_runs_per_arch.json").is_file()
    assert make_figures.main(args) == 0
    assert (results_copy / "figures" / "toy_runs_per_arch.png").is_file()
    assert report.main(args) == 0
    text = (results_copy / "REPORT.md").read_text()
    n_angpt = int(Context(results_copy).done["arch"].eq("angpt").sum())
    assert f"## Toy: runs per architecture\n\n- angpt: {n_angpt}\n" in text
    assert text.index("## Residual norms (Fig. 1)") < text.index("## Toy")  # appended: the list's order
