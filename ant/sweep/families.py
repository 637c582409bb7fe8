"""Training a wsd family: the trunk first, keeping a checkpoint at each shorter member's decay start, then each
cool-down branch seeded from it (ant.train.branches defines families, seeds a branch's folder and checks a
checkpoint's origin; this module runs them).

    cfgs = make_family(cfg, budgets=[2e5, 4e5, 8e5])    # ant.train.branches: budget-free warm-up and eval steps
    results = train_family(cfgs)                        # trunk first, then each branch

It sits in the sweep layer, above ant.train.run, because it calls `train` for each member: run.py imports
ant.train.branches (keep steps, checkpoint origins), so these orchestrating functions in branches.py made a
circle run -> branches -> run that only late imports hid. The executors' worker (run_one) calls train_member.
"""

from __future__ import annotations

from ant import recipe
from ant.config import RunConfig
from ant.train.branches import branch_steps, check_family, seed_branch
from ant.train.run import prepare, train


def train_family(cfgs: list[RunConfig], *, progress: bool = True) -> list:
    """Train a family (configs differing only in train.tokens): the trunk first, keeping a checkpoint at each
    shorter member's decay start, then each branch from it. Returns the RunResults, trunk first. Stops early
    (returning what it has) when a run returns interrupted, so a requested checkpoint stops the whole family."""
    resolved, data = [], None
    for c in cfgs:
        r, data = prepare(c, progress=progress)
        resolved.append(r)
    family = check_family(resolved)
    results = []
    for member in family:
        results.append(train_member(member, family, data=data, progress=progress))
        if results[-1].summary.get("interrupted"):
            break
    return results


def train_member(cfg: RunConfig, family: list[RunConfig], *, data=None, progress: bool = True):
    """Train one member of a resolved family (trunk first in `family`): the trunk with its branch points,
    a branch from the trunk's checkpoint. Safe to call for a finished member (returns its summary)."""
    trunk = family[0]
    if cfg.run_id() == trunk.run_id():
        return train(cfg, progress=progress, keep_checkpoints_at=sorted(set(branch_steps(family).values())))
    return train_branch(cfg, trunk, data=data, progress=progress)


def train_branch(cfg: RunConfig, trunk: RunConfig, *, data=None, progress: bool = True):
    """Train `cfg` as a cool-down branch of `trunk`: seeded with the trunk's checkpoint at cfg's decay start
    when the run folder holds nothing yet and that checkpoint exists, else trained (or resumed) as usual."""
    if data is None or not cfg.is_resolved:
        cfg, data = prepare(cfg, progress=progress)
    if not trunk.is_resolved:
        trunk = recipe.resolve(trunk, vocab_size=data.vocab_size)
    seed_branch(cfg, trunk, data)
    return train(cfg, progress=progress)
