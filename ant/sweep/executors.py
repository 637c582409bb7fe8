"""Where the runs of a sweep execute: a local process pool or SLURM (through submitit).

Both call the same `run_one(config)` in a worker, which takes the run's lock (ant.sweep.locks), skips runs that
are already finished, and calls `ant.train.train`, which resumes from the run folder's newest checkpoint. So
re-running a sweep only does what is missing, and two sweeps started at once never train one run twice.

local: a real concurrency cap (submitit's LocalExecutor starts every job at once, anchors C1). Workers are
    spawned processes (no fork after torch is imported); each owns one GPU (CUDA_VISIBLE_DEVICES) when there are
    GPUs, and the CPU threads are divided between workers (train.num_threads, which is not part of the run id).
slurm: one job array per submission, requeued by submitit at the time limit and resumed from the run's last
    checkpoint (ant.sweep.slurm).

A wsd family (runs differing only in their budget, ant.train.branches) is one unit of work on either executor:
`run_family` trains the trunk, then each branch from the trunk's checkpoint at its decay start, in one worker
(one SLURM array task), under each run's own lock; a stop request ends the unit after the current run.
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ant import recipe, runfolder
from ant.config import RunConfig
from ant.decode import build, check_int
from ant.errors import ConfigError, check_choice
from ant.status import FINISHED  # states a re-run leaves alone
from ant.sweep.locks import RunLock, lock_dir, record_attempt
from ant.sweep.packing import PackedUnit, pack_units
from ant.sweep.progress import SweepMonitor

EXECUTORS = ("local", "slurm")


@dataclass
class ExecutorSettings:
    """The grid file's `executor:` section."""

    name: str = "local"
    # local: parallel runs. 0 -> one per GPU, else 1. threads_per_run 0 -> CPU cores // concurrency.
    concurrency: int = 0
    threads_per_run: int = 0
    # local: train up to `pack` runs of one shape (differing only in LR/seed) in one worker (ant.sweep.packing);
    # 0: every run alone. Off by default: a new path, and a win only at the smallest sizes/batches (docs/study.md)
    pack: int = 0
    # slurm (submitit parameter names in brackets)
    partition: str | None = None  # [slurm_partition]
    account: str | None = None  # [slurm_account]
    timeout_min: int = 60  # [timeout_min] per job; longer runs are requeued and resume
    gpus_per_node: int = 0  # per device process: a job asks for gpus_per_node x train.devices GPUs per node
    cpus_per_task: int = 1
    mem_gb: float = 4.0
    array_parallelism: int = 64  # [slurm_array_parallelism]
    signal_delay_s: int = 90  # [slurm_signal_delay_s] USR2 this long before the time limit
    max_num_timeout: int = 20  # [slurm_max_num_timeout] requeues after time limits before giving up
    qos: str | None = None
    constraint: str | None = None
    setup: list[str] = field(default_factory=list)  # shell lines run before the job (module load ...)
    additional: dict[str, Any] = field(default_factory=dict)  # [slurm_additional_parameters]
    log_dir: str | None = None  # default results/sweeps/<name>/slurm

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> ExecutorSettings:
        """The section through the config's decoder (unknown keys and types name the field), then the ranges."""
        s = build(cls, dict(d or {}), prefix="executor.")
        check_choice("executor.name", s.name, EXECUTORS)
        for k in ("concurrency", "threads_per_run", "pack", "gpus_per_node", "max_num_timeout", "signal_delay_s"):
            check_int(f"executor.{k}", getattr(s, k), minimum=0)
        for k in ("timeout_min", "cpus_per_task", "array_parallelism"):
            check_int(f"executor.{k}", getattr(s, k), minimum=1)
        if s.pack and s.name != "local":
            raise ConfigError("executor.pack", "packed workers are a local-executor option", [0])
        return s


# ---------------------------------------------------------------------- the worker (local and SLURM)
def run_one(
    cfg_dict: dict[str, Any],
    threads: int = 0,
    raise_errors: bool = False,
    family: list[dict[str, Any]] | None = None,
    callbacks: list | None = None,
) -> dict[str, Any]:
    """Train one run unless it is finished or being trained elsewhere. Returns {run_id, status, ...}.
    `family`: the resolved wsd family this run belongs to, trunk first (ant.sweep.families.train_member).
    `callbacks`: extra Lightning callbacks for the run's Trainer (the tune worker's pruning reporter)."""
    cfg = RunConfig.from_dict(cfg_dict)
    run_id = cfg.run_id()
    if cfg.train.devices * cfg.train.num_nodes > 1 and int(os.environ.get("SLURM_PROCID", "0")) > 0:
        # another task of a data-parallel SLURM job: it trains alongside rank 0, which alone takes the run's
        # lock and writes the attempts (and the run folder, ant.train.distributed)
        from ant.train.run import train  # late: ant.train imports Lightning (see below)

        cfg.train.num_threads = threads or cfg.train.num_threads
        return {"run_id": run_id, "status": train(cfg, progress=False).summary.get("status"), "rank": "follower"}
    locks = lock_dir(cfg.out_dir)
    lock = RunLock(locks, run_id)
    if not lock.acquire():
        return {"run_id": run_id, "status": "locked"}  # another sweep trains it right now
    try:
        state = run_state(cfg.run_dir())
        if state in FINISHED:  # checked under the lock: a concurrent sweep may just have finished it
            return {"run_id": run_id, "status": "skipped", "state": state}
        if threads:
            cfg.train.num_threads = threads
        job = os.environ.get("SLURM_ARRAY_JOB_ID", os.environ.get("SLURM_JOB_ID"))
        task = os.environ.get("SLURM_ARRAY_TASK_ID")
        job_id = f"{job}_{task}" if job and task else job
        record_attempt(locks, run_id, event="start", job_id=job_id, resumed=state is not None)
        t0 = time.time()
        # late: ant.train imports Lightning, which planning and --status (this module's other users) never need
        from ant.sweep.families import train_member
        from ant.train.run import RunLockedError, train  # late: as above

        try:
            if family:
                result = train_member(cfg, [RunConfig.from_dict(d) for d in family], progress=False)
            else:
                result = train(cfg, progress=False, **({"callbacks": callbacks} if callbacks else {}))
            status = result.summary.get("status", "completed")
            if status == "running":  # train() checkpointed and returned early on request (signal)
                status = "interrupted"
            record_attempt(locks, run_id, event="end", job_id=job_id, status=status, wall_s=time.time() - t0)
            return {"run_id": run_id, "status": status, "final_val_loss": result.summary.get("final_val_loss"),
                    "tokens": result.summary.get("tokens")}  # fmt: skip
        except RunLockedError:  # someone outside the sweep (ant train) trains this run folder right now
            return {"run_id": run_id, "status": "locked"}
        except Exception as e:  # recorded where --status finds it; SIGTERM/SystemExit (requeue) pass through
            err = f"{type(e).__name__}: {e}"
            record_attempt(locks, run_id, event="end", job_id=job_id, status="failed", error=err)
            if raise_errors:
                raise
            return {"run_id": run_id, "status": "failed", "error": err, "traceback": traceback.format_exc()}
    finally:
        lock.release()


def run_family(cfg_dicts: list[dict[str, Any]], threads: int = 0, raise_errors: bool = False) -> list[dict[str, Any]]:
    """Train a resolved wsd family, trunk first (cfg_dicts[0]; it may be finished already: then only the listed
    branches train), each member through run_one. Stops after a run that was interrupted (a checkpoint request).
    When another process holds the trunk, its branches are left to that process (reported "locked"): started
    here they could not branch yet and would train from step 0."""
    results = [run_one(cfg_dicts[0], threads, raise_errors, family=cfg_dicts)]
    if results[0]["status"] == "locked":
        return results + [{"run_id": RunConfig.from_dict(d).run_id(), "status": "locked"} for d in cfg_dicts[1:]]
    for d in cfg_dicts[1:]:
        if results[-1]["status"] == "interrupted":
            break
        results.append(run_one(d, threads, raise_errors, family=cfg_dicts))
    return results


def run_packed(cfg_dicts: list[dict[str, Any]], threads: int = 0) -> list[dict[str, Any]]:
    """The packed worker: each run's sweep lock, then ant.train.packed_run.train_packed over the runs still to
    do. A run locked elsewhere is reported "locked", a finished one "skipped"; one with single-run checkpoints
    (started alone before) resumes alone through run_one after the pack."""
    from ant.train.packed_run import train_packed  # late: ant.train loads torch, which planning and --status never need

    cfgs = [RunConfig.from_dict(d) for d in cfg_dicts]
    results: list[dict[str, Any]] = []
    held, todo, alone = [], [], []
    try:
        for cfg in cfgs:
            lock = RunLock(lock_dir(cfg.out_dir), cfg.run_id())
            if not lock.acquire():
                results.append({"run_id": cfg.run_id(), "status": "locked"})
                continue
            held.append(lock)
            state = run_state(cfg.run_dir())
            if state in FINISHED:
                results.append({"run_id": cfg.run_id(), "status": "skipped", "state": state})
            elif runfolder.list_checkpoints(cfg.run_dir() / runfolder.CHECKPOINTS):
                alone.append(cfg)
            else:
                if threads:
                    cfg.train.num_threads = threads
                record_attempt(lock_dir(cfg.out_dir), cfg.run_id(), event="start", resumed=state is not None)
                todo.append(cfg)
        t0 = time.time()
        try:
            trained = train_packed(todo, progress=False) if todo else []
        except Exception as e:  # recorded in each run's summary.json by train_packed; here for --status
            err = f"{type(e).__name__}: {e}"
            for cfg in todo:
                record_attempt(lock_dir(cfg.out_dir), cfg.run_id(), event="end", status="failed", error=err)
                results.append({"run_id": cfg.run_id(), "status": "failed", "error": err})
            trained = []
        for cfg, r in zip(todo, trained):
            status = "interrupted" if r.status == "running" else r.status
            record_attempt(lock_dir(cfg.out_dir), cfg.run_id(), event="end", status=status, wall_s=time.time() - t0)
            s = r.summary
            results.append({"run_id": cfg.run_id(), "status": status, "packed": len(todo),
                            "final_val_loss": s.get("final_val_loss"), "tokens": s.get("tokens")})  # fmt: skip
    finally:
        for lock in held:
            lock.release()
    return results + [run_one(c.to_dict(), threads) for c in alone]


def work_units(todo: list[RunConfig], all_cfgs: list[RunConfig] | None = None) -> list[list[RunConfig]]:
    """The runs to do, grouped: each wsd family with something to do becomes [trunk, branches to do...] (the
    trunk even when it is finished: its checkpoints seed the branches), every other run [run]."""
    from ant.train.branches import find_families  # late: ant.train imports Lightning

    want = {c.run_id() for c in todo}
    units = []
    for fam in find_families(list(all_cfgs or []) + list(todo)):
        members = [c for c in fam if c.run_id() in want]
        if not members:
            continue
        if len(fam) > 1:
            members = [fam[0]] + [c for c in members if c.run_id() != fam[0].run_id()]
        units.append(members)
    return units


def run_state(run_dir: Path) -> str | None:
    """The status in summary.json, 'started' for a folder without one, None for no folder."""
    s = Path(run_dir) / runfolder.SUMMARY
    if s.is_file():
        try:
            return json.loads(s.read_text()).get("status")
        except (json.JSONDecodeError, OSError):
            return "started"
    return "started" if Path(run_dir).is_dir() else None


# ---------------------------------------------------------------------- local pool
_GPU_QUEUE: Any = None


def _init_worker(gpu_queue: Any, threads: int) -> None:
    # runs in the spawned worker before torch is imported, so CUDA_VISIBLE_DEVICES takes effect
    if gpu_queue is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu_queue.get())
    if threads:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(threads)


def _count_gpus() -> int:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([v for v in visible.split(",") if v.strip() and v.strip() != "-1"])
    try:
        import torch

        return torch.cuda.device_count()
    except Exception:
        return 0


def _gpu_ids() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [v.strip() for v in visible.split(",") if v.strip() and v.strip() != "-1"]
    return [str(i) for i in range(_count_gpus())]


def local_layout(settings: ExecutorSettings, n_runs: int) -> tuple[int, int, list[str]]:
    """(workers, threads per worker, GPU ids): one worker per GPU when there are GPUs."""
    gpus = _gpu_ids()
    workers = settings.concurrency or (len(gpus) or 1)
    if gpus:
        workers = min(workers, len(gpus))
    workers = max(1, min(workers, n_runs))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = settings.threads_per_run or max(1, cpus // workers)
    return workers, threads, gpus


def run_local(
    cfgs: list[RunConfig], settings: ExecutorSettings, log=print, all_cfgs: list[RunConfig] | None = None
) -> list[dict[str, Any]]:
    """Run every config through a capped process pool; prints one line per finished run with an ETA. wsd families
    among them (with their trunk from `all_cfgs`, the whole grid) run as one unit each (run_family)."""
    if not cfgs:
        return []
    units = work_units(cfgs, all_cfgs)
    if settings.pack >= 2:
        units = pack_units(units, settings.pack)
    n_runs = sum(len(u) for u in units)
    workers, threads, gpus = local_layout(settings, len(units))
    ctx = mp.get_context("spawn")
    where = f"GPUs {','.join(gpus[:workers])}" if gpus else f"{threads} CPU thread(s) each"
    fams = sum(len(u) > 1 and not isinstance(u, PackedUnit) for u in units)
    packs = sum(isinstance(u, PackedUnit) for u in units)
    log(f"local executor: {n_runs} run(s)" + (f" ({fams} wsd families)" if fams else "")
        + (f" ({packs} packed workers)" if packs else "")
        + f", {workers} at a time, {where}")  # fmt: skip
    results: list[dict[str, Any]] = []
    t0 = time.time()
    monitor = SweepMonitor([c for u in units for c in u], workers)
    pending, tries = units, 0
    while pending:  # a worker killed hard (OOM) breaks the pool: retry its runs once in a fresh one (they resume)
        tries += 1
        gpu_queue = None
        if gpus:
            gpu_queue = ctx.Queue()
            for g in gpus[:workers]:
                gpu_queue.put(g)
        crashed = []
        init = (gpu_queue, threads)
        with cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=init) as pool:
            futs = {}
            for unit in pending:
                if isinstance(unit, PackedUnit):
                    futs[pool.submit(run_packed, [c.to_dict() for c in unit], threads)] = unit
                elif len(unit) == 1:
                    futs[pool.submit(run_one, unit[0].to_dict(), threads)] = unit
                else:
                    futs[pool.submit(run_family, [c.to_dict() for c in unit], threads)] = unit
            waiting = set(futs)
            while waiting:  # wake up every monitor.interval to redraw the sweep line, not only when a run ends
                ended, waiting = cf.wait(waiting, timeout=monitor.interval, return_when=cf.FIRST_COMPLETED)
                for fut in ended:
                    unit = futs[fut]
                    try:
                        r = fut.result()
                    except cf.process.BrokenProcessPool as e:
                        if tries < 2:
                            crashed.append(unit)
                            continue
                        r = [{"run_id": c.run_id(), "status": "failed", "error": f"worker died: {e}"} for c in unit]
                    except Exception as e:  # pickling errors and the like: report, keep going
                        r = [{"run_id": c.run_id(), "status": "failed", "error": f"{type(e).__name__}: {e}"}
                             for c in unit]  # fmt: skip
                    for one in r if isinstance(r, list) else [r]:
                        results.append(one)
                        monitor.finished(one)
                        monitor.clear()
                        log(_progress_line(one, len(results), n_runs, t0))
                running = [c.run_id() for f in waiting if f.running() for c in futs[f]]
                monitor.tick(running, force=bool(ended))
        monitor.clear()
        pending = crashed
    return results


def _progress_line(r: dict[str, Any], done: int, total: int, t0: float) -> str:
    elapsed = time.time() - t0
    eta = elapsed / done * (total - done)
    extra = f" loss {r['final_val_loss']:.4f}" if isinstance(r.get("final_val_loss"), (int, float)) else ""
    extra += f" ({r['error']})" if r.get("error") else ""
    return f"[{done}/{total}] {r['status']:9s} {r['run_id']}{extra} | elapsed {_fmt(elapsed)}, ETA {_fmt(eta)}"


def _fmt(s: float) -> str:
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


if __name__ == "__main__":  # pragma: no cover - debugging aid: python -m ant.sweep.executors CONFIG.yaml
    print(run_one(recipe.resolve(RunConfig.from_yaml(sys.argv[1])).to_dict()))
