"""C4 on one head-dim family with the LR tuned per point (part v2-isoflop-scan; docs/study.md "C4 with the LR tuned
per point", preregistered before its runs). The three designs before it each failed for the same reason: an IsoFLOP
profile is a parabola in log N only if every point trains near its own optimum, and each design got one HP choice
wrong at some points (the batch tuned at 20 tokens/param trains 320-60k steps across one level; the batch-per-budget
laws leave LRs off by factors the profiles show; the mixed ladder alternates head dims). This design removes all
three at once:

- the ladder is one head-dim family (tiny0h8, d24L2, tiny1h8, d40L3, tiny2h8, d56L3: v2-isoflop-hd8's),
- the batch follows the tokens (v2-isoflop-budget's rule, `ant.laws.isoflop_design.budget_hps`, the rung's laws at
  the twin's N: the same N), so every point trains 3.6k-7.2k steps,
- the LR is scanned per point, x1/2, x1 and x2 of the budget rule's LR (seed 0, the three as one packed worker),
  with edge extension (`ant.sweep.extend`: a point whose best LR is the lowest or highest tried gets the next one).

A point's loss is the lowest final val loss over its LRs: every point takes the minimum over the same three
candidates (plus extensions only beyond an edge), so the minimum's selection bias is shared along the ladder
instead of alternating with it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ant.analysis.study_v2 import V2, at_point, grid_text, isoflop_budget_points
from ant.analysis.study_v2_headdim import TWINS
from ant.fsio import atomic_write_text

SCAN_GRID = "sweeps/study2/isoflop_scan.yaml"
SIZES_GRID = "sweeps/study2/isoflop_scan_sizes.yaml"
BRACKET_GRID = "sweeps/study2/isoflop_scan_bracket.yaml"
UP_GRID = "sweeps/study2/isoflop_scan_up.yaml"
# The head-dim-8 family, small to large: v2-isoflop-hd8's ladder and one rung beyond each end (ant/models/sizes.py)
FAMILY_LADDER = ("d16L1", "tiny0h8", "d24L2", "tiny1h8", "d40L3", "tiny2h8", "d56L3", "d64L3")
FACTORS = (0.5, 1.0, 2.0)  # the LRs of a point: these times the budget rule's LR
SEED = 0
DESIGN = "one head-dim family, batch per budget, LR tuned per point"


def scan_points(budget_points: list[dict]) -> list[dict]:
    """The batch-per-budget design's points (study_v2.isoflop_budget_points) on the one-family ladder: a tiny rung's
    point is its head-dim-8 twin's (same N and tokens, the same batch and LR), with the point's LRs `lrs`."""
    return [q | {"size": TWINS.get(q["size"], q["size"]), "lrs": [float(f"{q['lr'] * f:.3g}") for f in FACTORS]}
            for q in budget_points]  # fmt: skip


def scan_grid_text(runs: pd.DataFrame, budget_points: list[dict] | None = None) -> str:
    pts = scan_points(isoflop_budget_points(runs) if budget_points is None else budget_points)
    head = [
        '# Study v2 part "v2-isoflop-scan" (C4 on one head-dim family with the LR tuned per point; docs/study.md',
        '# "C4 with the LR tuned per point"). WRITTEN by `python -m ant.analysis.study_v2_scan` from the committed v2',
        "# HP runs: do not edit by hand. v2-isoflop-budget's points (batch = the BS law at D / 20, LR by the",
        "# square-root rule), the tiny rungs' as their head-dim-8 twins, at x0.5, x1 and x2 of the point's LR,",
        "# seed 0; the three LRs of a point train as one packed worker, and `ant.sweep.extend` adds the next LR",
        "# beyond an edge.",
    ]
    return _grid("study2-isoflop-scan", head, pts)


def _grid(name: str, head: list[str], pts: list[dict]) -> str:
    """A scan grid: one packed worker per point (its LRs, seed 0), largest level first so that the longest workers
    start first and the two workers finish together."""
    grids = [{"arch": [q["arch"]], "size": [q["size"]], "tokens": [q["tokens"]], "batch_size": [q["batch_size"]],
              "lr": q["lrs"], "seed": [SEED]}
             for q in sorted(pts, key=lambda q: (-q["level"], q["arch"]))]  # fmt: skip
    return grid_text(name, head, grids, pack=len(FACTORS))


def at_scan(runs: pd.DataFrame, points: list[dict]) -> pd.Series:
    """Whether each run is one of the scan's (`points`: scan_points): its arch, size, requested tokens and batch, seed
    0, any LR (the scan's three and every extension)."""
    at = pd.Series(False, index=runs.index)
    for q in points:
        at |= (runs["arch"].eq(q["arch"]) & at_point(runs, q["size"], q["tokens"])
               & runs["batch_size"].eq(q["batch_size"]) & runs["seed"].eq(SEED))  # fmt: skip
    return at


def scan_ladder(runs: pd.DataFrame, points: list[dict]) -> tuple[pd.DataFrame, list[str]]:
    """One row per scanned point (`points`: scan_points): its best completed seed-0 run at the point's size,
    requested tokens and batch (any LR: the scan and its extensions), with `level`, `lr_edge` (the best LR is the
    lowest or highest tried) and `lrs_tried`. Only levels whose every point has finished its three LRs (completed or
    diverged) are read; notes say which are not, and where a point's best LR sits on an edge."""
    if runs.empty or not points:
        return runs.iloc[:0], []
    finished = runs[runs["status"].isin(("completed", "diverged"))]
    rows, ready = [], {}
    for q in points:
        cell = finished[at_scan(finished, [q])]
        scanned = all(np.isclose(cell["lr"].to_numpy(float), lr).any() for lr in q["lrs"])
        ready.setdefault(q["level"], []).append(scanned)
        done = cell[cell["status"].eq("completed")]
        if not scanned or done.empty:
            continue
        best = done.loc[done["final_val_loss"].idxmin()]
        tried = cell["lr"].astype(float)
        edge = bool(best["lr"] <= tried.min() or best["lr"] >= tried.max())
        rows.append(best.to_dict() | {"level": q["level"], "lrs_tried": int(tried.nunique()), "lr_edge": edge})
    if not any(any(v) for v in ready.values()):
        return runs.iloc[:0], []  # the part has not trained
    whole = [lv for lv, v in ready.items() if all(v)]
    r = pd.DataFrame(rows)
    r = r[r["level"].isin(whole)].reset_index(drop=True) if len(r) else r
    notes = []
    if len(whole) < len(ready):
        notes.append("levels not trained yet: " + ", ".join(f"{lv:.3g}" for lv in sorted(set(ready) - set(whole))))
    if len(r):
        edge = r[r["lr_edge"]]
        notes.append(f"the best LR is an edge of those tried at {len(edge)} of {len(r)} points"
                     + (": " + "; ".join(f"{x.arch} {x.size} at {x.level:.3g} (LR {x.lr:g})" for x in edge.itertuples())
                        if len(edge) else ""))  # fmt: skip
    return r, notes


# ---------------------------------------------------------------------------------------------- sizes that bracket
# Part v2-isoflop-scan-sizes (docs/study.md "Sizes that bracket the optimum", preregistered before its runs): where
# a level's LR-scanned profile has no interior vertex, the family's next size beyond the end the optimum lies past.
def size_extension_points(runs: pd.DataFrame, points: list[dict], laws: dict) -> list[dict]:
    """One scan point (with `lrs`) per (arch, level) of the scan's own 40 points whose parabola over log N has no
    vertex inside the level's sizes: the FAMILY_LADDER size next beyond the smallest or the largest, on the side of
    the vertex (a parabola that opens downwards: the side of the end with the lower loss), at the level's tokens
    (GPT+'s FLOPs per token, as every design point) and the batch-per-budget HPs of `laws` (study_v2.budget_laws).
    None where the ladder has no size beyond. Read from the scan's own points only, so the rule does not move once
    the added sizes train."""
    from ant.laws.isoflop_design import vertex  # late: as isoflop_nopt's readers

    r, _ = scan_ladder(runs, points)
    out = []
    for (arch, level), g in r.groupby(["arch", "level"]) if len(r) else []:
        g = g.sort_values("num_params")
        _, _, side = vertex(np.log(g["num_params"].to_numpy(float)), g["final_val_loss"].to_numpy(float))
        size = _next_beyond(g, side == "low") if side else None  # no side: an interior vertex
        if size is not None:
            out += _at_level(arch, size, level, laws)
    return out


def _next_beyond(g: pd.DataFrame, low: bool) -> str | None:
    """The FAMILY_LADDER size next beyond the smallest (`low`) or the largest of a level's sizes `g`, or None."""
    i = FAMILY_LADDER.index(g.sort_values("num_params")["size"].iloc[0 if low else -1]) + (-1 if low else 1)
    return FAMILY_LADDER[i] if 0 <= i < len(FAMILY_LADDER) else None


def _at_level(arch: str, size: str, level: float, laws: dict) -> list[dict]:
    """The scan point of `size` at `level`: GPT+'s FLOPs per token, as every design point, and the batch-per-budget
    HPs of `laws`, with the scan's three LRs."""
    from ant.analysis.study_v2 import SEQ_LEN, budget_point  # late: the design's point at a new size
    from ant.models.counts import flops_per_token  # late: as in study_v2.isoflop_design

    tokens = int(round(level / flops_per_token("gptplus", size, 256, SEQ_LEN)))
    return scan_points([budget_point(arch, size, tokens, level, laws)])


# Part v2-isoflop-scan-bracket (docs/study.md "Two sizes on each side of the vertex", preregistered before its runs).
# anGPT's exponent stayed undetermined with 4 of 5 levels giving a vertex: at two of them the vertex has one size
# below it, so a resample that lifts that one point's loss moves the vertex out of the level's sizes.
BRACKET_SIDE = 2  # sizes wanted on each side of a level's vertex


def bracket_points(runs: pd.DataFrame, points: list[dict], laws: dict) -> list[dict]:
    """One scan point per (arch, level, side) of the scan's and the size extension's points where fewer than
    BRACKET_SIDE of the level's sizes lie on that side of its parabola's vertex: the FAMILY_LADDER size next beyond
    that end. A level with no interior vertex gets the next size on the side its optimum lies past (as
    size_extension_points), where the ladder has one. One round: the rule reads those points only, so it does not
    move once the added sizes train."""
    from ant.laws.isoflop_design import vertex  # late: as isoflop_nopt's readers

    r, _ = scan_ladder(runs, points)
    out = []
    for (arch, level), g in r.groupby(["arch", "level"]) if len(r) else []:
        lN = np.log(g["num_params"].to_numpy(float))
        v, _, side = vertex(lN, g["final_val_loss"].to_numpy(float))
        counts = {True: (lN < v).sum(), False: (lN > v).sum()}  # low side, high side (NaN v: both 0, unused)
        for low in [side == "low"] if side else [k for k, n in counts.items() if n < BRACKET_SIDE]:
            size = _next_beyond(g, low)
            if size is not None:
                out += _at_level(arch, size, level, laws)
    return out


# Part v2-isoflop-scan-up (docs/study.md "A compute level above 2e12", preregistered before its runs). anGPT's
# vertices sit at 2.5e11, 5e11 and 2e12 FLOPs only: at 1.25e11 its optimum lies below the family's smallest rung and
# at 1e12 the profile is flat. One level above the highest, at the sizes of its profile there.
UP_LEVEL = 4e12
UP_ARCHS = ("angpt",)  # GPT+'s exponent is determined on its five levels


def up_points(runs: pd.DataFrame, points: list[dict], laws: dict) -> list[dict]:
    """For each UP_ARCHS arch: the sizes of its highest scanned level (the scan's, the size extension's and the
    bracket's points) at UP_LEVEL, each at the batch-per-budget HPs and the scan's three LRs. Read from those points
    only, so the rule does not move once the level trains."""
    r, _ = scan_ladder(runs, points)
    out = []
    for arch in UP_ARCHS:
        g = r[r["arch"].eq(arch)] if len(r) else r
        if len(g):
            top = g[g["level"].eq(g["level"].max())].sort_values("num_params")
            for size in top["size"]:
                out += _at_level(arch, size, UP_LEVEL, laws)
    return out


ADDED = {"sizes": size_extension_points, "bracket": bracket_points, "up": up_points}  # in the parts' order


def design_stages(runs: pd.DataFrame, budget_points: list[dict], laws: dict) -> dict[str, list[dict]]:
    """The scan design's points by the part that adds them: "scan" (scan_points), then each rule of ADDED in order,
    each reading every point before its own (`points`), never its own or later ones, so none moves once a later
    part trains. Computed once per reader: each rule reads the ladder of the stages before it."""
    stages = {"scan": scan_points(budget_points)}
    before = list(stages["scan"])
    for name, rule in ADDED.items():
        stages[name] = rule(runs, before, laws)
        before += stages[name]
    return stages


def _added_grid_text(stage: str, name: str, head: list[str], runs: pd.DataFrame, budget_points: list[dict] | None,
                     laws: dict | None) -> str:  # fmt: skip
    """The grid of the part that adds a stage's points (design_stages): `head`, then one line per added point;
    `budget_points` and `laws` (study_v2.budget_laws) are fitted here when None."""
    from ant.analysis.study_v2 import budget_laws  # late: scipy (the HP laws)

    laws = budget_laws(runs) if laws is None else laws
    budget_points = isoflop_budget_points(runs, laws) if budget_points is None else budget_points
    pts = design_stages(runs, budget_points, laws)[stage]
    return _grid(name, [*head, *(f"#   {q['arch']} at {q['level']:.3g} FLOPs: {q['size']}" for q in pts)], pts)


def bracket_grid_text(runs: pd.DataFrame, budget_points: list[dict] | None = None, laws: dict | None = None) -> str:
    head = [
        '# Study v2 part "v2-isoflop-scan-bracket" (C4: two sizes on each side of every vertex; docs/study.md).',
        "# WRITTEN by `python -m ant.analysis.study_v2_scan` from the committed v2 runs: do not edit by hand. Where",
        "# fewer than two of a level's sizes lie on one side of its LR-scanned parabola's vertex (parts",
        "# v2-isoflop-scan and v2-isoflop-scan-sizes), the head-dim-8 family's next size beyond that end, at the",
        "# batch-per-budget HPs and the same three LRs (edge extension too):",
    ]
    return _added_grid_text("bracket", "study2-isoflop-scan-bracket", head, runs, budget_points, laws)


def up_grid_text(runs: pd.DataFrame, budget_points: list[dict] | None = None, laws: dict | None = None) -> str:
    head = [
        '# Study v2 part "v2-isoflop-scan-up" (C4: a compute level above 2e12 for anGPT; docs/study.md). WRITTEN by',
        "# `python -m ant.analysis.study_v2_scan` from the committed v2 runs: do not edit by hand. The sizes of the",
        "# arch's highest scanned level at 4e12 FLOPs, at the batch-per-budget HPs and the scan's three LRs (edge",
        "# extension too):",
    ]
    return _added_grid_text("up", "study2-isoflop-scan-up", head, runs, budget_points, laws)


def sizes_grid_text(runs: pd.DataFrame, budget_points: list[dict] | None = None, laws: dict | None = None) -> str:
    head = [
        '# Study v2 part "v2-isoflop-scan-sizes" (C4: sizes that bracket the optimum; docs/study.md). WRITTEN by',
        "# `python -m ant.analysis.study_v2_scan` from the committed v2 runs: do not edit by hand. Where a level's",
        "# LR-scanned profile (part v2-isoflop-scan) has no interior vertex, the head-dim-8 family's next size beyond",
        "# the end its optimum lies past, at the batch-per-budget HPs and the same three LRs (edge extension too):",
    ]
    return _added_grid_text("sizes", "study2-isoflop-scan-sizes", head, runs, budget_points, laws)


def main() -> int:
    from ant.analysis.study_v2 import budget_laws  # late: scipy (the HP laws)

    table = V2 / "runs.parquet"
    runs = pd.read_parquet(table) if table.is_file() else pd.DataFrame()
    laws = budget_laws(runs)
    budget_points = isoflop_budget_points(runs, laws)
    atomic_write_text(SCAN_GRID, scan_grid_text(runs, budget_points))
    print(f"wrote {SCAN_GRID}")
    # each added part's grid once the stage before it has trained (its rule reads that stage's runs)
    stages = design_stages(runs, budget_points, laws)
    writers = {"sizes": (SIZES_GRID, sizes_grid_text), "bracket": (BRACKET_GRID, bracket_grid_text),
               "up": (UP_GRID, up_grid_text)}  # fmt: skip
    names = list(stages)
    for prev, stage in zip(names, names[1:]):
        if not stages[prev] or not len(scan_ladder(runs, stages[prev])[0]):
            break
        path, text = writers[stage]
        atomic_write_text(path, text(runs, budget_points, laws))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
