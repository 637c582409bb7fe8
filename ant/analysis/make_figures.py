"""Every figure and table: runs each analysis script of ant.analysis.sections (numbers to results/fits/, PDF +
PNG to results/figures/).

ant figures --results results
"""

from __future__ import annotations

import sys
from pathlib import Path

from ant.analysis import sections
from ant.analysis.common import Context, one_line_errors, parser, run_script, select_args


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    args = parser("make every figure").parse_args(argv)
    ctx = Context(Path(args.results), select=args.select)  # same default resolution as the scripts
    ctx.runs  # noqa: B018 (runs that must not be compared: refused once, here, before any figure is drawn)
    for m in sections.FIGURES:  # the sections' order: fit_residuals (fits/chinchilla.json) after chinchilla_fit
        print(f"== {m.NAME}")
        run_script(m, ["--results", args.results, *select_args(args)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
