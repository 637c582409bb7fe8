"""The one list of the suite's analysis sections, in REPORT.md's order: `ant fit` (fit_laws.py) computes each
section's numbers, `ant figures` (make_figures.py) draws each figure, `ant report` (report.py) writes each report
section, and the study report (study_claims.py) reads the same fits by the same names.

A section lives in its own module (`NAME`, `compute`, `plot`, the report lines, `SECTION = Section(...)`:
ant.analysis.common.Section); adding one is that module and its name on one line below.
"""

from __future__ import annotations

from importlib import import_module

# Imported by name so that a new section is one line here; order = REPORT.md's order (and `ant fit`'s).
NAMES = (
    "fig2_hp_trends",
    "figG1_lr_sensitivity",
    "fig3_speedup",
    "table2_overhead",
    "fig4_compute_scaling",
    "chinchilla_fit",
    "fit_residuals",
    "fig1_residual_norms",
    "alpha_over_training",
)
MODULES = tuple(import_module(f"ant.analysis.{n}") for n in NAMES)
SECTIONS = tuple(m.SECTION for m in MODULES)
FITTED = tuple(s for s in SECTIONS if not s.after_fits)  # what `ant fit` writes and `ant report` reads
FIGURES = tuple(m for m in MODULES if m.SECTION.plot is not None)  # what `ant figures` draws (run_script)
