"""Which runs may train packed (ant.train.packed_run): the shared part of their configs (`group_key`), whether one
run can (`packable`), and the check of a whole group. Config arithmetic only, no torch: the sweep planner asks
these questions for every run of a grid (ant.sweep.packing, `--dry-run`), and a plan must not pay for torch.
"""

from __future__ import annotations

import json
from typing import Any

from ant.config import RunConfig
from ant.errors import ConfigError
from ant.optimizers import ADAM_FAMILY  # PackedAdam implements these (no torch on import)


def _shared(cfg: RunConfig) -> dict[str, Any]:
    """The resolved config without optim.lr, train.seed and out_dir, flattened to "section.field" keys."""
    d = cfg.to_dict()
    d.pop("out_dir")
    d["optim"].pop("lr")
    d["train"].pop("seed")
    flat = {}
    for k, sec in d.items():
        flat.update({f"{k}.{f}": v for f, v in sec.items()} if isinstance(sec, dict) else {k: sec})
    return flat


def group_key(cfg: RunConfig) -> str:
    """What runs must share to train packed: everything but optim.lr, train.seed and out_dir."""
    return json.dumps(_shared(cfg), sort_keys=True, default=str)


def packable(cfg: RunConfig) -> str | None:
    """None if the resolved `cfg` can train packed, else why not (the field and what it must be)."""
    t = cfg.train
    checks = [
        (t.device != "cpu", f"train.device={t.device}: packing is for CPU runs"),
        (t.precision not in ("32", "auto"), f"train.precision={t.precision}: packing trains in fp32"),
        (t.compile == "true", "train.compile=true: packed steps compile by train.cpu_compile instead"),
        (t.micro_batch_size not in (0, t.batch_size), "train.micro_batch_size: packed runs take whole batches"),
        (t.noise_scale, "train.noise_scale=true needs micro-batches"),
        (t.devices * t.num_nodes != 1, "train.devices/num_nodes: packing is one process"),
        (cfg.optim.optimizer not in ADAM_FAMILY, f"optim.optimizer={cfg.optim.optimizer}: packed steps are Adam(W)"),
    ]
    return next((why for bad, why in checks if bad), None)


def check_group(cfgs: list[RunConfig]) -> None:
    for cfg in cfgs:
        if why := packable(cfg):
            raise ConfigError("packed", f"{cfg.run_id()} cannot train packed: {why}")
    first = _shared(cfgs[0])
    for cfg in cfgs[1:]:
        other = _shared(cfg)
        for name in list(first) + [n for n in other if n not in first]:  # config order: the cause before steps
            if first.get(name) != other.get(name):
                raise ConfigError(name, f"{first.get(name)!r} in {cfgs[0].run_id()} but {other.get(name)!r} in "
                                  f"{cfg.run_id()}: packed runs differ only in optim.lr and train.seed",
                                  [first.get(name)])  # fmt: skip
    ids = [c.run_id() for c in cfgs]
    if len(set(ids)) != len(ids):
        raise ConfigError("packed", "the same run twice in one pack", sorted(set(ids)))
