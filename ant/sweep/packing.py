"""Which runs of a sweep may share a process as one packed worker (ant.train.packed_run); the worker itself,
run_packed, is in ant.sweep.executors beside run_one (it falls back to run_one for runs that must train alone).

Runs may be packed when their resolved configs differ only in optim.lr and train.seed (ant.train.pack_rules.
group_key: same arch, size, options, batch, sequence length, tokens, schedule ...), they are CPU fp32 runs
(`packable`), and they are not members of a wsd family (those train as trunk + branches, ant.train.branches).
`ant sweep --dry-run` says how many groups the grid has; the local executor trains them packed when the grid's
`executor.pack` is > 1 (at most that many runs per worker; default 0: every run alone).
"""

from __future__ import annotations

from ant.config import RunConfig
from ant.train.branches import find_families
from ant.train.pack_rules import group_key, packable

MIN_PACK = 2


class PackedUnit(list):
    """A work unit whose runs train together in one packed worker (a plain list is a run or a wsd family)."""


def pack_groups(cfgs: list[RunConfig], max_runs: int) -> list[list[RunConfig]]:
    """The packable runs among the resolved `cfgs` in groups of 2..max_runs that may share a process, in
    first-seen order; a group larger than max_runs is cut into near-equal chunks."""

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
