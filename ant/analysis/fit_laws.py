"""All fits -> results/fits/*.json: the numbers of every section in ant.analysis.sections (each figure/table
script's, and Chinchilla approach 3 per architecture and on Hoffmann et al.'s Fig. 4 points: chinchilla_fit.py).

    ant fit --results results [--boot 200] [--workers 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

from ant.analysis import sections
from ant.analysis.common import Context, FitOptions, one_line_errors, parser
from ant.errors import int_in


@one_line_errors
def main(argv: list[str] | None = None) -> int:
    ap = parser("run every fit and write results/fits/*.json")
    ap.add_argument("--workers", type=int_in(1, 1024), default=2, help="processes for the bootstrap")
    ap.add_argument("--no-reference", action="store_true", help="skip the fit on Hoffmann et al.'s points")
    args = ap.parse_args(argv)
    options = FitOptions(boot=args.boot, workers=args.workers, reference=not args.no_reference)
    ctx = Context(Path(args.results), select=args.select, options=options)
    ctx.require_runs()  # and the runs are comparable (Context): nothing below writes before this
    runs = ctx.runs
    print(f"{len(runs)} runs in {ctx.results} ({len(ctx.done)} completed)")
    for section in sections.FITTED:  # in the report's order
        numbers = section.compute(ctx)
        numbers["missing"] = list(ctx.missing)
        print(f"wrote {ctx.save_json(section.name, numbers)}")
        ctx.missing.clear()
    return 0


if __name__ == "__main__":
    sys.exit(main())
