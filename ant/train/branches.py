"""One wsd run, many budgets: cool-down branches from the stable phase of a trunk (issue 11, claim C6).

A *family* is a set of wsd runs whose resolved configs differ only in `train.tokens` (and the derived step
count). Before step D_b = steps_b - decay_steps_b, where budget b's decay starts, every member has the same LR
(ant.schedules: the warm-up is an absolute `optim.warmup_steps`), the same data batches (a pure function of
(seed, step)) and the same evaluation steps, so the longest member (the *trunk*) passes through exactly the state
that member b has at D_b. The trunk therefore keeps a never-pruned checkpoint at every D_b
(`checkpoints/keep/`, steps listed in the trunk's `branch_points.json`); member b's run folder is seeded with
the one at D_b (`branch.json` says from where) and continues through the ordinary exact-resume path of
`ant.train.train`, training only its decay. The result is bit-identical to the same config started alone
(tests/train/test_wsd.py), and the family costs the trunk plus the decays instead of the sum of the budgets.

    cfgs = make_family(cfg, budgets=[2e5, 4e5, 8e5])    # explicit, budget-free warm-up and eval steps
    results = train_family(cfgs)                        # ant.sweep.families: trunk first, then each branch

This module defines families and seeds a branch's folder; it never calls `train` (ant.train.run imports it for
the keep steps and the checkpoint-origin check), so training a family lives above run.py, in ant.sweep.families.

What a family shares must not depend on the budget, so `make_family` fixes what resolve() would otherwise derive
from each run's own steps: `optim.warmup_steps` from the smallest budget (the warm-up must end before its decay),
`train.eval_interval` / `diag_interval` from the largest (the evaluations of the whole family then cost what the
trunk's alone would). A branch is refused (ConfigError naming the field) when its trunk's config differs in
anything but the budget, when the trunk is the shorter run, or when the trunk was trained on other token data.
Without a trunk checkpoint at its decay start (a trunk trained before the family was declared) a member trains
from step 0: the same result at full cost; `summary.json` says which (`branched_from`, `branch_step`,
`trained_steps`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from ant import identity, recipe, runfolder
from ant.config import RunConfig
from ant.errors import ConfigError
from ant.schedules import decay_start
from ant.train import io

BRANCH_FILE = runfolder.BRANCH  # in a branch's run folder: the trunk and step it was seeded from
KEEP_FILE = runfolder.BRANCH_POINTS  # in a trunk's run folder: the steps whose checkpoints are kept
KEEP_DIR = "keep"  # under checkpoints/: never pruned
# Fields that may differ inside a family: the budget and what follows from it, and settings that never change
# the result (where files go, how often to checkpoint, CPU threads). Everything else must be equal, including
# the log/eval intervals (they shape the metrics table) and micro_batch_size (it changes float summation order).
# Declared on the fields themselves (family_free=True in ant.config).
FREE_FIELDS = identity.fields_where(RunConfig, identity.FAMILY_FREE)


# ---------------------------------------------------------------------- families
def _flat(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "options":
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(a: RunConfig, b: RunConfig) -> list[str]:
    """Dotted config fields in which two resolved configs differ, other than the budget (FREE_FIELDS)."""
    fa, fb = _flat(a.to_dict()), _flat(b.to_dict())
    return [k for k in sorted(set(fa) | set(fb)) if k not in FREE_FIELDS and fa.get(k) != fb.get(k)]


def family_key(cfg: RunConfig) -> str | None:
    """Equal for resolved wsd configs that differ only in their budget; None for other schedules."""
    if cfg.optim.schedule != "wsd":
        return None
    flat = {k: v for k, v in _flat(cfg.to_dict()).items() if k not in FREE_FIELDS}
    return json.dumps(flat, sort_keys=True, default=str)


def make_family(cfg: RunConfig, budgets: list[float], vocab_size: int | None = None) -> list[RunConfig]:
    """Resolved wsd configs of `cfg` at each token budget, largest first, sharing every budget-free setting
    (see the module docstring). Explicit values in `cfg` are kept."""
    if cfg.optim.schedule != "wsd":
        raise ConfigError("optim.schedule", f"a family of budgets needs schedule wsd, got {cfg.optim.schedule!r}",
                          ("wsd",))  # fmt: skip
    if not budgets:
        raise ConfigError("train.tokens", "a family needs at least one budget")

    def at(c: RunConfig, tokens: float) -> RunConfig:
        d = c.to_dict()
        d["train"]["tokens"], d["train"]["tokens_per_param"] = tokens, None
        return recipe.resolve(RunConfig.from_dict(d), vocab_size=vocab_size)

    alone = sorted((at(cfg, b) for b in budgets), key=lambda c: c.steps)
    shared = cfg.to_dict()
    if cfg.optim.warmup_steps is None:
        shared["optim"]["warmup_steps"] = alone[0].optim.warmup_steps  # the smallest budget's warm-up
    for name in ("eval_interval", "diag_interval"):
        if not getattr(cfg.train, name):
            shared["train"][name] = getattr(alone[-1].train, name)  # the largest budget's (the trunk's)
    base = RunConfig.from_dict(shared)
    members = {c.run_id(): c for c in (at(base, b) for b in budgets)}
    return sorted(members.values(), key=lambda c: (-c.steps, -c.train.tokens))


def find_families(cfgs: list[RunConfig]) -> list[list[RunConfig]]:
    """Group resolved configs into work units: each wsd family (>= 2 members) trunk first, every other run
    alone; in the order of each unit's first member in `cfgs`."""
    groups: dict[str, list[RunConfig]] = {}
    order: list[str] = []
    for c in cfgs:
        key = family_key(c) or f"run:{c.run_id()}"
        if key not in groups:
            groups[key] = []
            order.append(key)
        if all(m.run_id() != c.run_id() for m in groups[key]):
            groups[key].append(c)
    return [sorted(groups[k], key=lambda c: (-c.steps, -c.train.tokens)) for k in order]


def branch_steps(family: list[RunConfig]) -> dict[str, int]:
    """run_id -> the trunk step its branch starts from, for every member but the trunk (family[0])."""
    return {c.run_id(): decay_start(c.optim, c.steps) for c in family[1:]}


# ---------------------------------------------------------------------- seeding a branch
def check_family(cfgs: list[RunConfig]) -> list[RunConfig]:
    """Resolved configs -> the family, trunk first; ConfigError naming the first field that breaks it."""
    if not cfgs:
        raise ConfigError("train.tokens", "a family needs at least one run")
    family = sorted({c.run_id(): c for c in cfgs}.values(), key=lambda c: (-c.steps, -c.train.tokens))
    for c in family:
        if c.optim.schedule != "wsd":
            raise ConfigError("optim.schedule", f"branches need schedule wsd, got {c.optim.schedule!r}", ("wsd",))
        diff = differences(family[0], c)
        if diff:
            rule = "the runs of a family may differ only in train.tokens (make_family(cfg, budgets) builds one)"
            raise ConfigError(diff[0], f"{c.run_id()} differs from {family[0].run_id()} in {', '.join(diff)}; {rule}")
    return family


def seed_branch(cfg: RunConfig, trunk: RunConfig, data=None) -> int | None:
    """Put the trunk's checkpoint at cfg's decay start into cfg's fresh run folder (with its checksum and a
    branch.json) and return that step; None when cfg's folder already holds progress or the trunk has no such
    checkpoint. Raises ConfigError when cfg may not branch from `trunk` (see the module docstring)."""
    check_family([trunk, cfg])
    if trunk.steps < cfg.steps:
        msg = f"the trunk {trunk.run_id()} ({trunk.steps} steps) is shorter than its branch {cfg.run_id()}"
        raise ConfigError("train.tokens", msg, f">= {cfg.train.tokens} tokens for the trunk")
    run_dir, trunk_dir = cfg.run_dir(), trunk.run_dir()
    if run_dir.resolve() == trunk_dir.resolve():
        return None
    if runfolder.read_summary(run_dir) or io.newest_valid_checkpoint(run_dir / runfolder.CHECKPOINTS):
        return None  # started already: the ordinary resume continues it
    step = decay_start(cfg.optim, cfg.steps)
    src = io.ckpt_path(trunk_dir / runfolder.CHECKPOINTS / KEEP_DIR, step)
    if not io.is_valid(src):
        return None
    before = (runfolder.read_summary(trunk_dir) or {}).get("data_fingerprint")
    now = getattr(data, "fingerprint", None)
    if before and now and before != now:
        msg = f"the trunk {trunk.run_id()} was trained on token data {before[:12]}, but the data now resolves to "
        raise ConfigError("data.corpus", msg + f"{now[:12]}; a branch must continue on the same tokens")
    ckpt_dir = run_dir / runfolder.CHECKPOINTS
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    if not (run_dir / runfolder.CONFIG).exists():
        io.atomic_write_text(run_dir / runfolder.CONFIG, cfg.to_yaml())
    io.write_json(run_dir / BRANCH_FILE, {"trunk_run_id": trunk.run_id(), "step": step, "trunk_dir": str(trunk_dir),
                                          "checkpoint_sha256": io.sha256_file(src)})  # fmt: skip
    dst = io.ckpt_path(ckpt_dir, step)
    link_or_copy(src, dst)
    io.write_checksum(dst)  # last: only now does the resume path see a valid checkpoint
    return step


def link_or_copy(src: Path, dst: Path) -> None:
    """A hard link when the file system allows (paper-size checkpoints are GBs; files are never modified in
    place, only replaced or unlinked), else a copy; either way moved into place atomically."""
    tmp = dst.with_name(f".{dst.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dst)


# ---------------------------------------------------------------------- used by ant.train.run
def read_keep_steps(run_dir: Path) -> list[int]:
    return sorted(set((io.read_json(Path(run_dir) / KEEP_FILE) or {}).get("steps", [])))


def add_keep_steps(run_dir: Path, steps: list[int]) -> None:
    """Record (merging with what is there) the steps at which this run keeps a checkpoint for its branches; a
    file in the run folder, so every later resume of the trunk (sweep, SLURM requeue, `ant train`) keeps them."""
    now = read_keep_steps(run_dir)
    merged = sorted(set(now) | {int(s) for s in steps})
    if merged != now:
        io.write_json(Path(run_dir) / KEEP_FILE, {"steps": merged})


def branch_origin(run_dir: Path) -> dict[str, Any] | None:
    return io.read_json(Path(run_dir) / BRANCH_FILE)


def check_checkpoint_origin(ckpt: Path, cfg: RunConfig, run_dir: Path) -> None:
    """Refuse to resume `cfg` from a checkpoint written by another run, unless this folder is an explicit
    branch (branch.json) of that run and their configs differ only in the budget."""
    import torch

    state = torch.load(ckpt, map_location="cpu", weights_only=True, mmap=True)
    origin = (state.get("callbacks") or {}).get("RunCheckpoint") or {}  # RunCheckpoint.state_key
    del state
    other_id = origin.get("run_id")
    if not other_id or other_id == cfg.run_id():
        return  # this run's own checkpoint (or one written before checkpoints named their run)
    other = RunConfig.from_dict(origin["config"])
    diff = differences(other, cfg)
    branch = branch_origin(run_dir) or {}
    if not diff and branch.get("trunk_run_id") == other_id and other.optim.schedule == "wsd":
        return
    field = diff[0] if diff else "train.tokens"
    why = f"differs in {', '.join(diff)}" if diff else "is not this folder's trunk (no branch.json naming it)"
    rule = "a run resumes only its own checkpoints, or as a branch a wsd trunk's differing only in train.tokens"
    raise ConfigError(field, f"{ckpt} was written by run {other_id}, which {why}; {rule}")
