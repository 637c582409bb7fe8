"""Which runs of a sweep may share a process as one packed worker (ant.train.packed_run), and that worker.

Runs may be packed when their resolved configs differ only in optim.lr and train.seed (ant.train.packed_run.
group_key: same arch, size, options, batch, sequence length, tokens, schedule ...), they are CPU fp32 runs
(`packable`), and they are not members of a wsd family (those train as trunk + branches, ant.train.branches).
`ant sweep --dry-run` says how many groups the grid has; the local executor trains them packed when the grid's
`executor.pack` is > 1 (at most that many runs per worker; default 0: every run alone).
"""

from __future__ import annotations

import time
from typing import Any

from ant import runfolder
from ant.config import RunConfig
from ant.status import FINISHED
from ant.sweep.locks import RunLock, lock_dir, record_attempt

MIN_PACK = 2


class PackedUnit(list):
    """A work unit whose runs train together in one packed worker (a plain list is a run or a wsd family)."""


def pack_groups(cfgs: list[RunConfig], max_runs: int) -> list[list[RunConfig]]:
    """The packable runs among the resolved `cfgs` in groups of 2..max_runs that may share a process, in
    first-seen order; a group larger than max_runs is cut into near-equal chunks."""
    from ant.train.branches import find_families  # late: ant.train modules load torch
    from ant.train.packed_run import group_key, packable  # late: as above

    singles = [f[0] for f in find_families(cfgs) if len(f) == 1]
    groups: dict[str, list[RunConfig]] = {}
    for c in singles:
        if packable(c) is None:
            groups.setdefault(group_key(c), []).append(c)
    out = []
    for g in groups.values():
        n = -(-len(g) // max(1, max_runs))  # chunks
        size = -(-len(g) // n)
        out += [g[i : i + size] for i in range(0, len(g), size) if len(g[i : i + size]) >= MIN_PACK]
    return out


def pack_units(units: list[list[RunConfig]], max_runs: int) -> list[list[RunConfig]]:
    """The executor's work units with the single-run ones of one shape merged into PackedUnits."""
    singles = [u[0] for u in units if len(u) == 1]
    groups = pack_groups(singles, max_runs) if max_runs >= MIN_PACK else []
    packed_ids = {c.run_id() for g in groups for c in g}
    rest = [u for u in units if len(u) != 1 or u[0].run_id() not in packed_ids]
    return [PackedUnit(g) for g in groups] + rest


def packing_line(cfgs: list[RunConfig], max_runs: int) -> str:
    """The --dry-run line: how the grid's runs could share processes, and whether the executor will do it."""
    limit = max_runs if max_runs >= MIN_PACK else 16
    groups = pack_groups(cfgs, limit)
    if not groups:
        return "packing: no runs that could share a process (same shape, other LR/seed)"
    n = sum(len(g) for g in groups)
    sizes = sorted({len(g) for g in groups})
    how = (f"on: the local executor trains them packed, at most {max_runs} per worker" if max_runs >= MIN_PACK
           else "off (executor.pack: 0); set executor.pack: K to train up to K such runs in one worker")  # fmt: skip
    of = str(sizes[0]) if len(sizes) == 1 else f"{sizes[0]}-{sizes[-1]}"
    return (f"packing: {n} runs in {len(groups)} groups of {of} could "
            f"share a process (same arch, size, batch, seq len, tokens, schedule; any LR and seed); {how}")  # fmt: skip


def run_packed(cfg_dicts: list[dict[str, Any]], threads: int = 0) -> list[dict[str, Any]]:
    """The packed worker: each run's sweep lock, then ant.train.packed_run.train_packed over the runs still to
    do. A run locked elsewhere is reported "locked", a finished one "skipped"; one with single-run checkpoints
    (started alone before) resumes alone through run_one after the pack."""
    from ant.sweep.executors import run_one, run_state  # late: executors imports this module at its top
    from ant.train.packed_run import train_packed  # late: ant.train loads torch, which planning never needs

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
