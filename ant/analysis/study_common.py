"""What the study report's parts share (study_report.py): the study's committed tables and fits, one
`Claim` per headline row, verdict helpers and number formatting.

The study folder (study.py) holds results/study/<group>/runs.parquet and curves.parquet per group (main,
noise, wsd, readings), results/study/main/fits/*.json (fit_laws on the main group) and results/study/tuned.yaml.
Everything here reads those files only, and a missing file is an empty table or None, never an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from ant.analysis.common import Context, Section
from ant.analysis.study_tables import read_curves
from ant.laws.collect import completed
from ant.laws.plotting import label

# The study parts (study.py PARTS, in their order) whose runs a claim needs, as `--part` takes them.
PARTS_FOR = {"C1": "hp baselines speedup", "C2": "hp", "C3": "hp", "C4": "hp speedup compute", "C5": "noise",
             "C6": "wsd", "C7": "readings"}  # fmt: skip
AGREE, DISAGREE, UNDETERMINED, MIXED, MISSING = "agrees", "disagrees", "not determined", "mixed", "not measured yet"


def main_figure(section: Section) -> str:
    """A main-group section's figure, relative to the study folder: C1-C4 show the figures `ant study report`
    draws for results/study/main through ant.analysis.sections."""
    return f"main/figures/{section.name}.png"


def run_hint(part: str) -> str:
    return f"run `ant study run --part {part}`"


def not_measured(part: str) -> str:
    return f"not measured yet: {run_hint(part)}"


@dataclass
class Claim:
    """One row of the headline table plus its details section."""

    key: str  # "C1"
    title: str  # "convergence speedup (Fig. 3)"
    paper: str  # the paper's number(s), in words
    ours: str = "—"
    scale: str = "—"
    verdict: str = MISSING  # a short word: agrees / disagrees / not determined / mixed / holds / ...
    why: str = ""
    section: list[str] = field(default_factory=list)  # markdown lines below the headline table
    numbers: dict = field(default_factory=dict)  # everything measured, for fits/study.json
    figures: list[str] = field(default_factory=list)  # figure files (relative to the study folder)

    def missing(self, part: str, what: str = "") -> Claim:
        """No data for this claim: the row and the section say which command makes it."""
        self.verdict, self.why = MISSING, f"{what}{run_hint(part)}"
        self.ours = not_measured(part)
        self.section = [f"{what}{not_measured(part)}."]
        return self

    def to_dict(self) -> dict:
        return {"claim": self.key, "title": self.title, "paper": self.paper, "ours": self.ours, "scale": self.scale,
                "verdict": self.verdict, "why": self.why, "figures": self.figures, "numbers": self.numbers}  # fmt: skip


class Study:
    """The study folder's committed tables (read once each) and the main group's fits."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._tables: dict[tuple[str, str], pd.DataFrame] = {}

    def table(self, group: str, name: str) -> pd.DataFrame:
        key = (group, name)
        if key not in self._tables:
            p = self.root / group / f"{name}.parquet"
            self._tables[key] = pd.read_parquet(p) if p.is_file() else pd.DataFrame()
        return self._tables[key]

    def runs(self, group: str) -> pd.DataFrame:
        return self.table(group, "runs")

    def curves(self, group: str) -> pd.DataFrame:
        """The base curves file and its append-only shards as one table (study_tables), read once."""
        key = (group, "curves")
        if key not in self._tables:
            self._tables[key] = read_curves(self.root / group)
        return self._tables[key]

    def done(self, group: str) -> pd.DataFrame:
        return completed(self.runs(group))

    def fit(self, name: str) -> dict | None:
        """The main group's fits/NAME.json (a section's name: ant.analysis.sections), as `ant report` reads it."""
        return Context(self.root / "main").read_json(name)

    @property
    def tuned(self) -> dict:
        return self.tuned_of()

    def tuned_of(self, group: str = "") -> dict:
        """The tuned file of a group (`""`: the committed study's results/study/tuned.yaml)."""
        p = self.root / group / "tuned.yaml"
        return (yaml.safe_load(p.read_text()) or {}) if p.is_file() else {}

    def tuned_batch(self, arch: str, size: str) -> float | None:
        v = self.tuned.get(arch, {}).get(size, {}).get("batch_size")
        return None if v is None else float(v)


# ---------------------------------------------------------------------------------------------- verdicts
def combine(verdicts: list[str]) -> str:
    """One verdict from several (per size, per part): agreement only where nothing disagrees."""
    v = set(verdicts)
    if AGREE in v and DISAGREE in v:
        return MIXED
    if AGREE in v:
        return AGREE
    if DISAGREE in v:
        return DISAGREE
    return UNDETERMINED


def ci_relation(lo: float | None, hi: float | None, value: float) -> str:
    """Where a reference value lies against an interval: 'inside', 'above' (value > hi) or 'below'."""
    if lo is not None and value < lo:
        return "below"
    if hi is not None and value > hi:
        return "above"
    return "inside"


def vs_paper(lo: float | None, hi: float | None, paper: float) -> str:
    """'larger than the paper's 0.729' when the paper's number lies below our interval, 'smaller ...' above it,
    'consistent with ...' inside."""
    where = ci_relation(lo, hi, paper)
    word = {"below": "larger than", "above": "smaller than", "inside": "consistent with"}[where]
    return f"{word} the paper's {paper:g}"


def overlap(a: tuple, b: tuple) -> bool:
    """Do two intervals (lo, hi) overlap? None ends are unbounded."""
    alo, ahi = (-math.inf if a[0] is None else a[0]), (math.inf if a[1] is None else a[1])
    blo, bhi = (-math.inf if b[0] is None else b[0]), (math.inf if b[1] is None else b[1])
    return alo <= bhi and blo <= ahi


def t_interval(x, level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t interval of a sample; (mean, nan, nan) with fewer than 2 values."""
    from scipy import stats

    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan, math.nan
    m = float(x.mean())
    if x.size < 2:
        return m, math.nan, math.nan
    h = float(stats.t.ppf(0.5 + level / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
    return m, m - h, m + h


# ---------------------------------------------------------------------------------------------- formatting
def human(v: float | None) -> str:
    """49152 -> '49k', 1.2e6 -> '1.2M': counts of parameters and tokens as a reader says them."""
    if v is None or not math.isfinite(v):
        return "n/a"
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


def num(v: float | None, digits: int = 3) -> str:
    return "n/a" if v is None or (isinstance(v, float) and not math.isfinite(v)) else f"{v:.{digits}g}"


def with_ci(v: float | None, lo: float | None, hi: float | None, digits: int = 3, unit: str = "") -> str:
    """'1.42x [1.21, 1.66]'; an open end prints as ∞ / -∞, a missing interval is left out."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    s = f"{v:.{digits}g}{unit}"
    if lo is None and hi is None or (isinstance(lo, float) and math.isnan(lo)):
        return s
    lo_s = "-∞" if lo is None else f"{lo:.{digits}g}"
    hi_s = "∞" if hi is None else f"{hi:.{digits}g}"
    return f"{s} [{lo_s}, {hi_s}]"


def pct(v: float | None, digits: int = 2, sign: bool = True) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{100 * v:+.{digits}f} %" if sign else f"{100 * v:.{digits}f} %"


def sizes_text(runs: pd.DataFrame) -> str:
    """'tiny0–tiny3 (16.6k–295k parameters)' from a runs table."""
    if runs.empty:
        return "—"
    s = runs.groupby("size")["num_params"].first().sort_values()
    names = list(s.index)
    span = names[0] if len(names) == 1 else f"{names[0]}–{names[-1]}"
    n = human(float(s.iloc[0])) if len(s) == 1 else f"{human(float(s.iloc[0]))}–{human(float(s.iloc[-1]))}"
    return f"{len(names)} size(s) {span} (N {n}, all parameters)"


def tokens_text(runs: pd.DataFrame) -> str:
    if runs.empty:
        return "—"
    t = runs["tokens"].astype(float)
    tpp = runs["tokens_per_param"].astype(float) if "tokens_per_param" in runs else t / runs["num_params"]
    per = f"{tpp.min():.3g}–{tpp.max():.3g}" if tpp.max() > 1.05 * tpp.min() else f"{tpp.mean():.3g}"
    if t.nunique() == 1:
        return f"{human(t.iloc[0])} tokens ({per} tokens/param)"
    return f"{human(t.min())}–{human(t.max())} tokens per run ({per} tokens/param)"


def seeds_text(runs: pd.DataFrame) -> str:
    if runs.empty or "seed" not in runs:
        return "—"
    seeds = sorted(int(s) for s in runs["seed"].dropna().unique())
    return f"{len(seeds)} seed(s) ({', '.join(map(str, seeds))})"


def archs_text(archs) -> str:
    return ", ".join(label(a) for a in archs)


def table(header: list[str], rows: list[list]) -> list[str]:
    """A markdown table; '|' inside a cell is escaped."""

    def row(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [row(header), row(["---"] * len(header)), *(row(r) for r in rows), ""]
