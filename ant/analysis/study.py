"""The CPU study of issue 11 ("the paper at 1/1000 scale"): its parts, in order, each one grid file under
sweeps/study/, run by `ant sweep`, collected into compact tables that git keeps, and the report.

    python -m ant.analysis.study plan   [--part P ...]           # what each part runs, what is done, time estimate
    python -m ant.analysis.study run    [--part P ...] [--force]  # run what is missing, part by part
    python -m ant.analysis.study report                           # fits, figures, results/study/REPORT.md

`make study` is `run` then `report`. Layout (docs/study.md):
    results/study/runs/<group>/     run folders (checkpoints and all; not in git)
    results/study/<group>/          runs.parquet + curves.parquet (in git), fits/, figures/, REPORT.md
    results/study/tuned.yaml        the best (lr, batch) per (arch, size) of the HP grid, read by later parts
    results/study/parts.json        per part: runs, estimated and measured wall time
A part whose runs are all in its group's committed runs.parquet is skipped (`--force` reruns it), so a fresh clone
regenerates the report from the committed tables without training anything; a part partly committed runs with
`--done-from` that table, so only its missing runs train.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import yaml

from ant.analysis.study_tables import measured_summaries, write_shard
from ant.errors import ConfigError
from ant.fsio import atomic_write_text
from ant.laws.collect import atomic_parquet, collect
from ant.laws.comparable import check_comparable
from ant.status import FINISHED
from ant.sweep.fmt import fmt_time
from ant.sweep.grid import Grid
from ant.sweep.plan import build_plan

# The study is a workflow of this repository (make study*): its grid files and tables are read relative to the
# working directory, the repository root.
ROOT = Path(".")
STUDY = Path("results/study")
TUNED = STUDY / "tuned.yaml"


@dataclass(frozen=True)
class Part:
    name: str
    grid: str  # grid file, relative to the repository root ("" for a step that trains nothing)
    group: str  # results/study/<group>: runs that are analysed together
    claims: str
    needs_tuned: bool = False
    tuned: str = ""  # the best-(lr, batch) file its grid reads (from_study) and an HP part writes ("": TUNED)
    extend: bool = False  # run with edge extension (ant.sweep.extend)
    tunes: bool = False  # an HP grid: its runs (re)write the tuned file

    @property
    def is_hp(self) -> bool:
        return self.tunes or self.name in ("hp", "hp3", "baselines")  # by name: parts defined before the flag

    @property
    def tuned_path(self) -> Path:
        return Path(self.tuned) if self.tuned else TUNED  # TUNED read now: tests point it elsewhere


V2_TUNED = "results/study/v2/tuned.yaml"
EXTEND_RESERVE = 0.15  # share of a part's estimate held for edge-extension runs (docs/study.md)


PARTS = (
    Part("hp", "sweeps/study/hp.yaml", "main", "C2 LR sensitivity, C3 optimal LR/batch vs N (tiny0-tiny2)", tunes=True),
    Part("hp3", "sweeps/study/hp3.yaml", "main", "C3 at tiny3 (3 LRs x 4 batches)", tunes=True),
    Part("baselines", "sweeps/study/baselines.yaml", "main", "LR scans of gpt and ngpt for C1", tunes=True),
    Part("speedup", "sweeps/study/speedup.yaml", "main", "C1 convergence speedup", needs_tuned=True),
    Part("compute", "sweeps/study/compute.yaml", "main", "C4 compute scaling", needs_tuned=True),
    Part("noise", "sweeps/study/noise.yaml", "noise", "C5 gradient noise scale", needs_tuned=True),
    Part("wsd", "sweeps/study/wsd.yaml", "wsd", "C6 wsd branches vs cosine runs", needs_tuned=True),
    Part("readings", "sweeps/study/readings.yaml", "readings", "C7 the paper's open readings", needs_tuned=True),
)
# Study v2 (issue 24, docs/study.md "Study v2"): sequences of 32 bytes, 20 tokens/param, >= 5 sizes, IsoFLOP, C1 per
# regime and a preregistered extrapolation. Order matters: v2-predict writes the prediction from the three HP parts
# (six sizes, tiny3 never seen) and v2-heldout refuses to train tiny3 until that prediction is committed.
V2_PARTS = (
    Part(
        "v2-hp",
        "sweeps/study2/hp.yaml",
        "v2",
        "C3 + C2 at 20 tokens/param (seq 32): tiny0, d24L2, tiny1, d40L3",
        tuned=V2_TUNED,
        extend=True,
        tunes=True,
    ),
    Part("v2-hp2", "sweeps/study2/hp2.yaml", "v2", "C3 + C2: tiny2", tuned=V2_TUNED, extend=True, tunes=True),
    Part(
        "v2-hp3", "sweeps/study2/hp3.yaml", "v2", "C3 + C2: d56L3 (the decade)", tuned=V2_TUNED, extend=True, tunes=True
    ),
    Part("v2-predict", "", "v2", "preregistered tiny3 prediction (writes results/study/v2/prediction.json)"),
    Part("v2-heldout", "sweeps/study2/heldout.yaml", "v2", "extrapolation: tiny3 at the predicted HPs"),
    Part(
        "v2-isoflop",
        "sweeps/study2/isoflop.yaml",
        "v2",
        "C4 IsoFLOP (5 levels x 4 sizes)",
        needs_tuned=True,
        tuned=V2_TUNED,
    ),
    Part(
        "v2-isoflop-fallback",
        "sweeps/study2/isoflop_fallback.yaml",
        "v2",
        "C4: IsoFLOP points whose tuned run diverged, at the next-best HP cell",
    ),
    Part(
        "v2-isoflop-budget",
        "sweeps/study2/isoflop_budget.yaml",
        "v2",
        "C4 IsoFLOP with the batch chosen per budget (5 levels x 4 sizes x 2 seeds)",
    ),
    Part(
        "v2-headdim",
        "sweeps/study2/headdim.yaml",
        "v2",
        "C4's lack of fit: tiny0-tiny2 against their head-dim-8 twins (3 paired seeds)",
    ),
    Part(
        "v2-isoflop-hd8",
        "sweeps/study2/isoflop_hd8.yaml",
        "v2",
        "C4 on one head-dim family: v2-isoflop's tiny-rung points as head-dim-8 twins",
    ),
    Part(
        "v2-isoflop-scan",
        "sweeps/study2/isoflop_scan.yaml",
        "v2",
        "C4 on one head-dim family, batch per budget, LR scanned per point (x0.5, x1, x2; edge extension)",
        extend=True,
    ),
    Part(
        "v2-isoflop-scan-sizes",
        "sweeps/study2/isoflop_scan_sizes.yaml",
        "v2",
        "C4: the family's next size where a scanned level had no interior vertex (LR scan, edge extension)",
        extend=True,
    ),
    Part(
        "v2-isoflop-scan-bracket",
        "sweeps/study2/isoflop_scan_bracket.yaml",
        "v2",
        "C4: the family's next size where fewer than two sizes lie on one side of a level's vertex (LR scan)",
        extend=True,
    ),
    Part(
        "v2-isoflop-scan-up",
        "sweeps/study2/isoflop_scan_up.yaml",
        "v2",
        "C4: anGPT at 4e12 FLOPs, the sizes of its 2e12 level (LR scan, edge extension)",
        extend=True,
    ),
    Part(
        "v2-speedup",
        "sweeps/study2/speedup.yaml",
        "v2",
        "C1 per budget regime (4 seeds, 2 sizes)",
        needs_tuned=True,
        tuned=V2_TUNED,
    ),
)
PARTS = PARTS + V2_PARTS
BY_NAME = {p.name: p for p in PARTS}


# ---------------------------------------------------------------------------------------------- tables
def group_dir(group: str) -> Path:
    return STUDY / group


def committed(group: str) -> pd.DataFrame:
    """The group's committed runs table (its curves, which no caller here needs, are study_tables.read_curves)."""
    p = group_dir(group) / "runs.parquet"
    return pd.read_parquet(p) if p.is_file() else pd.DataFrame()


def merge_group(group: str) -> int:
    """Committed tables + the run folders of this machine (a run folder wins over its committed row) -> the
    group's runs.parquet and a new curves shard holding the collected runs' curves (study_tables: the committed
    curves are never rewritten). Returns the number of runs."""
    old_runs = committed(group)
    folder = STUDY / "runs" / group
    new_runs, new_curves = collect(folder, write=False) if folder.is_dir() else (pd.DataFrame(), pd.DataFrame())
    if new_runs.empty:
        return len(old_runs)
    keep = ~old_runs["run_id"].isin(new_runs["run_id"]) if len(old_runs) else slice(None)
    runs = pd.concat([old_runs[keep], new_runs], ignore_index=True) if len(old_runs) else new_runs
    runs = runs.sort_values(["arch", "num_params", "tokens", "batch_size", "lr", "seed"], kind="stable")
    check_comparable(runs, str(group_dir(group)))  # a group is compared within itself: one tokenizer, corpus, ...
    atomic_parquet(runs.reset_index(drop=True), group_dir(group) / "runs.parquet")
    # a session's folders hold the runs of its earlier merges too: shard only the runs this merge adds or retrained
    seen = dict(zip(old_runs["run_id"], old_runs["finished_at"])) if len(old_runs) else {}
    fresh = [r for r, f in zip(new_runs["run_id"], new_runs["finished_at"]) if r not in seen or seen[r] != f]
    write_shard(group_dir(group), new_curves[new_curves["run_id"].isin(fresh)])
    return len(runs)


def _hp_cells(group: str) -> set[tuple]:
    """(arch, size, configured tokens, seed) of every run the group's HP parts plan. Edge extension adds LR/batch
    points inside these cells; later parts' extra seeds at the tuned point fall outside them."""
    cells: set[tuple] = set()
    for part in PARTS:
        if part.group == group and part.is_hp and part.grid:
            cfgs, _ = expand(part)
            cells |= {(c.model.arch, c.model.size, c.train.tokens, c.train.seed) for c in cfgs}
    return cells


def write_tuned(group: str = "main", path: Path | str | None = None) -> dict:
    """The best (lr, batch) per (arch, size) among the HP grid's runs (mean final loss over seeds; the grid point
    itself, not the interpolated optimum, so that later parts train a configuration that was seen to be stable).

    An entry, once written, is kept: every run planned from it (later parts, --done-from tables) has it in its run
    id. New (arch, size) pairs are added. Only the HP parts' own runs rank: a later part's extra seeds at the tuned
    point (v2-speedup) are not the HP grid's evidence. The HP parts of a group tune disjoint sizes, so a study run
    from scratch writes the same file."""
    runs = committed(group)
    if runs.empty:
        raise ConfigError(f"results/study/{group}/runs.parquet", "no runs yet: run the hp part first")
    ok = runs[runs["status"].eq("completed") & runs["final_val_loss"].notna()]
    cells = _hp_cells(group)
    key = zip(ok["arch"], ok["size"], ok["cfg.train.tokens"], ok["seed"])
    ok = ok[[k in cells for k in key]]
    grid_runs = ok.groupby(["arch", "size", "tokens"])["lr"].transform("nunique") >= 3  # the LR scans
    m = (
        ok[grid_runs]
        .groupby(["arch", "size", "lr", "batch_size"], as_index=False)["final_val_loss"]
        .agg(["mean", "count"])
    )
    best: dict = {}
    for (arch, size), g in m.groupby(["arch", "size"]):
        r = g.sort_values("mean").iloc[0]
        best.setdefault(arch, {})[size] = {
            "lr": float(r["lr"]),
            "batch_size": int(r["batch_size"]),
            "final_val_loss": round(float(r["mean"]), 5),
            "n_seeds": int(r["count"]),
        }
    out = Path(path) if path else TUNED
    old = (yaml.safe_load(out.read_text()) or {}) if out.is_file() else {}
    for arch, by_size in old.items():  # a written entry never changes: runs planned from it keep their run ids
        for size, entry in by_size.items():
            new = best.get(arch, {}).get(size)
            if new and (new["lr"], new["batch_size"]) != (entry["lr"], entry["batch_size"]):
                now = f"lr {new['lr']:g}, batch {new['batch_size']}"
                print(f"{out}: {arch} {size} stays at lr {entry['lr']:g}, batch {entry['batch_size']} (its HP runs "
                      f"now rank {now} first; delete the entry to re-tune)")  # fmt: skip
            best.setdefault(arch, {})[size] = entry
    text = f"# written by `ant study run` from results/study/{group} (the HP grid's best point)\n"
    atomic_write_text(out, text + yaml.safe_dump(best, sort_keys=True))
    return best


# ---------------------------------------------------------------------------------------------- planning
def expand(part: Part) -> tuple[list, bool]:
    """The part's run configs; (configs, provisional): an (arch, size) that tuned.yaml does not hold yet (the part
    that tunes it has not run) is planned at a provisional lr 1e-2 / batch 8, good enough for a time estimate."""
    text = (ROOT / part.grid).read_text()
    provisional = False
    if part.needs_tuned or part.name == "v2-heldout":
        from ant.models.sizes import SIZES  # late: the ladder's names only

        archs, sizes = ("gpt", "gptplus", "ngpt", "angpt"), list(SIZES)
        tuned = {a: {s: {"lr": 1e-2, "batch_size": 8} for s in sizes} for a in archs}
        src = part.tuned_path if part.name != "v2-heldout" else Path("results/study/v2/predicted_hps.yaml")
        have = (yaml.safe_load(src.read_text()) or {}) if src.is_file() else {}
        for arch, by_size in have.items():
            tuned.setdefault(arch, {}).update(by_size)
        tmp = Path(tempfile.mkdtemp()) / "tuned.yaml"
        tmp.write_text(yaml.safe_dump(tuned))
        cfgs = Grid.from_dict(yaml.safe_load(text.replace(str(src), str(tmp))), path=ROOT / part.grid).expand()
        provisional = any(c.model.size not in have.get(c.model.arch, {}) for c in cfgs)
        if not provisional:  # every entry is tuned: expand against the real file (its path is in the run config)
            cfgs = Grid.from_dict(yaml.safe_load(text), path=ROOT / part.grid).expand()
        return cfgs, provisional
    return Grid.from_dict(yaml.safe_load(text), path=ROOT / part.grid).expand(), False


def plan(parts: list[Part]) -> list[dict]:
    out = []
    for part in parts:
        if not part.grid:  # a step that trains nothing (v2-predict)
            from ant.analysis.study_v2 import PREDICTION  # late: scipy

            out.append({"part": part.name, "claims": part.claims, "runs": 0, "committed": 0,
                        "todo": 0 if PREDICTION.is_file() else 1, "est_s": 0.0, "est_total_s": 0.0,
                        "provisional": False, "reserve_s": 0.0})  # fmt: skip
            continue
        cfgs, provisional = expand(part)
        executor = (yaml.safe_load((ROOT / part.grid).read_text()) or {}).get("executor") or {}
        runs = committed(part.group)
        rows, _ = build_plan(cfgs, concurrency=2, pack=int(executor.get("pack") or 0),
                             measured=measured_summaries(runs))  # fmt: skip
        have = set(runs.loc[runs["status"].isin(FINISHED), "run_id"]) if len(runs) else set()
        todo = [r for r in rows if r.run_id not in have and r.state not in ("done", "diverged")]
        out.append(
            {
                "part": part.name,
                "claims": part.claims,
                "runs": len(rows),
                "committed": sum(r.run_id in have for r in rows),
                "todo": len(todo),
                "est_s": _wall(todo),
                "est_total_s": _wall(rows),
                "provisional": provisional,
                # edge extension adds runs only where an optimum sits on an edge: a 15 % reserve, not a bound
                "reserve_s": EXTEND_RESERVE * _wall(todo) if part.extend else 0.0,
            }
        )
    return out


def _wall(rows: list) -> float:
    """Wall time of the local pool (two single-thread workers): longest-first list scheduling of the estimates."""
    loads = [0.0, 0.0]
    for est in sorted((r.est_s for r in rows), reverse=True):
        loads[loads.index(min(loads))] += est
    return max(loads)


def print_plan(p: list[dict]) -> None:
    print(f"{'part':<11} {'runs':>5} {'in git':>7} {'to run':>7} {'est. wall':>10} {'+extend':>8} {'(all runs)':>11}"
          "  claims")  # fmt: skip
    for r in p:
        note = " (provisional HPs: the tuned file lacks some (arch, size) yet)" if r["provisional"] else ""
        ext = fmt_time(r["reserve_s"]) if r.get("reserve_s") else "—"
        print(f"{r['part']:<11} {r['runs']:>5} {r['committed']:>7} {r['todo']:>7} {fmt_time(r['est_s']):>10} "
              f"{ext:>8} {fmt_time(r['est_total_s']):>11}  {r['claims']}{note}")  # fmt: skip
    todo = sum(r["est_s"] + r.get("reserve_s", 0.0) for r in p)
    print(f"total: {fmt_time(todo)} still to run (extension reserve included), two runs at a time")


def extensions(part: Part) -> list[dict]:
    """The runs edge extension added to a part (results/sweeps/<grid name>/extensions.json)."""
    from ant.sweep.extend import read_log  # late: only parts with edge extension read its log

    grid = Grid.from_dict(yaml.safe_load((ROOT / part.grid).read_text()), path=ROOT / part.grid)
    return read_log(Path(grid.out_dir).parent / "sweeps" / grid.name / "extensions.json")


# ---------------------------------------------------------------------------------------------- running
def run(parts: list[Part], force: bool) -> int:
    log_path = STUDY / "parts.json"
    log = json.loads(log_path.read_text()) if log_path.is_file() else {}
    for part in parts:
        if part.needs_tuned and not part.tuned_path.is_file():
            print(f"part {part.name}: writing {part.tuned_path} from the HP grid first")
            write_tuned(part.group, part.tuned_path)
        if not part.grid:  # v2-predict: the preregistered prediction, once
            from ant.analysis.study_v2 import PREDICTION, write_prediction  # late: scipy

            if PREDICTION.is_file():
                print(f"part {part.name}: {PREDICTION} exists; skipped")
                continue
            write_prediction()
            print(f"part {part.name}: wrote {PREDICTION}; commit it (git add results/study/v2; git commit) and rerun "
                  "`make study`: the held-out part trains only after the prediction is in git")  # fmt: skip
            return 0
        if part.name == "v2-heldout":
            from ant.analysis.study_v2 import prediction_committed  # late: scipy

            why = prediction_committed()
            if why:
                raise ConfigError("part v2-heldout", why)
        [p] = plan([part])
        if p["todo"] == 0 and not force:
            print(f"part {part.name}: all {p['runs']} runs are in {group_dir(part.group)}/runs.parquet; skipped")
            continue
        print(f"== part {part.name} ({part.claims}): {p['todo']} of {p['runs']} runs to do, est. "
              f"{p['est_s'] / 60:.1f} min wall")  # fmt: skip
        t0 = time.time()
        cmd = ["ant.sweep.extend"] if part.extend else ["ant.cli", "sweep"]
        table = group_dir(part.group) / "runs.parquet"  # committed runs: done, though trained in another session
        done = ["--done-from", str(table)] if table.is_file() else []
        rc = subprocess.call([sys.executable, "-m", *cmd, str(ROOT / part.grid), *done])
        wall = time.time() - t0
        n = merge_group(part.group)
        log[part.name] = {"runs": p["runs"], "ran": p["todo"], "est_wall_s": round(p["est_s"], 1),
                          "wall_s": round(wall, 1), "exit_code": rc,
                          "finished": time.strftime("%Y-%m-%d %H:%M")}  # fmt: skip
        if part.extend:
            added = extensions(part)
            log[part.name]["extensions"] = len(added)
            if added:  # the committed copy: tests/test_identity.py resolves extension run ids from it
                grid_name = yaml.safe_load((ROOT / part.grid).read_text())["name"]
                atomic_write_text(group_dir(part.group) / f"extensions-{grid_name}.json",
                                  json.dumps(added, indent=1, default=str) + "\n")  # fmt: skip
        atomic_write_text(log_path, json.dumps(log, indent=1) + "\n")
        print(f"part {part.name}: {wall / 60:.1f} min wall (estimated {p['est_s'] / 60:.1f}); "
              f"{group_dir(part.group)} now holds {n} runs")  # fmt: skip
        if part.is_hp:
            write_tuned(part.group, part.tuned_path)
        if rc not in (0,):
            print(f"part {part.name}: ant sweep exited {rc}; rerun `ant study run` to resume")
            return rc
    return 0


def report() -> int:
    # late: the fits and figures import scipy and matplotlib, which `ant study plan` and `run` do not need
    from ant.analysis import fit_laws, make_figures, study_report
    from ant.analysis import report as main_report  # late: as above

    for group in ("main",):
        if (group_dir(group) / "runs.parquet").is_file():
            args = ["--results", str(group_dir(group))]
            fit_laws.main([*args, "--no-reference"])
            make_figures.main(args)
            main_report.main(args)
    return study_report.main(["--study", str(STUDY)])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("command", choices=("plan", "run", "report"))
    ap.add_argument("--part", nargs="+", choices=list(BY_NAME), help="only these parts (default: all, in order)")
    ap.add_argument("--force", action="store_true", help="rerun parts whose runs are already committed")
    args = ap.parse_args(argv)
    parts = [BY_NAME[n] for n in args.part] if args.part else list(PARTS)
    try:
        if args.command == "plan":
            print_plan(plan(parts))
            return 0
        if args.command == "run":
            return run(parts, args.force)
        return report()
    except ConfigError as e:
        print(f"study: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
