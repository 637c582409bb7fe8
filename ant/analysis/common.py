"""What every analysis script shares: arguments, loading results/ once, JSON/figure output, and the
"no data for panel X: need ..." messages that replace failures when a sweep has not produced that data yet.

Each script module defines `NAME`, `compute(ctx) -> dict` (numbers, written to results/fits/NAME.json),
`plot(ctx, numbers)` (PDF + PNG in results/figures/) and `SECTION` (a `Section`: what it fits, its figure, its
part of REPORT.md), listed once in ant.analysis.sections: fit_laws.py runs every compute, make_figures.py every
plot, report.py every report section, in that list's order.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ant.errors import ConfigError, int_in
from ant.fsio import atomic_write_text
from ant.laws.collect import completed, load
from ant.laws.comparable import check_comparable, select
from ant.laws.plotting import save_figure
from ant.runfolder import jsonable  # re-exported: analysis modules import it from here


def default_results() -> str:
    return os.environ.get("ANT_RESULTS", "results")


class _Parser(argparse.ArgumentParser):
    """Bad arguments are one line and exit code 2 (the `ant` contract), without argparse's usage block."""

    def error(self, message: str):
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def results_folder(text: str) -> str:
    """--results must name an existing folder: a typo must not create an empty one and report empty fits."""
    p = Path(text)
    if not p.is_dir():
        what = "is a file, not a folder" if p.exists() else "does not exist"
        raise argparse.ArgumentTypeError(f"results folder {text!r} {what} (run a sweep first, or give --results DIR)")
    return text


def parser(description: str) -> argparse.ArgumentParser:
    ap = _Parser(description=description)
    ap.add_argument("--results", type=results_folder, default=default_results(),
                    help="results folder (default: $ANT_RESULTS or results)")  # fmt: skip
    ap.add_argument("--select", action="append", default=[], metavar="KEY=VALUE",
                    help="only the runs with this tokenizer, vocab_size, corpus, data_sha256, val_tokens, seq_len "
                         "(or any runs-table column); repeatable")  # fmt: skip
    # every script takes it: figure 4 refits approach 3 with min(50, --boot) resamples whether `ant fit` or `ant
    # figures` computes it, so both write the same fits/fig4_compute_scaling.json for the same --boot
    ap.add_argument("--boot", type=int_in(0, 100_000), default=FitOptions.boot,
                    help="bootstrap resamples for the Chinchilla fits")  # fmt: skip
    return ap


def select_args(args: argparse.Namespace) -> list[str]:
    """--select (and --boot), as the scripts pass them on to each other (make_figures -> each script, report ->
    fit_laws)."""
    boot = ["--boot", str(args.boot)] if getattr(args, "boot", FitOptions.boot) != FitOptions.boot else []
    return [x for s in getattr(args, "select", []) for x in ("--select", s)] + boot


def one_line_errors(main):
    """Wrap a script's main(argv) -> int: a folder it cannot write (read-only, full, a file in the way) is one
    line on stderr and exit code 1, not a traceback."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except ConfigError as e:  # bad input found once the runs are read: a mixed folder, an empty one
            print(f"{_script(args, main)}: error: {e}", file=sys.stderr)
            return 2
        except OSError as e:
            where = f": {e.filename}" if e.filename else ""
            print(f"{_script(args, main)}: error: {e.strerror or e}{where}", file=sys.stderr)
            return 1

    return wrapped


def _script(args: tuple, main) -> str:
    """The command as the user ran it (`ant fit`, `python -m ant.analysis.x`); in-process (tests), the module whose
    main this is."""
    owner = args[0].__name__ if args and hasattr(args[0], "NAME") else main.__module__
    run_as = Path(sys.argv[0])
    by_name = run_as.parent.name == "analysis" or run_as.name.startswith("ant ")
    return run_as.name if by_name else f"{owner.rsplit('.', 1)[-1]}.py"


@dataclass(frozen=True)
class FitOptions:
    """The settings of the fits that take any (the Chinchilla fit): `ant fit`'s flags."""

    boot: int = 200  # bootstrap resamples
    workers: int = 2  # processes for the bootstrap
    reference: bool = True  # also fit Hoffmann et al.'s points (the check that the fitter reproduces Epoch's refit)


@dataclass
class Context:
    results: Path
    select: list[str] = field(default_factory=list)  # --select KEY=VALUE (ant.laws.comparable)
    options: FitOptions = field(default_factory=FitOptions)
    _runs: pd.DataFrame | None = None
    _curves: pd.DataFrame | None = None
    missing: list[str] = field(default_factory=list)

    def _load(self) -> None:
        if self._runs is None:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                self._runs, self._curves = load(self.results, check=self._check)
            for w in caught:
                print(f"warning: {w.message}")
            # refused before anything is computed or written: a comparison across tokenizers (or corpora, ...)
            self._runs = select(self._runs, self.select)
            if self.select and self._curves is not None and "run_id" in self._curves:
                self._curves = self._curves[self._curves["run_id"].isin(self._runs["run_id"])]
            check_comparable(self._runs, str(self.results))

    def _check(self, runs: pd.DataFrame) -> None:
        check_comparable(select(runs, self.select), str(self.results))

    def require_runs(self) -> None:
        """No run at all (no run folders, no runs.parquet): the wrong folder, refused before fits/ is written."""
        if self.runs.empty:
            where = f"{self.results}/runs/<run_id>/config.yaml or {self.results}/runs.parquet"
            raise ConfigError("--results", f"no runs in {self.results} (looked for {where})", "a folder a sweep wrote")

    @property
    def runs(self) -> pd.DataFrame:
        self._load()
        return self._runs

    @property
    def curves(self) -> pd.DataFrame:
        self._load()
        return self._curves

    @property
    def done(self) -> pd.DataFrame:
        return completed(self.runs)

    @property
    def figures(self) -> Path:
        return self.results / "figures"

    @property
    def fits(self) -> Path:
        return self.results / "fits"

    def no_data(self, panel: str, need: str) -> None:
        msg = f"no data for panel {panel}: need {need}"
        self.missing.append(msg)
        print(msg)

    def save_json(self, name: str, obj: dict) -> Path:
        path = self.fits / f"{name}.json"
        atomic_write_text(path, json.dumps(jsonable(obj), indent=1, allow_nan=False) + "\n")
        return path

    def read_json(self, name: str) -> dict | None:
        path = self.fits / f"{name}.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def save_figure(self, fig, name: str) -> None:
        for p in save_figure(fig, self.figures, name):
            print(f"wrote {p}")


@dataclass(frozen=True)
class Section:
    """One analysis module's share of the suite, registered once in ant.analysis.sections.SECTIONS (whose order is
    REPORT.md's): its fit, its figure and its part of the report travel together, so that adding a figure touches
    its own module and one line of that list."""

    name: str  # fits/NAME.json, figures/NAME.{png,pdf}
    fits: str  # what it fits, in a few words (docs/design.md's table)
    compute: Callable[[Context], dict]  # numbers -> fits/NAME.json
    plot: Callable[[Context, dict], None] | None = None  # None: numbers only (no figure)
    # REPORT.md lines from the fits named in `reads` (default: its own), one dict each in that order; None: no
    # section of its own (another section reports its numbers, or it is a figure only)
    report: Callable[..., list[str]] | None = None
    reads: tuple[str, ...] = ()
    # computed when the figures are drawn, not by `ant fit`: it reads another section's fits (fit_residuals)
    after_fits: bool = False

    @property
    def report_reads(self) -> tuple[str, ...]:
        return self.reads or (self.name,)


@one_line_errors
def run_script(module, argv: list[str] | None = None, *, do_plot: bool = True) -> int:
    """Standard main(): compute, save numbers, plot. Missing data is reported, never an error."""
    doc = (module.__doc__ or module.NAME).strip().splitlines()[0]
    args = parser(doc).parse_args(argv)
    ctx = Context(Path(args.results), select=args.select, options=FitOptions(boot=args.boot))
    numbers = module.compute(ctx)
    numbers["missing"] = list(ctx.missing)
    print(f"wrote {ctx.save_json(module.NAME, numbers)}")
    if do_plot and has_data(numbers):
        module.plot(ctx, numbers)
    elif do_plot:
        # A figure the data cannot feed is not drawn (an empty frame reads as a result); an old one is removed.
        for ext in ("png", "pdf"):
            (ctx.figures / f"{module.NAME}.{ext}").unlink(missing_ok=True)
        print(f"not drawn: {module.NAME} ({'; '.join(numbers['missing']) or 'no data'})")
    return 0


def has_data(numbers: dict) -> bool:
    """Whether a compute() result has anything to draw: one of its per_* tables (per_arch, per_size, per_file,
    per_fit) is non-empty."""
    tables = [v for k, v in numbers.items() if k.startswith("per_")]
    return not tables or any(bool(v) for v in tables)


def budget_key(tokens: pd.Series, rel: float = 0.02) -> pd.Series:
    """One key per requested token budget: a run trains whole optimizer steps, so one budget asked for at batch
    1, 2 and 4 ends at token counts a fraction of a percent apart. Counts within `rel` of the smallest count of
    their cluster share its value."""
    key, start = {}, None
    for t in sorted(tokens.unique()):
        if start is None or t > start * (1 + rel):
            start = t
        key[t] = start
    return tokens.map(key)


def best_hp_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (arch, size, requested budget), the runs of the (lr, batch) with the lowest mean final loss over seeds:
    a budget sweep compares tuned runs, not the off-optimum points of an HP sweep at the same budget (nor the
    same budget at other batch sizes, whose token counts differ only by step rounding: budget_key)."""
    if runs.empty:
        return runs
    runs = runs.assign(_budget=budget_key(runs["tokens"]))
    keys = ["arch", "num_params", "_budget"]
    m = runs.groupby([*keys, "lr", "batch_size"], as_index=False)["final_val_loss"].mean()
    best = m.loc[m.groupby(keys)["final_val_loss"].idxmin(), [*keys, "lr", "batch_size"]]
    return runs.merge(best, on=[*keys, "lr", "batch_size"]).drop(columns="_budget")


def largest_run_curves(curves: pd.DataFrame, cols: list[str]) -> dict[str, pd.DataFrame]:
    """arch -> curve rows (those with any of `cols` measured) of its largest, longest run, lowest seed first."""
    if curves.empty or not cols:
        return {}
    c = curves[curves[cols].notna().any(axis=1)]
    out = {}
    for arch, g in c.groupby("arch"):
        last = g.sort_values("tokens").groupby("run_id").tail(1)
        best = last.sort_values(["num_params", "tokens", "seed"], ascending=[False, False, True]).iloc[0]
        out[arch] = g[g["run_id"] == best["run_id"]].sort_values("tokens")
    return out


def md_row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def md_header(cols) -> list[str]:
    return [md_row(cols), md_row(["---"] * len(cols))]


def md_sizes(xs) -> str:
    return ", ".join(f"{x:.3g}" for x in xs) if xs else "-"


def fmt_ci(v, ci, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    if not ci or ci[0] is None:
        return f"{v:.{digits}g}"
    return f"{v:.{digits}g} [{ci[0]:.{digits}g}, {ci[1]:.{digits}g}]"
