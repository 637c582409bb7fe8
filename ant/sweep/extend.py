"""Grids that find their optimum (issue 24, item 2): after the runs of an (arch, size, budget) cell finish, add the
next LR or batch point beyond any optimum that sits on the edge of what the cell has tried, and repeat until every
optimum is interior or a declared limit is reached.

    python -m ant.sweep.extend sweeps/study2/hp.yaml --dry-run     # the grid, plus what may be added
    python -m ant.sweep.extend sweeps/study2/hp.yaml               # run, look, extend, run ... (local executor)
    python -m ant.sweep.extend GRID --max-rounds 3 --max-per-side 2

Works on any grid file (nothing in the grid changes: the added runs are the grid's own configs with another lr
or train.batch_size, so their run ids are those the grid would give them). A cell is every config field except
optim.lr, train.batch_size and train.seed; its optimum is the (lr, batch) with the lowest mean final val loss over
seeds.

Rules, per cell (`next_points`, a pure function, tested on synthetic loss surfaces):
- LR: at the best batch and at its two neighbouring batches (the stage-2 interpolation of ant.laws.hp reads the
  optimal LR off the best batch's neighbours too), if the best LR is the lowest (highest) LR tried at that batch,
  add one LR a step below (above), the step being the ratio of the two outermost LRs on that side (half a decade
  on the study grids).
- Batch: if the best batch is the smallest (largest) tried, or the BS(N) fit's two-stage optimum of the cell
  (ant.laws.hp.batch_optimum: Akima minima per batch, then over batches) sits on that edge though the best grid point
  is inside (a flat batch curve), add the batch one step beyond (the ratio of the two outermost batches; a whole
  number >= 1) at the edge batch's best LR and its two LR neighbours, so the new batch has its own three-point LR
  scan (stage 1 needs >= 3 LRs per batch).
- Limits: at most `max_per_side` points beyond the original grid on each of the four sides of a cell, LRs inside
  `lr_bounds`, batches inside `batch_bounds`, and at most `max_rounds` rounds. A cell that hits a limit keeps its
  edge optimum, which ant.laws.hp then reports and excludes, never fits.
Seeds: extensions train the cell's first seed only; more seeds at the optimum are the grid's business.

Each round's additions are appended to results/sweeps/<grid name>/extensions.json (run id, cell, side, round), the
count the report shows.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ant.config import RunConfig
from ant.errors import ConfigError
from ant.fsio import atomic_write_text
from ant.sweep.plan import committed_runs

SIDES = ("lr_low", "lr_high", "batch_low", "batch_high")


@dataclass(frozen=True)
class ExtendLimits:
    max_rounds: int = 3  # run -> look -> add cycles after the grid's own runs
    max_per_side: int = 2  # points beyond the original grid on each side of a cell
    lr_bounds: tuple[float, float] = (1e-4, 1.0)
    batch_bounds: tuple[int, int] = (1, 4096)  # sequences

    def __post_init__(self) -> None:
        for name, v in (("max_rounds", self.max_rounds), ("max_per_side", self.max_per_side)):
            if not isinstance(v, int) or v < 0:
                raise ConfigError(f"--{name.replace('_', '-')}", f"must be a whole number >= 0, got {v!r}", ">= 0")
        lo, hi = self.lr_bounds
        if not 0 < lo < hi:
            raise ConfigError("lr_bounds", f"need 0 < low < high, got {self.lr_bounds}")
        blo, bhi = self.batch_bounds
        if not 1 <= blo < bhi:
            raise ConfigError("batch_bounds", f"need 1 <= low < high, got {self.batch_bounds}")


@dataclass(frozen=True)
class Point:
    lr: float
    batch_size: int
    side: str  # one of SIDES: why it was added
    why: str = field(default="", compare=False)


def _ratio(values: list[float], low: bool) -> float | None:
    """The step at one end of a sorted axis: ratio of its two outermost values (None with < 2 values)."""
    if len(values) < 2:
        return None
    return values[1] / values[0] if low else values[-1] / values[-2]


def _beyond(original: list[float], tried: list[float], low: bool) -> int:
    """How many tried values lie beyond the original grid's range on one side."""
    if not original:
        return 0
    edge = min(original) if low else max(original)
    return sum((v < edge * (1 - 1e-9)) if low else (v > edge * (1 + 1e-9)) for v in tried)


def _fitted_batch(cell: pd.DataFrame) -> dict | None:
    from ant.laws.hp import batch_optimum  # late: scipy's Akima, read only for cells with >= 3 batches

    return batch_optimum(cell) if cell["batch_size"].nunique() >= 3 else None


def next_points(cell: pd.DataFrame, limits: ExtendLimits, original: pd.DataFrame | None = None) -> list[Point]:
    """The points to add to one cell. `cell`: one row per finished run (lr, batch_size, final_val_loss; seeds are
    averaged); `original`: the grid's own (lr, batch_size) points of the cell (default: those of `cell`), against
    which `max_per_side` counts. Returns [] when every optimum is interior or a limit is reached."""
    ok = cell[pd.to_numeric(cell["final_val_loss"], errors="coerce").notna()]
    if ok.empty:
        return []
    m = ok.groupby(["batch_size", "lr"])["final_val_loss"].mean()
    orig = original if original is not None else cell
    o_lrs, o_bs = sorted(set(orig["lr"].astype(float))), sorted(set(orig["batch_size"].astype(int)))
    b_best, lr_best = m.idxmin()
    batches = sorted(m.index.get_level_values(0).unique())
    lrs_all = sorted(set(m.index.get_level_values(1)))
    tried = set(m.index)
    out: list[Point] = []

    def add(lr: float, bs: int, side: str, why: str) -> None:
        lr = float(f"{lr:.6g}")  # 1e-2 / sqrt(10) -> 0.00316228: a stable, readable value (it enters the run id)
        if (bs, lr) in tried or any(abs(p.lr / lr - 1) < 1e-6 and p.batch_size == bs for p in out):
            return
        out.append(Point(lr, bs, side, why))

    # LR edges at the best batch and both its neighbours: a batch added at an earlier round's best LRs may hold a
    # stale scan whose own optimum is off its edge, and it can only win once that scan is walked too
    i = batches.index(b_best)
    for b in [batches[j] for j in (i, i - 1, i + 1) if 0 <= j < len(batches)]:
        lrs = sorted(m[b].index)
        if len(lrs) < 2:
            continue
        best = m[b].idxmin()
        for low, side in ((True, "lr_low"), (False, "lr_high")):
            if best != (lrs[0] if low else lrs[-1]):
                continue
            if _beyond(o_lrs, lrs_all, low) >= limits.max_per_side:
                continue
            step = _ratio(lrs, low)
            new = best / step if low else best * step
            if not limits.lr_bounds[0] <= new <= limits.lr_bounds[1]:
                continue
            add(new, int(b), side, f"best LR {best:g} at batch {b} is the {'lowest' if low else 'highest'} tried")
    # batch edges: where the grid's best point is on one, or where the fit's two-stage optimum is (a flat batch
    # curve can have its best grid point inside while the Akima minima put the optimum on an edge, which the BS(N)
    # fit then excludes). The new batch gets the edge batch's best LR and its two LR neighbours.
    if len(batches) >= 2:
        fit = _fitted_batch(ok)
        for low, side in ((True, "batch_low"), (False, "batch_high")):
            edge_b = batches[0] if low else batches[-1]
            by_fit = (
                fit is not None
                and fit["bs_at_edge"]
                and fit["batches"][0 if low else -1] == edge_b  # the fit's edge is the cell's edge
                and (fit["bs_opt"] <= fit["batches"][0] * (1 + 1e-9)) == low
            )
            if b_best != edge_b and not by_fit:
                continue
            if _beyond([float(b) for b in o_bs], [float(b) for b in batches], low) >= limits.max_per_side:
                continue
            step = _ratio([float(b) for b in batches], low)
            new_b = int(round(edge_b / step)) if low else int(round(edge_b * step))
            if new_b == edge_b or not limits.batch_bounds[0] <= new_b <= limits.batch_bounds[1]:
                continue
            end = "smallest" if low else "largest"
            if b_best == edge_b:
                center, why = lr_best, f"best batch {b_best} is the {end} tried"
            else:
                center = m[edge_b].idxmin()
                why = f"the fitted batch optimum {fit['bs_opt']:.3g} is at the {end} batch with an LR scan, {edge_b}"
            j = lrs_all.index(center)
            for lr in lrs_all[max(0, j - 1) : j + 2]:
                add(lr, new_b, side, why)
    return out


# ---------------------------------------------------------------------------------------------- configs
def cell_key(cfg: RunConfig) -> str:
    """Every field but the searched ones (lr, batch) and the seed: runs of one cell differ only in those."""
    d = cfg.to_dict()
    d["optim"].pop("lr", None)
    d.pop("steps", None)  # resolved from tokens / batch: differs with the batch
    for k in ("batch_size", "seed", "micro_batch_size"):
        d["train"].pop(k, None)
    for k in [k for k in d["train"] if k.endswith("_interval")]:  # resolved in steps, hence per batch
        d["train"].pop(k)
    return json.dumps(d, sort_keys=True, default=str)


# Fields the recipe derives from a run's steps (ant.recipe.resolve) when the grid leaves them at 0.
DERIVED_INTERVALS = ("eval_interval", "diag_interval", "ckpt_interval")


def with_point(cfg: RunConfig, p: Point) -> RunConfig:
    """The cell's run at another (lr, batch), resolved as the grid's own expansion would resolve it: `cfg` is a
    resolved run, so its steps and the intervals the recipe derived from them belong to its batch; they are
    derived again for the new one (an interval the grid set itself is kept). Without this a point at another batch
    carried the template's steps, and the worker, resolving it again, trained it under another run id than the
    one the extension log and the cell bookkeeping looked for."""
    from ant.recipe import resolve  # late: the recipe counts parameters (torch); the planner's imports stay light

    auto = resolve(cfg.with_overrides([f"train.{k}=0" for k in DERIVED_INTERVALS]))
    reset = [f"train.{k}=0" for k in DERIVED_INTERVALS if getattr(cfg.train, k) == getattr(auto.train, k)]
    return resolve(cfg.with_overrides([f"optim.lr={p.lr!r}", f"train.batch_size={p.batch_size}", *reset]))


def logged_config(entry: dict) -> RunConfig:
    """An extension run as its worker trained it: the logged config resolved again (a log written before
    `with_point` resolved its points holds a stale `steps`, which the worker recomputed, and so its run id)."""
    from ant.recipe import resolve  # late: as above

    return resolve(RunConfig.from_dict(entry["config"]))


def plan_round(cfgs: list[RunConfig], grid_cfgs: list[RunConfig], losses: dict[str, float | None],
               limits: ExtendLimits) -> list[tuple[RunConfig, Point]]:  # fmt: skip
    """New configs for every cell whose runs have all finished. `losses`: run_id -> final val loss (None for a
    run that has not finished: its cell waits)."""
    cells: dict[str, list[RunConfig]] = {}
    for c in cfgs:
        cells.setdefault(cell_key(c), []).append(c)
    orig: dict[str, list[RunConfig]] = {}
    for c in grid_cfgs:
        orig.setdefault(cell_key(c), []).append(c)
    have = {c.run_id() for c in cfgs}
    out = []
    for key, members in cells.items():
        if any(c.run_id() not in losses for c in members):
            continue  # unfinished (or failed) runs: decide when the cell is complete
        rows = pd.DataFrame([{"lr": c.optim.lr, "batch_size": c.train.batch_size,
                              "final_val_loss": losses[c.run_id()]} for c in members])  # fmt: skip
        o = pd.DataFrame([{"lr": c.optim.lr, "batch_size": c.train.batch_size} for c in orig.get(key, members)])
        template = min(members, key=lambda c: c.train.seed)
        for p in next_points(rows, limits, o):
            new = with_point(template, p)
            if new.run_id() not in have:
                have.add(new.run_id())
                out.append((new, p))
    return out


# ---------------------------------------------------------------------------------------------- driver
def _log_path(grid) -> Path:
    return Path(grid.out_dir).parent / "sweeps" / grid.name / "extensions.json"


def read_log(path: Path) -> list[dict]:
    """The extension runs added so far (the report counts them)."""
    return json.loads(path.read_text()) if path.is_file() else []


def _finished(cfgs: list[RunConfig]) -> dict[str, float | None]:
    from ant.sweep.plan import build_plan  # late: the planner loads the calibration tables

    rows, _ = build_plan(cfgs, concurrency=1)
    return {r.run_id: r.final_val_loss for r in rows if r.state in ("done", "diverged")}


def extend(grid_file: str, limits: ExtendLimits, dry_run: bool = False, log=print,
           done_from: str | None = None) -> int:  # fmt: skip
    """Run the grid, then add points beyond edge optima round by round. `done_from`: a collected runs table whose
    finished runs count as done (a study's committed rows: their folders stay on the machine that trained them)."""
    from ant.sweep.executors import ExecutorSettings, run_local  # late: multiprocessing set-up
    from ant.sweep.grid import Grid  # late: the planner (next_points) must import without the grid machinery

    grid = Grid.from_yaml(grid_file)
    settings = ExecutorSettings.from_dict(dict(grid.executor))
    grid_cfgs = grid.expand()
    path = _log_path(grid)
    logged = read_log(path)
    # earlier rounds' extensions count as part of the cells (a resumed sweep picks up where it stopped)
    cfgs = grid_cfgs + [logged_config(e) for e in logged]
    rnd = max((e["round"] for e in logged), default=0)
    elsewhere = committed_runs(done_from) if done_from else {}
    while True:
        losses = {**elsewhere, **_finished(cfgs)}  # a run folder wins over a committed row
        todo = [c for c in cfgs if c.run_id() not in losses]
        if dry_run:
            new = plan_round(cfgs, grid_cfgs, losses, limits)
            n_cells = len({cell_key(c) for c in grid_cfgs})
            log(
                f"extend {grid.name}: {len(cfgs)} runs ({len(logged)} added by earlier rounds), {len(todo)} to run;"
                f" up to {limits.max_rounds} round(s), {limits.max_per_side} point(s) per side, {n_cells} cells: at"
                f" most {n_cells * limits.max_per_side * 2} LR and {n_cells * limits.max_per_side * 2} batch points"
            )
            for c, p in new:
                log(f"  would add {c.run_id()}  ({p.side}: {p.why})")
            if not new:
                log("  nothing to add from the finished runs (cells with unfinished runs are decided later)")
            return 0
        if todo:
            run_local(todo, settings, all_cfgs=cfgs)
            losses = {**elsewhere, **_finished(cfgs)}
        if rnd >= limits.max_rounds:
            log(f"extend {grid.name}: round limit {limits.max_rounds} reached")
            break
        new = plan_round(cfgs, grid_cfgs, losses, limits)
        if not new:
            log(f"extend {grid.name}: every cell's optimum is interior or at a declared limit")
            break
        rnd += 1
        for c, p in new:
            logged.append({"round": rnd, "run_id": c.run_id(), "side": p.side, "why": p.why, "config": c.to_dict(),
                           "added": time.strftime("%Y-%m-%d %H:%M:%S")})  # fmt: skip
            log(f"extend round {rnd}: + {c.run_id()} ({p.side}: {p.why})")
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(logged, indent=1, default=str) + "\n")
        cfgs += [c for c, _ in new]
    finished = {**elsewhere, **_finished(cfgs)}
    n_fail = sum(c.run_id() not in finished for c in cfgs)
    log(f"extend {grid.name}: {len(logged)} extension run(s) in all; {n_fail} run(s) not finished")
    return 1 if n_fail else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("file", help="grid YAML")
    ap.add_argument("--dry-run", action="store_true", help="show the runs and what the finished ones would add")
    ap.add_argument("--max-rounds", type=int, default=ExtendLimits.max_rounds)
    ap.add_argument("--max-per-side", type=int, default=ExtendLimits.max_per_side)
    ap.add_argument("--done-from", metavar="RUNS.parquet", help="a runs table whose finished runs count as done")
    args = ap.parse_args(argv)
    try:
        limits = ExtendLimits(max_rounds=args.max_rounds, max_per_side=args.max_per_side)
        return extend(args.file, limits, dry_run=args.dry_run, done_from=args.done_from)
    except ConfigError as e:
        print(f"extend: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
