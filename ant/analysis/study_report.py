"""results/study/REPORT.md, "The paper at 1/1000 scale" (issue 11): one headline row per claim C1-C7 (the
paper's number, ours with its interval, the scale, a plain verdict and why), a details section per claim naming
its figure, the figures of C5-C7 (results/study/figures/) and every number in results/study/fits/study.json.

    python -m ant.analysis.study_report --study results/study      # `ant study report` calls this

It reads committed tables only: results/study/<group>/runs.parquet and curves.parquet (groups main, noise, wsd,
readings), results/study/main/fits/*.json (fit_laws on the main group) and results/study/tuned.yaml. A claim
without data says "not measured yet: run `ant study run --part X`"; a claim whose analysis fails
says so in its row (and the report is still written) unless --strict, which re-raises (tests use it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

from ant.analysis.common import jsonable
from ant.analysis.study_claims import c1_speedup, c2_lr_sensitivity, c3_hp_scaling, c4_compute_scaling
from ant.analysis.study_common import UNDETERMINED, Claim, Study, table
from ant.analysis.study_figures import draw_all
from ant.analysis.study_measures import c5_noise_scale, c6_wsd
from ant.analysis.study_readings import c7_readings
from ant.analysis.study_v2_claims import c1_v2, c3_v2, c4_v2
from ant.analysis.study_v2_extrapolation import extrapolation_claim
from ant.fsio import atomic_write_text

CLAIMS = (
    ("C1", c1_speedup),
    ("C2", c2_lr_sensitivity),
    ("C3", c3_hp_scaling),
    ("C4", c4_compute_scaling),
    ("C5", c5_noise_scale),
    ("C6", c6_wsd),
    ("C7", c7_readings),
    ("X", extrapolation_claim),  # study v2's preregistered extrapolation (issue 24)
)
GROUPS = ("main", "noise", "wsd", "readings", "v2")  # v2: issue 24's study
# Study v2's rows: where the v2 group has the runs, its row replaces the committed study's in the headline and the
# committed (v1) section follows the v2 one (study_v2_claims; None while v2 has no runs of that part).
V2_ROWS = {"C1": c1_v2, "C3": c3_v2, "C4": c4_v2}


def with_v2(key: str, v1: Claim, st: Study) -> Claim:
    fn = V2_ROWS.get(key)
    v2 = fn(st) if fn else None
    if v2 is None:
        return v1
    v2.section += ["", "### The committed study (v1: sequences of 128 bytes, 10 tokens/param)", "", *v1.section]
    v2.figures = [*v2.figures, *v1.figures]
    v2.numbers = {"v2": v2.numbers, "v1": v1.numbers}
    return v2


def build(st: Study, strict: bool = False) -> dict[str, Claim]:
    """Every claim; an analysis that raises becomes a 'not determined (analysis error)' row unless `strict`."""
    out = {}
    for key, fn in CLAIMS:
        try:
            out[key] = with_v2(key, fn(st), st)
        except Exception as e:  # one claim's failure must not hide the other six
            if strict:
                raise
            msg = f"analysis error: {type(e).__name__}: {e}"
            print(f"study report: {key}: {msg}", file=sys.stderr)
            out[key] = Claim(key, fn.__name__, "—", ours=msg, verdict=UNDETERMINED, why=msg, section=[msg + "."])
    return out


def data_lines(st: Study) -> list[str]:
    """What the report rests on: runs per group and the parts' measured wall times."""
    rows = []
    for g in GROUPS:
        r = st.runs(g)
        if r.empty:
            rows.append([g, 0, "—", "—", "—", "not measured yet"])
            continue
        st_ = r["status"].value_counts()
        rows.append([g, len(r), int(st_.get("completed", 0)), int(st_.get("diverged", 0)),
                     ", ".join(sorted(r["arch"].unique())), f"{len(st.curves(g))} curve rows"])  # fmt: skip
    lines = ["## Data", "", *table(["group", "runs", "completed", "diverged", "archs", "curves"], rows)]
    parts = st.root / "parts.json"
    if parts.is_file():
        log = json.loads(parts.read_text())
        prow = [[k, v.get("runs"), v.get("ran"), v.get("extensions", "—"), f"{v.get('est_wall_s', 0) / 60:.1f}",
                 f"{v.get('wall_s', 0) / 60:.1f}", v.get("finished", "")] for k, v in log.items()]  # fmt: skip
        lines += ["Parts as run on this machine (`results/study/parts.json`; extensions: runs that edge extension "
                  "added, ant.sweep.extend):", "",
                  *table(["part", "runs", "trained", "extensions", "estimated min", "measured min", "finished"],
                         prow)]  # fmt: skip
    return lines


def headline(claims: dict[str, Claim]) -> list[str]:
    rows = [[f"**{c.key}** {c.title}", c.paper, c.ours, c.scale, f"**{c.verdict}** — {c.why}"] for c in claims.values()]
    return [
        "## The paper at 1/1000 scale",
        "",
        "Each claim of the paper (arXiv 2505.22014, measured there at 32M–1B parameters and billions of tokens) "
        "against this CPU study (16k–300k parameters, byte tokens, ≤ 6M tokens per run), with 95 % intervals. A "
        "verdict follows the interval: 'agrees' only where it excludes the null (a speedup of 1, equal exponents); "
        "a magnitude is 'larger' or 'smaller' than the paper's only where the paper's number lies outside it.",
        "",
        *table(["claim", "paper", "ours (95 % CI)", "scale", "verdict"], rows),
    ]


def render(st: Study, claims: dict[str, Claim]) -> str:
    lines = [
        "# anGPT study report (issue 11)",
        "",
        f"Generated {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC by `ant study report` from "
        "the committed tables under results/study/ (`make study` regenerates everything). Numbers: "
        "`fits/study.json`; the main group's own report: `main/REPORT.md`.",
        "",
        *headline(claims),
        *data_lines(st),
    ]
    for c in claims.values():
        lines += [f"## {c.key}: {c.title}", "", *c.section, ""]
        for f in c.figures:
            if (st.root / f).is_file():
                lines += [f"![{c.key}]({f})", ""]
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--study", default="results/study", help="the study folder (default: results/study)")
    ap.add_argument("--strict", action="store_true", help="re-raise analysis errors instead of reporting them")
    ap.add_argument("--no-figures", action="store_true", help="numbers and REPORT.md only")
    args = ap.parse_args(argv)
    st = Study(Path(args.study))
    claims = build(st, strict=args.strict)
    try:
        figs = [] if args.no_figures else draw_all(st, claims, st.root / "figures")
    except Exception as e:  # a figure must not cost the report
        if args.strict:
            raise
        print(f"study report: figures: {type(e).__name__}: {e}", file=sys.stderr)
        figs = []
    for p in figs:
        print(f"wrote {p}")
    numbers = {"generated": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "claims": {k: c.to_dict() for k, c in claims.items()}}  # fmt: skip
    path = st.root / "fits" / "study.json"
    atomic_write_text(path, json.dumps(jsonable(numbers), indent=1, allow_nan=False) + "\n")
    print(f"wrote {path}")
    atomic_write_text(st.root / "REPORT.md", render(st, claims))
    print(f"wrote {st.root / 'REPORT.md'}")
    for c in claims.values():
        print(f"{c.key} {c.verdict}: {c.why}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
