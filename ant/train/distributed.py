"""Data-parallel training (issue 15): train.devices processes per node x train.num_nodes, through Lightning's DDP.

Who starts the processes (never a launcher of ours):
  * `ant train` on one machine: Lightning's DDP strategy with its subprocess launcher re-runs this very command
    line once per extra device (LOCAL_RANK=1..devices-1 in their environment). Every process runs `train(cfg)`
    from the top; rank 0 owns the run folder. `ddp_spawn`/`ddp_fork` were not chosen: they run only `fit` in the
    children, so the callbacks' state (metrics table, divergence guard) and the trainer the run folder is written
    from would live in another process than the one writing the summary.
  * a SLURM job with tasks_per_node = train.devices (ant.sweep.executors): SLURM starts every task, each runs the
    same submitit call, and Lightning's SLURMEnvironment reads the ranks from SLURM's variables.
  * torchrun: TorchElastic's variables, likewise.
A process that cannot be re-run as `ant train` (a sweep's local worker, optuna's tune, a notebook, pytest) is
refused with a ConfigError naming train.devices, before anything is written.

Arithmetic: the global batch is train.batch_size whatever the device count. Rank r of W trains rows
[r B/W, (r+1) B/W) of step s's batch (TrainSampler.batch(s, r, W)), in B/(W m) micro-batches of m =
train.micro_batch_size rows (or one); each micro-batch loss is divided by that count, and DDP averages the
gradients over the W ranks: the gradient is the mean over the global batch, as on one device.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
from pathlib import Path
from typing import Any

import torch

from ant.config import RunConfig, TrainConfig
from ant.errors import ConfigError

CLI_MODULES = ("ant.cli", "ant.__main__")  # `python -m ant.cli train`, `python -m ant train`; `ant train` below


def world_size(t: TrainConfig) -> int:
    return t.devices * t.num_nodes


def per_rank_batch(t: TrainConfig) -> int:
    return t.batch_size // world_size(t)


def micro_batches(t: TrainConfig) -> int:
    """Forward/backward passes per optimizer step on each rank."""
    return per_rank_batch(t) // (t.micro_batch_size or per_rank_batch(t))


def check(cfg: RunConfig) -> None:
    """The data-parallel settings of a resolved config (ConfigError naming the field, before anything is written)."""
    t, world = cfg.train, world_size(cfg.train)
    if t.strategy == "fsdp":  # refused rather than half right: both need each parameter whole on every rank
        raise ConfigError("train.strategy", "fsdp is not supported: gradient clipping and the nGPT/anGPT weight "
                          "projection need whole parameters, which FSDP shards; use ddp", ("auto", "ddp"))  # fmt: skip
    rows = t.micro_batch_size or 1  # each rank's share must be whole micro-batches
    if t.batch_size % (world * rows):
        ok = [d for d in range(1, t.batch_size + 1) if t.batch_size % (d * t.num_nodes * rows) == 0]
        what = f"batch_size {t.batch_size} is not a multiple of devices {t.devices} x num_nodes {t.num_nodes}"
        what += f" x micro_batch_size {rows}" if t.micro_batch_size else ""
        raise ConfigError("train.devices", what, ok)
    if t.noise_scale and micro_batches(t) < 2:
        raise ConfigError("train.noise_scale", f"needs >= 2 micro-batches a step on each of the {world} ranks; "
                          f"micro_batch_size {t.micro_batch_size}, batch_size {t.batch_size}", "false")  # fmt: skip


def launch_rank(t: TrainConfig) -> int:
    """This process's rank, after checking that every rank's process can exist: refused (ConfigError naming
    train.devices, nothing written) where neither SLURM/torchrun started them nor Lightning can re-run us."""
    world = world_size(t)
    if world > 1 and not (launched_externally(t) or _relaunchable()):
        raise ConfigError("train.devices", f"{world} processes need `ant train` (Lightning re-runs its command "
                          "line once per device) or a SLURM job with tasks_per_node = train.devices; this process "
                          f"({' '.join(sys.argv[:2])}) cannot be re-run per device", ("1",))  # fmt: skip
    return rank(t)


def launched_externally(t: TrainConfig) -> bool:
    """SLURM (one task per device) or torchrun started every process: Lightning must not start more."""
    from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment

    slurm = SLURMEnvironment.detect() and int(os.environ.get("SLURM_NTASKS", "1")) == world_size(t)
    return slurm or TorchElasticEnvironment.detect()


def _relaunchable() -> bool:
    """This process is `ant train ...` (or Lightning's re-run of it), which Lightning can run once per device."""
    import __main__

    spec = getattr(__main__, "__spec__", None)
    entry = spec.name in CLI_MODULES if spec is not None else Path(sys.argv[0]).name == "ant"
    return entry and sys.argv[1:2] == ["train"]


def rank(t: TrainConfig) -> int:
    """This process's global rank, known from the environment before the Trainer exists (0 on one device)."""
    if world_size(t) == 1:
        return 0
    if launched_externally(t):
        return int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))
    # Lightning's subprocess launcher: LOCAL_RANK per process, NODE_RANK per node
    return int(os.environ.get("NODE_RANK", "0")) * t.devices + int(os.environ.get("LOCAL_RANK", "0"))


def trainer_args(t: TrainConfig) -> dict[str, Any]:
    """devices / num_nodes / strategy for L.Trainer (check() has refused what these cannot run)."""
    if world_size(t) == 1:
        return {"devices": 1, "num_nodes": 1, "strategy": "auto"}
    from lightning.pytorch.strategies import DDPStrategy

    if rank(t) > 0 and not launched_externally(t):  # a copy of `ant train` that Lightning started
        _die_with_parent()
        # one voice: rank 0 prints progress and the result. The file descriptor, not sys.stdout, which a caller
        # may have swapped for a while (ant train --json sends progress to stderr) and swaps back
        sys.stdout.flush()
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    backend = "nccl" if t.device == "cuda" else "gloo"
    return {"devices": t.devices, "num_nodes": t.num_nodes, "strategy": DDPStrategy(process_group_backend=backend)}


def _die_with_parent() -> None:
    """A process Lightning started for rank > 0 ends with rank 0 (Linux): after a kill -9 of `ant train` it would
    otherwise wait in its next collective until the process group's 30-minute timeout."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):  # not Linux: the timeout ends it
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def backward_sync(pl_module, sync: bool):
    """The context of one micro-batch's backward: DDP all-reduces the gradients only where `sync` (the step's last
    micro-batch), so a step costs one all-reduce whatever its micro-batch count; the others accumulate locally."""
    strategy = pl_module.trainer.strategy
    if sync or not hasattr(strategy, "block_backward_sync"):  # one device: nothing to skip
        return contextlib.nullcontext()
    return strategy.block_backward_sync()


def global_mean(pl_module, value: torch.Tensor) -> torch.Tensor:
    """The mean of `value` over the ranks (every rank has the same number of rows): the logged train loss, so
    that every rank's divergence guard sees the same number and they stop at the same step."""
    trainer = pl_module._trainer
    if trainer is None or trainer.world_size == 1:
        return value
    return trainer.strategy.reduce(value.detach().clone(), reduce_op="mean")


def any_rank(trainer, decision: bool) -> bool:
    """True on every rank when it is true on one (a stop request may reach the ranks at different steps)."""
    return decision if trainer.world_size == 1 else trainer.strategy.reduce_boolean_decision(decision, all=False)


def parameters_sha256(model: torch.nn.Module) -> str:
    """sha256 over every parameter's name, dtype, shape and bytes, in state-dict order."""
    h = hashlib.sha256()
    for name, p in model.state_dict().items():
        v = p.detach().cpu().contiguous()
        h.update(f"{name}|{v.dtype}|{tuple(v.shape)}".encode())
        h.update(v.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()
