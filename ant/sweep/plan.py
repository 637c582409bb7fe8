"""The plan of a sweep: one row per run with its size, budget, FLOPs, estimated wall time and current state.

State comes from files only (design.md: a run folder is the unit of truth), plus the SLURM queue when the sweep
was submitted there:
    done        summary.json says completed
    diverged    summary.json says diverged (finished: a re-run leaves it alone)
    failed      summary.json says failed, or the last attempt recorded an error before train() wrote one
    running     some process holds the run's lock (ant.sweep.locks)
    queued      a SLURM job for it is pending
    interrupted a run folder without a finished summary and nobody holding the lock: the next sweep resumes it
    missing     no run folder

Time estimates divide the run's FLOPs by a FLOP/s figure, chosen in this order (the table says which one):
  1. measured: tokens/s of finished runs of the same (device, arch, size, batch, seq_len) in this sweep's out_dir;
  2. a results/bench/*.json (`ant bench`) row of the same (arch, size, batch, seq_len, vocab) -- e.g. the CPU
     study's calibration files -- gives the step time directly (the Lightning step when measured), and the run's
     evaluations and start-up are added (ant.sweep.throughput.overheads_s);
  3. the median achieved FLOP/s (flops / wall_time_s) of all finished runs on that device;
  4. other bench rows with tokens_per_s, converted with the model's FLOPs/token;
  5. table: a rough device table (peak x an MFU guess), or the grid file's `estimate: {device, flops_per_s}`.

wsd families (runs differing only in their budget, ant.train.branches) are trained as one unit: the trunk, then
branches that train only their decay from the trunk's checkpoint. The table marks them (`family` column: F1
trunk, F1 @s = a branch leaving the trunk at step s), a branch's est.time counts only its decay, and the totals
give the FLOPs actually trained next to the FLOPs of the budgets.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ant import runfolder
from ant.config import RunConfig
from ant.errors import ConfigError
from ant.sweep.locks import is_locked, lock_dir, read_attempts
from ant.sweep.progress import live
from ant.sweep.throughput import Throughput, device_kind, flops_per_token, overheads_s


@dataclass
class PlanRow:
    run_id: str
    arch: str
    size: str
    num_params: int
    tokens: int
    batch_size: int
    lr: float
    seed: int
    flops: float
    est_s: float
    state: str
    final_val_loss: float | None = None
    job: str | None = None
    family: str | None = None  # "F1 trunk" / "F1 @120" (a branch from step 120) for wsd families, else None
    train_flops: float | None = None  # FLOPs this run trains itself: a branch only its decay
    # --status only (ant.sweep.progress): how far the run has got, from its folder
    step: int | None = None
    tokens_per_s: float | None = None
    age_s: float | None = None  # seconds since its newest metric was written
    commit: str | None = None
    devices: int = 1  # train.devices x train.num_nodes: est_s is wall time on all of them (issue 15)
    gpu: bool = False  # a cuda run: devices x est_s is GPU time


# ---------------------------------------------------------------------- FLOPs and throughput
class FolderScan:
    """What --status and --dry-run need from an out_dir, read in one pass: the run folders' names and their
    summary.json, and the names of the files under .locks/. Each run's state then costs no file access, except a
    lock probe for runs that have a lock file and the attempt log for runs that have one and no final summary."""

    def __init__(self, out_dir: str | Path):
        self.out_dir = Path(out_dir)
        self.folders: set[str] = set()
        self.summaries: dict[str, dict[str, Any]] = {}  # folder name -> parsed summary.json (readable ones)
        for entry in _scandir(self.out_dir):
            # dot-folders are bookkeeping (.locks), not runs; summaries there were never read (glob "*/...")
            if entry.name.startswith(".") or not entry.is_dir():
                continue
            self.folders.add(entry.name)
            try:
                with open(os.path.join(entry.path, runfolder.SUMMARY), "rb") as f:
                    summary = json.loads(f.read())
            except (OSError, ValueError):  # none yet, being written, or not JSON: the folder has no summary
                continue
            if isinstance(summary, dict):
                self.summaries[entry.name] = summary
        self.locks = lock_dir(self.out_dir)
        self.lock_files = {e.name for e in _scandir(self.locks)}

    def state(self, run_id: str, job: dict[str, str] | None) -> tuple[str, float | None, str | None]:
        locks = self.locks
        return _state(
            self.summaries.get(run_id),
            job,
            lambda: f"{run_id}.lock" in self.lock_files and is_locked(locks, run_id),
            lambda: read_attempts(locks, run_id) if f"{run_id}.attempts" in self.lock_files else [],
            run_id in self.folders,
        )


def _scandir(path: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def committed_runs(path: str | Path) -> dict[str, float | None]:
    """run_id -> final val loss of the finished (completed or diverged) runs in a collected runs table
    (`ant collect`, a study group's runs.parquet). A study trained in one session and committed as tables has no
    run folders in the next: `--done-from TABLE` lets `ant sweep` and the edge extension count those runs as done
    instead of training them again."""
    import pandas as pd  # late: only --done-from reads a table; plain planning imports no pandas

    if not Path(path).is_file():
        raise ConfigError("--done-from", f"no runs table at {path}")
    runs = pd.read_parquet(path, columns=["run_id", "status", "final_val_loss"])
    done = runs[runs["status"].isin(["completed", "diverged"])]
    return {r: (None if pd.isna(v) else float(v)) for r, v in zip(done["run_id"], done["final_val_loss"])}


# ---------------------------------------------------------------------- state
def run_state(cfg: RunConfig, jobs: dict[str, dict[str, str]] | None = None) -> tuple[str, float | None, str | None]:
    """(state, final_val_loss, slurm job) of one run, from its folder, its lock and the SLURM queue.
    build_plan gets the same from one FolderScan of the out_dir instead of these per-run reads."""
    run_id = cfg.run_id()
    run_dir = cfg.run_dir()
    locks = lock_dir(cfg.out_dir)
    summary = None
    if (run_dir / runfolder.SUMMARY).is_file():
        try:
            summary = json.loads((run_dir / runfolder.SUMMARY).read_text())
        except (OSError, json.JSONDecodeError):
            summary = None
    return _state(
        summary if isinstance(summary, dict) else None,
        (jobs or {}).get(run_id),
        lambda: is_locked(locks, run_id),
        lambda: read_attempts(locks, run_id),
        run_dir.is_dir(),
    )


def _state(
    summary: dict[str, Any] | None,
    job: dict[str, str] | None,
    locked: Callable[[], bool],
    attempts_of: Callable[[], list[dict[str, Any]]],
    has_dir: bool,
) -> tuple[str, float | None, str | None]:
    # `locked` and `attempts_of` are called only when the summary does not settle the state: most runs of a
    # large sweep are finished, and a lock probe or an attempt log is a file access each
    job_id = job.get("job_id") if job else None
    status = (summary or {}).get("status")
    loss = (summary or {}).get("final_val_loss")
    if status == "completed":
        return "done", loss, job_id
    if status == "diverged":
        return "diverged", loss, job_id
    if locked():
        return "running", loss, job_id
    if job and job.get("slurm_state") in ("PENDING", "REQUEUED", "CONFIGURING"):
        return "queued", loss, job_id
    if job and job.get("slurm_state") == "RUNNING":
        return "running", loss, job_id
    attempts = attempts_of()
    last_end = next((a for a in reversed(attempts) if a.get("event") == "end"), None)
    if status == "failed" or (last_end and last_end.get("status") == "failed" and attempts[-1] is last_end):
        return "failed", loss, job_id
    if has_dir or attempts:
        return "interrupted", loss, job_id
    return "missing", loss, job_id


def build_plan(
    cfgs: list[RunConfig],
    concurrency: int = 1,
    estimate: dict | None = None,
    jobs: dict[str, dict[str, str]] | None = None,
    bench_dir: Path = Path("results/bench"),
    live: bool = False,
    pack: int = 0,
    measured: list[dict[str, Any]] | None = None,
) -> tuple[list[PlanRow], Throughput]:
    """One row per run. The run folders are read in one pass per out_dir (FolderScan); no model is built.
    `live` (--status) adds each run folder's step, last val loss, tokens/s, metric age and commit. `pack`: the
    executor's pack setting; runs that will train packed are estimated from packed runs' rates where there are
    some (a packed run's share of its worker), else as if alone (an upper bound). `measured`: summaries of runs
    whose folders are elsewhere (a committed study table: ant.analysis.study_tables.measured_summaries), rates to
    estimate from beside the folders' own (a folder's summary wins for the same run id)."""
    scans: dict[str, FolderScan] = {}
    for c in cfgs:
        if c.out_dir not in scans:
            scans[c.out_dir] = FolderScan(c.out_dir)
    first = next(iter(scans.values()), None)
    summaries = {str(m.get("run_id")): m for m in measured or []} | (first.summaries if first else {})
    tp = Throughput(list(summaries.values()), bench_dir, estimate)
    roles = family_roles(cfgs)
    packed: set[str] = set()
    if pack >= 2:
        from ant.sweep.packing import pack_groups  # late: only a packed sweep asks, and it loads ant.train modules

        packed = {c.run_id() for g in pack_groups(cfgs, pack) for c in g}
    rows = []
    for c in cfgs:
        run_id = c.run_id()  # a hash of the whole config: computed once per run
        flops = flops_per_token(c) * c.train.tokens
        family, start = roles.get(run_id, (None, 0))
        trained = flops * (c.steps - start) / c.steps
        rate = tp.flops_per_s(c, packed=run_id in packed)
        # a worker of a CPU pool gets 1/concurrency of the machine (GPUs: one per worker); measured runs already
        # ran under that sharing
        cpu = device_kind(c.train.device) == "cpu" and not (estimate or {}).get("device")
        if tp.last_exact_bench:  # a single-thread step time: one run per core, plus what the step time leaves out
            est = trained / rate + overheads_s(c, trained / rate, start)
        else:
            est = trained / rate * (concurrency if cpu and not tp.last_measured else 1)
        state, loss, job = scans[c.out_dir].state(run_id, (jobs or {}).get(run_id))
        m, t = c.model, c.train
        # data-parallel: the rate is one device's; W devices share the work (linear scaling assumed: DDP's
        # all-reduce overlaps the backward, measured runs correct the estimate as they finish)
        world = t.devices * t.num_nodes
        gpu = device_kind((estimate or {}).get("device", t.device)) != "cpu"
        rows.append(PlanRow(run_id, m.arch, m.size, c.num_params or 0, t.tokens, t.batch_size, c.optim.lr,
                            t.seed, flops, est / world, state, loss, job, family, trained, devices=world,
                            gpu=gpu))  # fmt: skip
        if live and run_id in scans[c.out_dir].folders:
            _add_live(rows[-1], scans[c.out_dir], time.time())
    return rows, tp


def _add_live(row: PlanRow, scan: FolderScan, now: float) -> None:
    got = live(scan.out_dir / row.run_id, scan.summaries.get(row.run_id), row.state in ("done", "diverged"), now)
    row.step, row.tokens_per_s, row.age_s, row.commit = got.step, got.tokens_per_s, got.age_s, got.commit
    if got.val_loss is not None:
        row.final_val_loss = got.val_loss


def family_roles(cfgs: list[RunConfig]) -> dict[str, tuple[str, int]]:
    """run_id -> ("F<k> trunk" | "F<k> @<step>", the step the run starts training at) for members of wsd
    families (ant.train.branches.find_families); other runs are absent."""
    wsd = [c for c in cfgs if c.optim.schedule == "wsd"]  # only wsd runs make families
    if not wsd:
        return {}  # and ant.train.branches (which imports Lightning) stays unimported
    from ant.train.branches import branch_steps, find_families  # late: ant.train imports Lightning

    roles: dict[str, tuple[str, int]] = {}
    families = [f for f in find_families(wsd) if len(f) > 1]
    for k, fam in enumerate(families, 1):
        roles[fam[0].run_id()] = (f"F{k} trunk", 0)
        for run_id, step in branch_steps(fam).items():
            roles[run_id] = (f"F{k} @{step}", step)
    return roles
