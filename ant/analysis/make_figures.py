"""Every figure and table: runs each analysis script (numbers to results/fits/, PDF + PNG to results/figures/).

ant figures --results results
"""

from __future__ import annotations

import sys
from pathlib import Path

from ant.analysis import fit_residuals
from ant.analysis.common import Context, one_line_errors, parser, run_script, select_args
from ant.analysis.fit_laws import MODULES


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    args = parser("make every figure").parse_args(argv)
    ctx = Context(Path(args.results), select=args.select)  # same default resolution as the scripts
    ctx.runs  # noqa: B018 (runs that must not be compared: refused once, here, before any figure is drawn)
    for m in (*MODULES, fit_residuals):  # fit_residuals reads fits/chinchilla.json (fit_laws.py)
        print(f"== {m.NAME}")
        run_script(m, ["--results", args.results, *select_args(args)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
