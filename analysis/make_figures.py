"""Every figure and table: runs each analysis script (numbers to results/fits/, PDF + PNG to results/figures/).

python analysis/make_figures.py --results results
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from analysis import fit_residuals  # noqa: E402
from analysis.common import Context, parser, run_script  # noqa: E402
from analysis.fit_laws import MODULES  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    args = parser("make every figure").parse_args(argv)
    Context(Path(args.results))  # same default resolution as the scripts
    for m in (*MODULES, fit_residuals):  # fit_residuals reads fits/chinchilla.json (fit_laws.py)
        print(f"== {m.NAME}")
        run_script(m, ["--results", args.results])
    return 0


if __name__ == "__main__":
    sys.exit(main())
