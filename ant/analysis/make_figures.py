"""Every figure and table: runs each analysis script (numbers to results/fits/, PDF + PNG to results/figures/).

ant figures --results results
"""

from __future__ import annotations

import sys
from pathlib import Path

from ant.analysis import fit_residuals
from ant.analysis.common import Context, parser, run_script
from ant.analysis.fit_laws import MODULES


def main(argv: list[str] | None = None) -> int:
    args = parser("make every figure").parse_args(argv)
    Context(Path(args.results))  # same default resolution as the scripts
    for m in (*MODULES, fit_residuals):  # fit_residuals reads fits/chinchilla.json (fit_laws.py)
        print(f"== {m.NAME}")
        run_script(m, ["--results", args.results])
    return 0


if __name__ == "__main__":
    sys.exit(main())
