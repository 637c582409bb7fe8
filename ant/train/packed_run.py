"""`train_packed(cfgs)`: runs of one shape trained together in one process, each in its own run folder.

    results = train_packed([cfg_lr1, cfg_lr2, ...])   # same arch, size, batch, seq len, tokens, schedule ...

The runs may differ only in optim.lr and train.seed (ant.train.pack_rules.group_key). They train as one packed model
(ant.models.packed: the models' own forward, one batched matmul per linear layer over the runs) with per-run loss,
clip, LR and projection (ant.train.packed), each on its own data stream (TrainSampler of its own seed). Each run's
folder is the one `ant.train.run.train` writes: config.yaml, metrics.parquet (the same columns, rows made by the
same TrainMonitor.flush), summary.json (its own run id; `packed_with` names the group), env.json, logs/, weights.pt
(the single model's state dict) and checkpoints. A packed run and the same run trained alone are interchangeable
up to float reduction order (tests/train/test_packed_run.py).

Checkpoints: checkpoints/packed/step-XXXXXXXX.ckpt per run (its model slice, its Adam moments, its metrics and
monitor state), next to, never mixed with, the single path's Lightning checkpoints; the group resumes from the
newest step every member has. A run that has single-path checkpoints is refused (resume it with `ant train`).
No RNG is drawn after the initialisation (the data is a pure function of seed and step), so a resume continues
bit for bit. A run that diverges gets its val loss, weights and "diverged" summary at that step and leaves the
pack; the others go on (the packed model is rebuilt without it).
"""

from __future__ import annotations

import contextlib
import sys
import time
import traceback
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ant import fsio, runfolder
from ant.config import RunConfig
from ant.data import TrainSampler
from ant.errors import ConfigError
from ant.models import build_model
from ant.models.packed import load_run_, pack, unpack
from ant.status import FINISHED
from ant.train import compiled as compiled_steps
from ant.train import evaluation, io
from ant.train.env import record_start
from ant.train.evaluation import ValSets, is_intermediate
from ant.train.pack_rules import check_group
from ant.train.packed import PackedAdam, run_losses, select_runs, train_step
from ant.train.run import (
    STOP_REQUESTED,
    WEIGHTS,
    RunResult,
    _quiet_lightning,
    _run_lock,
    _seed_everything,
    _signals,
    _summary,
    _threads,
    prepare,
)

PACKED_DIR = "packed"  # under checkpoints/: the packed worker's own checkpoint format


@dataclass
class Member:
    """One run of the pack: its config, folder and the objects its files are written from."""

    cfg: RunConfig
    run_dir: Path
    table: Any = None  # callbacks.MetricsTable
    monitor: Any = None  # callbacks.TrainMonitor
    base: dict[str, Any] = field(default_factory=dict)
    sampler: Any = None
    result: RunResult | None = None


def train_packed(cfgs: list[RunConfig], *, progress: bool = True, handle_signals: bool = False) -> list[RunResult]:
    """Train (or resume, or look up) the runs `cfgs` together; one RunResult per config, in order."""
    prepared = [prepare(c, progress=progress) for c in cfgs]
    resolved, data = [r for r, _ in prepared], prepared[0][1]
    check_group(resolved)
    members = [Member(c, c.run_dir()) for c in resolved]
    try:
        with contextlib.ExitStack() as locks:
            todo = []
            for m in members:
                summary = runfolder.read_summary(m.run_dir)
                if summary and summary.get("status") in FINISHED:
                    m.result = RunResult(m.run_dir, summary)
                    continue
                m.run_dir.mkdir(parents=True, exist_ok=True)
                locks.enter_context(_run_lock(m.run_dir))
                summary = runfolder.read_summary(m.run_dir)
                if summary and summary.get("status") in FINISHED:
                    m.result = RunResult(m.run_dir, summary)
                    continue
                if io.list_checkpoints(m.run_dir / runfolder.CHECKPOINTS) or (m.run_dir / runfolder.BRANCH).exists():
                    raise ConfigError("packed", f"{m.run_dir} has single-run checkpoints or is a wsd branch; "
                                      "resume it alone (ant train)")  # fmt: skip
                if not (m.run_dir / runfolder.CONFIG).exists():
                    io.atomic_write_text(m.run_dir / runfolder.CONFIG, m.cfg.to_yaml())
                todo.append(m)
            if todo:
                with _signals(handle_signals), _threads(todo[0].cfg.train.num_threads), _quiet_lightning():
                    _fit(todo, data, progress)
    finally:
        STOP_REQUESTED.clear()
    return [m.result for m in members]


def _fit(members: list[Member], data, progress: bool) -> None:
    from ant.train import callbacks as cb  # loads Lightning (its loggers and the monitor's base class)

    cfg0 = members[0].cfg
    t, T, steps = cfg0.train, cfg0.data.seq_len, cfg0.steps
    start = _resume_step(members)
    singles = []
    for m in members:
        m.table = cb.MetricsTable(t.batch_size * T, cb.make_loggers(m.cfg.train.loggers, m.run_dir, m.cfg.run_id()))
        m.monitor = cb.TrainMonitor(m.cfg, m.table)
        m.sampler = TrainSampler(data.train, T, t.batch_size, m.cfg.train.seed)
        m.base = {"data_fingerprint": getattr(data, "fingerprint", None),
                  "data_sha256": getattr(data, "content_sha256", None), "branched_from": None, "branch_step": None,
                  "world_size": 1, "resumed_from_step": start or None,
                  "packed_with": [o.cfg.run_id() for o in members]}  # fmt: skip
        record_start(m.run_dir, "cpu")
        _seed_everything(m.cfg.train.seed)  # as ant.train.run: the run's own initialisation
        mc = m.cfg.model
        singles.append(build_model(mc.arch, mc.size, vocab_size=mc.vocab_size, **mc.options))
    model = pack(singles)
    opt = PackedAdam(model, singles[0], cfg0.optim, [m.cfg.optim.lr for m in members])
    scratch = singles[0]  # a single model to compute one run's diagnostics and FLOPs with
    compiled = _load(members, model, opt, start) if start else compiled_steps.use_compile_packed(
        [m.cfg for m in members])  # fmt: skip
    for m in members:
        m.base["compiled_step"] = compiled
    val = evaluation.val_sets(cfg0, data.val)  # the single-run scheme (ant.train.evaluation)
    now = time.perf_counter()
    for m in members:
        m.monitor._t_session, m.monitor._wall_at_start, m.monitor._step_last = now, m.monitor.wall_time_s, start
        m.monitor.flops_per_token = float(scratch.flops_per_token(T))
        if start:
            m.table.log_all()
    live, step = list(members), start
    try:
        if start == 0:
            _measure(live, model, scratch, val, 0, subset_for=list(range(len(live))), full_for=[], diag=True)
        for m in live:
            _write(m, scratch, start, "running")
        while live and step < steps:
            x, y = zip(*(m.sampler.batch(step) for m in live))
            t0 = time.perf_counter()
            losses, norms = train_step(model, opt, torch.stack(x), torch.stack(y), step, steps, compiled)
            losses, norms = losses.tolist(), norms.tolist()
            dt = time.perf_counter() - t0
            step += 1  # Lightning's global_step after the step: the callbacks' `step`
            log = step % t.log_interval == 0 or step >= steps
            stop = STOP_REQUESTED.is_set()
            gone = []
            for k, m in enumerate(live):
                m.monitor.pending.append(losses[k])
                m.monitor.interval_s += dt
                if log:
                    trainer = types.SimpleNamespace(should_stop=False)
                    m.monitor.flush(trainer, step, list(m.monitor.pending), norms[k], opt.lr(k))
                if m.monitor.diverged_step is not None:
                    gone.append(k)
            # the Evaluator's rule per run: the full set at the end and when the run stops (diverges), the subset
            # at the intermediate steps (ant.train.evaluation)
            full = [k for k in range(len(live)) if step >= steps or k in gone]
            subset = [k for k in range(len(live)) if k not in full] if is_intermediate(cfg0, step) else []
            _measure(live, model, scratch, val, step, subset_for=subset, full_for=full,
                     diag=step % t.diag_interval == 0)  # fmt: skip
            if progress and log:
                print(f"[ant packed] step {step}/{steps} train_loss "
                      + " ".join(f"{v:.3f}" for v in losses), flush=True)  # fmt: skip
            for k in gone:  # divergence is a result: weights and summary at this step, then out of the pack
                _finish(live[k], model, k, scratch, step, "diverged")
            if gone:
                keep = [k for k in range(len(live)) if k not in gone]
                live = [live[k] for k in keep]
                if live:
                    model, opt = select_runs(model, opt, keep)
            if not live or step >= steps:
                break
            if stop or step % t.ckpt_interval == 0:
                for k, m in enumerate(live):
                    _checkpoint(m, model, opt, k, step, compiled)
                    _write(m, scratch, step, "running")
            if stop:
                for m in live:
                    m.result = RunResult(m.run_dir, _write(m, scratch, step, "running", interrupted=True))
                return
        for k, m in enumerate(live):
            _finish(m, model, k, scratch, step, "completed")
    except BaseException as e:  # noqa: BLE001 - recorded in every unfinished run, then re-raised
        interrupted = isinstance(e, (KeyboardInterrupt, SystemExit))
        err = f"{type(e).__name__}: {e}" if interrupted else traceback.format_exc()[-4000:]
        for m in live:
            if m.result is None:
                with contextlib.suppress(Exception):
                    _write(m, scratch, step, "running" if interrupted else "failed", error=err,
                           interrupted=interrupted)  # fmt: skip
        raise


def _measure(live, model, scratch, val, step: int, *, subset_for: list[int], full_for: list[int], diag: bool):
    """The Evaluator's work: residual norms and alpha every diag_interval (on a single model holding the run's
    weights), then the val loss of the runs `subset_for` (subset) and `full_for` (every window, and the subset's
    loss beside it) and their metrics.parquet."""
    sub = _evaluate(model, val.subset) if subset_for or (full_for and val.subset is not val.full) else None
    full = _evaluate(model, val.full) if full_for else None
    for k, m in enumerate(live):
        if diag:
            scratch.load_state_dict(unpack(model, k))
            m.table.add(step, **_diagnostics(scratch, val.diag_x))
        if k in full_for:
            m.table.add(step, val_loss=full[k], val_tokens=ValSets.tokens(val.full))
            if val.subset is not val.full:
                m.table.add(step, val_loss_subset=sub[k])
        elif k in subset_for:
            m.table.add(step, val_loss=sub[k], val_tokens=ValSets.tokens(val.subset))
        if k in full_for or k in subset_for:
            m.table.write(m.run_dir / runfolder.METRICS)


@torch.no_grad()
def _evaluate(model, batches) -> list[float]:
    """Each run's mean token loss over the validation batches (ant.train.module.evaluate, per run)."""
    was = model.training
    model.eval()
    K = model.runs
    total, count = torch.zeros(K, dtype=torch.float64), 0
    for x, y in batches:
        per_run = run_losses(model, x.expand(K, *x.shape), y.expand(K, *y.shape))
        total += per_run.double() * y.numel()
        count += y.numel()
    model.train(was)
    return (total / max(count, 1)).tolist()


@torch.no_grad()
def _diagnostics(model, x: torch.Tensor) -> dict[str, float]:
    model.eval()
    norms = model.residual_norms(x).float().tolist()
    model.train()
    out = {f"resid_norm_{i}": v for i, v in enumerate(norms)}
    out.update({k.replace("/", "_"): float(v) for k, v in model.alpha_stats().items()})
    return out


def _write(m: Member, scratch, step: int, status: str, **extra: Any) -> dict[str, Any]:
    """summary.json (and metrics.parquet) as ant.train.run._RunState.write makes them."""
    if m.table.rows:
        m.table.write(m.run_dir / runfolder.METRICS)
    tokens_per_step = m.cfg.train.batch_size * m.cfg.data.seq_len
    cost = {"trained_steps": step, "trained_tokens": step * tokens_per_step}
    s = _summary(m.cfg, scratch, m.table, m.monitor, step, status, **m.base, **cost, **extra)
    runfolder.write_summary(m.run_dir, s)
    return s


def _finish(m: Member, model, k: int, scratch, step: int, status: str) -> None:
    path = m.run_dir / WEIGHTS
    fsio.atomic_write_with(path, lambda tmp: torch.save(unpack(model, k), tmp))
    m.base["weights_sha256"] = io.sha256_file(path)
    m.result = RunResult(m.run_dir, _write(m, scratch, step, status))


def _checkpoint(m: Member, model, opt: PackedAdam, k: int, step: int, compiled: bool) -> None:
    folder = m.run_dir / runfolder.CHECKPOINTS / PACKED_DIR
    folder.mkdir(parents=True, exist_ok=True)
    state = {"run_id": m.cfg.run_id(), "config": m.cfg.to_dict(), "step": step, "model": unpack(model, k),
             "adam": opt.run_state(k), "monitor": m.monitor.state_dict(), "compiled": compiled}  # fmt: skip
    path = io.ckpt_path(folder, step)
    io.atomic_write_with(path, lambda tmp: torch.save(state, tmp))
    io.write_checksum(path)
    io.prune_checkpoints(folder, keep=2)


def _resume_step(members: list[Member]) -> int:
    """The newest step at which every member has a valid packed checkpoint (0: start every run afresh)."""
    common = None
    for m in members:
        steps = {s for s, p in io.list_checkpoints(m.run_dir / runfolder.CHECKPOINTS / PACKED_DIR) if io.is_valid(p)}
        common = steps if common is None else common & steps
    return max(common) if common else 0


def _load(members: list[Member], model, opt: PackedAdam, step: int) -> bool:
    """Every member's state at `step`; returns whether the pack trained compiled (checkpoints from before the
    compiled packed step hold no such key: they trained eager)."""
    compiled = set()
    for k, m in enumerate(members):
        state = torch.load(io.ckpt_path(m.run_dir / runfolder.CHECKPOINTS / PACKED_DIR, step), weights_only=True)
        if state["run_id"] != m.cfg.run_id():
            raise ConfigError("packed", f"{m.run_dir}: checkpoint of run {state['run_id']}, not {m.cfg.run_id()}")
        load_run_(model, k, state["model"])
        opt.load_run_state(k, state["adam"])
        m.monitor.load_state_dict(state["monitor"])
        compiled.add(bool(state.get("compiled", False)))
    if len(compiled) > 1:  # one pack writes one choice; two mean the members come from different packs
        raise ConfigError("packed", f"the members' checkpoints at step {step} disagree on the compiled step")
    print(f"[ant packed] {len(members)} runs resumed from step {step}", file=sys.stderr, flush=True)
    return compiled.pop()
