"""`ant sweep FILE`: plan (--dry-run), launch (local pool or SLURM array) or inspect (--status) a grid of runs.

    ant sweep sweeps/small.yaml --dry-run        # the table, totals and time estimate; launches nothing
    ant sweep sweeps/small.yaml                  # run what is missing (local: waits; slurm: submits, returns)
    ant sweep sweeps/paper.yaml --status         # per-run state from run folders + squeue/sacct
    ant sweep sweeps/paper.yaml --status --json  # the same as one JSON document (rows, counts, totals)
    ant sweep sweeps/gpu.yaml --set train.device=cuda --concurrency 1

Submitted SLURM jobs are remembered in results/sweeps/<name>/jobs.json (run_id -> job id), so --status can ask
the queue about them later and a second submission does not queue runs that are already queued.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from ant.config import assign, parse_assignment
from ant.data import load_tokens
from ant.errors import ConfigError, int_in
from ant.fsio import atomic_write_text, check_out_dir
from ant.sweep.checks import MAX_RUN_HOURS, check_against_data, data_key, warn_long_runs
from ant.sweep.executors import EXECUTORS, ExecutorSettings, local_layout, run_local, work_units
from ant.sweep.grid import MAX_RUNS, Grid, axis_of
from ant.sweep.packing import packing_line
from ant.sweep.plan import build_plan, committed_runs
from ant.sweep.plan_table import format_plan, plan_json
from ant.sweep.slurm import LIVE_STATES, finished, slurm_output, squeue_states, submit_slurm


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", help="grid YAML (sweeps/*.yaml)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the plan and totals; launch nothing")
    mode.add_argument("--status", action="store_true", help="per-run state from run folders and the SLURM queue")
    p.add_argument("--json", action="store_true", help="with --dry-run or --status: the plan as JSON, for scripts")
    p.add_argument("--executor", choices=EXECUTORS, help="override the grid file's executor.name")
    p.add_argument(
        "--concurrency", type=int_in(1, 4096), help="local: runs in parallel (overrides executor.concurrency)"
    )
    p.add_argument("--wait", action="store_true", help="slurm: block until every submitted job has finished")
    p.add_argument("--out-dir", help="override the grid's out_dir (where run folders go)")
    p.add_argument("--done-from", metavar="RUNS.parquet",
                   help="a collected runs table: its finished runs count as done, their folders gone")  # fmt: skip
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a base config field for every run, e.g. --set train.device=cpu")  # fmt: skip
    p.add_argument("--max-runs", type=int_in(1, 10**9), default=MAX_RUNS,
                   help="refuse a grid that plans more runs than this (default %(default)s)")  # fmt: skip
    p.add_argument("--max-run-hours", type=float, default=MAX_RUN_HOURS,
                   help="warn about runs estimated to take longer than this (default %(default)g)")  # fmt: skip


def load(args: argparse.Namespace) -> tuple[Grid, ExecutorSettings]:
    grid = Grid.from_yaml(args.file)
    for a in args.set:
        key, value = parse_assignment(a)
        axis = axis_of(grid, key)
        if axis is not None:  # --set changes the base, which the axis overrides for every run: it would do nothing
            msg = f"{key} is the grid axis {axis} in {args.file}; --set would be ignored: edit the axis"
            raise ConfigError(f"--set {key}", msg, "--set on a config field that is not an axis")
        assign(grid.base, key, value)
    if args.out_dir:
        grid.out_dir = args.out_dir
    check_out_dir("--out-dir" if args.out_dir else "out_dir", grid.out_dir)
    ex = dict(grid.executor)
    if args.executor:
        ex["name"] = args.executor
    if args.concurrency is not None:
        ex["concurrency"] = args.concurrency
    return grid, ExecutorSettings.from_dict(ex)


def sweep_dir(grid: Grid) -> Path:
    return Path(grid.out_dir).parent / "sweeps" / grid.name


def run(args: argparse.Namespace) -> int:
    as_json = getattr(args, "json", False)
    if as_json and not (args.dry_run or args.status):
        raise ConfigError("--json", "only with --dry-run or --status", ["--dry-run --json", "--status --json"])
    grid, settings = load(args)
    t0 = time.time()
    cfgs = grid.expand(max_runs=getattr(args, "max_runs", MAX_RUNS), progress=None if as_json else _Progress(t0))
    if not as_json:  # stdout is the JSON document alone
        print(f"sweep {grid.name}: {len(cfgs)} runs from {args.file} (planned in {time.time() - t0:.1f} s)")
    jobs = load_jobs(grid)
    if jobs:
        refresh_slurm_states(jobs)
    workers = local_layout(settings, len(cfgs))[0] if settings.name == "local" else settings.array_parallelism
    rows, tp = build_plan(cfgs, concurrency=workers, estimate=grid.estimate, jobs=jobs, live=args.status,
                          pack=settings.pack)  # fmt: skip
    warn_long_runs(rows, args.max_run_hours)
    if as_json:
        print(json.dumps({"sweep": grid.name, "file": str(args.file), **plan_json(rows, tp, concurrency=workers)}))
        return 0
    if args.dry_run or args.status:
        print(format_plan(rows, tp, concurrency=workers, show_jobs=bool(jobs)))
        if args.dry_run:
            print(packing_line(cfgs, settings.pack))
        return 0
    busy = ("done", "diverged", "running", "queued")
    elsewhere = committed_runs(args.done_from) if getattr(args, "done_from", None) else {}
    todo = [c for c, r in zip(cfgs, rows) if r.state not in busy and r.run_id not in elsewhere]
    skipped = len(cfgs) - len(todo)
    tabled = f"; {sum(r.run_id in elsewhere for r in rows)} done per {args.done_from}" if elsewhere else ""
    print(f"{len(todo)} to run, {skipped} done, diverged, running or queued (skipped){tabled}")
    if settings.name == "local" and any(c.train.devices * c.train.num_nodes > 1 for c in todo):
        why = "the local executor trains each run in one worker process; runs on several devices need the slurm "
        raise ConfigError("train.devices", why + "executor (or `ant train`, one run at a time)", ["1"])
    check_against_data(todo, prepare_data(todo))  # exit 2 here, before any lock, attempt log or worker
    if settings.name == "local":
        results = run_local(todo, settings, all_cfgs=cfgs)  # all_cfgs: a wsd family's finished trunk
        return _report(results, grid)
    return _submit(work_units(todo, cfgs), settings, grid, wait=args.wait)


class _Progress:
    """Planning a large grid takes a while (each run is resolved): after PLAN_QUIET_S without output, one line on
    stderr every few seconds says how far it is, so a long plan is not mistaken for a hang."""

    def __init__(self, t0: float):
        self.t0, self.last = t0, t0 + PLAN_QUIET_S - PLAN_EVERY_S

    def __call__(self, done: int, total: int) -> None:
        now = time.time()
        if now - self.last >= PLAN_EVERY_S:
            self.last = now
            print(f"planning: {done:,} of up to {total:,} runs resolved ({now - self.t0:.0f} s)", file=sys.stderr)


PLAN_QUIET_S, PLAN_EVERY_S = 3.0, 5.0


def prepare_data(cfgs: list) -> dict[str, Any]:
    """Build each distinct corpus + tokenizer + token set once, here, with progress, before any worker starts:
    workers would otherwise wait in silence on the cache lock while the first one builds it. Returns the token
    data by data_key."""
    data: dict[str, Any] = {}
    for cfg in cfgs:
        if data_key(cfg) not in data:
            data[data_key(cfg)] = load_tokens(cfg.data, progress=True)
    return data


def _report(results: list[dict[str, Any]], grid: Grid) -> int:
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    print(f"sweep {grid.name}: " + (", ".join(f"{v} {k}" for k, v in sorted(counts.items())) or "nothing to do"))
    print(f"run folders: {grid.out_dir}/")
    failed = [r for r in results if r["status"] == "failed"]
    for r in failed:
        print(f"  failed: {r['run_id']}: {r.get('error')}")
    return 1 if failed else 0


# ---------------------------------------------------------------------- SLURM bookkeeping
def _submit(units: list[list], settings: ExecutorSettings, grid: Grid, wait: bool) -> int:
    """One array task per work unit: a run, or a wsd family (trunk, then its branches)."""
    if not units:
        return 0
    if shutil.which("sbatch") is None:
        raise ConfigError("executor.name", "slurm: sbatch not found (start a cluster: make slurm-start)", EXECUTORS)
    folder = Path(settings.log_dir) if settings.log_dir else sweep_dir(grid) / "slurm"
    jobs_list = submit_slurm(units, settings, folder.resolve(), grid.name)
    jobs = load_jobs(grid)
    for unit, job in zip(units, jobs_list):
        for cfg in unit:  # every member of a family maps to its unit's task
            jobs[cfg.run_id()] = {"job_id": job.job_id, "folder": str(folder.resolve()), "submitted": time.time()}
    save_jobs(grid, jobs)
    array = jobs_list[0].job_id.split("_")[0]
    n_runs = sum(len(u) for u in units)
    tasks = f" in {len(jobs_list)} tasks (one per wsd family)" if n_runs != len(jobs_list) else ""
    print(f"submitted {n_runs} run(s) as SLURM array {array}{tasks}; logs in {folder}/")
    print(f"check progress with: ant sweep {grid.path} --status")
    if not wait:
        return 0
    done, failed, t0 = 0, 0, time.time()
    pending = list(zip(units, jobs_list))
    while pending:
        still = []
        for unit, job in pending:
            if not finished(job):  # not job.done(): a requeue in flight is not a failure
                still.append((unit, job))
                continue
            try:
                r = job.results()[0]  # task 0: rank 0 of a data-parallel job speaks for the run (1 task: the one)
                statuses = [x.get("status", "?") for x in (r if isinstance(r, list) else [r])]
            except Exception as e:  # FailedJobError carries the run's traceback
                failed += 1
                statuses = [f"failed ({str(e).strip().splitlines()[-1][:120]})"]
            for cfg, status in zip(unit, statuses + statuses[-1:] * (len(unit) - len(statuses))):
                done += 1
                print(f"[{done}/{n_runs}] {status:9s} {cfg.run_id()} | elapsed {time.time() - t0:.0f}s")
        pending = still
        if pending:
            time.sleep(2)
    return 1 if failed else 0


def jobs_path(grid: Grid) -> Path:
    return sweep_dir(grid) / "jobs.json"


def load_jobs(grid: Grid) -> dict[str, dict[str, Any]]:
    p = jobs_path(grid)
    if not p.is_file():
        return {}
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError:
        return {}


def save_jobs(grid: Grid, jobs: dict[str, dict[str, Any]]) -> None:
    p = jobs_path(grid)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(p, json.dumps(jobs, indent=1, sort_keys=True))


def refresh_slurm_states(jobs: dict[str, dict[str, Any]]) -> None:
    """Fill `slurm_state` from squeue (live jobs) and sacct (finished ones, when accounting is on)."""
    parents = sorted({j["job_id"].split("_")[0] for j in jobs.values()})
    states: dict[str, str] = {}
    if shutil.which("sacct"):
        out = slurm_output(["sacct", "-n", "-P", "-X", "-o", "JobID,State", "-j", ",".join(parents)])
        for line in (out or "").splitlines():
            if "|" in line:
                jid, state = line.split("|", 1)
                states[jid.strip()] = state.split()[0] if state.strip() else ""
    live = squeue_states(parents) if shutil.which("squeue") else None
    if live is not None:  # squeue is authoritative for live jobs (sacct lags behind requeues and kills):
        # a job squeue does not list is not live, whatever sacct still says
        states = {j: s for j, s in states.items() if s not in LIVE_STATES} | live
    for j in jobs.values():
        known = j.get("slurm_state", "")
        j["slurm_state"] = states.get(j["job_id"], "" if live is not None and known in LIVE_STATES else known)
