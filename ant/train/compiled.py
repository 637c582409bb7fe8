"""torch.compile of the training step on CPU: the loss (forward + fp32 cross-entropy) and the update (clip,
optimizer step, weight projection), each one compiled function shared by every run of a worker process.

Why functions of (model, ...) and not `model.compile()`: Dynamo treats a module's parameters as inputs (torch's
inline_inbuilt_nn_modules), so a second model of the same shape in the same process hits the first one's graph
instead of compiling again (measured: docs/study.md, "Compiled steps"). The optimizer's LR is a 0-dim tensor
while compiled (`tensor_lr`), so the schedule changes a value, not a guard: no recompilation per step.

When (`use_compile`): train.compile "true" (GPU: the recipe's default) compiles the model itself, as before
(ant.train.module). On CPU train.compile resolves to "false" and is part of the run id, so this path is
train.cpu_compile's, decided when a single-process CPU run starts:
"auto" compiles when the run's estimated eager training time is at least MIN_EAGER_S: long enough that one warm-up
(13-37 s per shape on the quiet machine, issue 23; 50-85 s loaded) is repaid by a 1.2-1.7x faster step within the
run itself. Shorter runs stay eager: the study-mix benchmark showed the warm-up dominating 2-18 s runs
(docs/study.md).
The decision is a function of the config alone (train.num_threads, or 1 when it is 0), never of what the process
or the machine happens to hold: compiled and eager steps differ in float summation order, so a run and its resume
in a fresh process (kill -9, SIGTERM, SLURM requeue) must decide the same way to continue bit for bit. (A rule
that also compiled shapes whose graphs the process already held broke exactly that under pytest-xdist.)
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
import torch.optim.adam as adam_functional

from ant.config import RunConfig
from ant.models.constraints import project_
from ant.optimizers import ADAM_FAMILY

MIN_EAGER_S = 120.0  # at 10 tokens/param: tiny3 (~350 s estimated) compiles, tiny0-tiny2 (1-75 s) stay eager
# Eager single-thread training rate, 6 N FLOPs a token: the quiet machine's Lightning step at batch 4 gives
# 0.5e10 (tiny0) to 2.3e10 (tiny3) FLOP/s (docs/study.md's table); for the estimate only.
CPU_FLOPS = 1.5e10


def use_compile(cfg: RunConfig) -> bool:
    """Whether the run trains through the compiled step (see the module docstring)."""
    t = cfg.train
    threads = t.num_threads or 1
    if t.compile == "true":
        return True
    if cfg.optim.optimizer not in ADAM_FAMILY:  # the compiled update below is Adam(W)'s
        return False
    if t.device != "cpu" or t.cpu_compile == "false":
        return False
    if t.cpu_compile == "true":
        return True
    flops = 6 * (cfg.num_params or 0) * (cfg.steps or 0) * t.batch_size * cfg.data.seq_len
    return flops / (CPU_FLOPS * threads) >= MIN_EAGER_S


def use_compile_packed(cfgs: list[RunConfig]) -> bool:
    """Whether a pack of runs (ant.train.packed_run) trains through the compiled packed step: train.cpu_compile
    (shared by the pack) "true"/"false", or "auto": the pack's estimated eager time, the sum of its runs'
    estimates as above, is at least MIN_EAGER_S. One warm-up serves every run of the pack, so runs too short to
    compile alone compile together. Packed steps compiled vs eager, one thread, K = 4 (2026-12-07, quiet):
    1.5-2.0x at tiny0-tiny3 batch 4, seq 128 and at study v2's d40L3-d56L3 shapes (docs/study.md). Unlike
    use_compile this reads the group as launched, so the packed worker records its choice in its checkpoints and
    a resume keeps it (a member that finished before a restart changes the group, not the choice)."""
    t = cfgs[0].train
    if t.cpu_compile != "auto":
        return t.cpu_compile == "true"
    flops = sum(6 * (c.num_params or 0) * (c.steps or 0) * c.train.batch_size * c.data.seq_len for c in cfgs)
    return flops / (CPU_FLOPS * (t.num_threads or 1)) >= MIN_EAGER_S


def token_loss(forward: Callable, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy in fp32 (here, not in ant.train.module, so this module loads no Lightning)."""
    logits = forward(x)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), y.reshape(-1))


def _loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return token_loss(model, x, y)


@torch.no_grad()
def _update(groups: list, constraints: list, clip: float):
    params = [p for g in groups for p in g[0]]
    norm = torch.nn.utils.clip_grad_norm_(params, clip) if clip else None
    for p, grads, avgs, sqs, steps, lr, beta1, beta2, wd, eps, decoupled in groups:
        adam_functional.adam(p, grads, avgs, sqs, [], steps, foreach=False, decoupled_weight_decay=decoupled,
                             amsgrad=False, beta1=beta1, beta2=beta2, lr=lr, weight_decay=wd, eps=eps,
                             maximize=False)  # fmt: skip
    for p, dim, mode in constraints:  # model.project_weights(), in the graph (as ant.perf.compiled_projection)
        project_(p, dim, mode)
    return norm


def constraints(model: torch.nn.Module) -> list:
    """(param, stored dim, mode) of every weight constraint of the model, single or packed (none for gpt/gptplus)."""
    return [(c.param, c.param_dim, c.mode) for c in model.constraints()]


def adam_groups(opt: torch.optim.Optimizer) -> list:
    """The optimizer's groups as lists of tensors (its state initialised as its own step would): what `_update`
    takes, so that the compiled graph sees tensors, not this optimizer object (a guard on it would compile the
    update again for every run)."""
    out = []
    for g in opt.param_groups:
        params, grads, avgs, sqs, maxs, steps = [], [], [], [], [], []
        opt._init_group(g, params, grads, avgs, sqs, maxs, steps)
        decoupled = bool(g.get("decoupled_weight_decay", isinstance(opt, torch.optim.AdamW)))
        out.append((params, grads, avgs, sqs, steps, g["lr"], *g["betas"], g["weight_decay"], g["eps"], decoupled))
    return out


_compiled: dict[str, object] = {}
# Graphs kept per function: one per (size, batch) shape a worker trains (static shapes, dynamic=False: Dynamo's
# automatic dynamic shapes would turn the second shape into a slower symbolic graph). Torch's default of 8 would
# send a worker's ninth shape back to eager.
SHAPES_PER_PROCESS = 64


def compile_once(name: str, fn: Callable) -> Callable:
    """torch.compile(fn) under `name`, built once per process (every run and pack of the worker shares it)."""
    if name not in _compiled:
        import torch._dynamo.config as dynamo_config

        dynamo_config.recompile_limit = max(dynamo_config.recompile_limit, SHAPES_PER_PROCESS)
        _compiled[name] = torch.compile(fn, dynamic=False)
    return _compiled[name]


def _rope_tables(model, x: torch.Tensor) -> None:
    """Fill the model's RoPE tables for x's length before a compiled call, so the graph takes them as inputs
    (ant.models.layers.Rotary: computed in the graph, Inductor recomputed them per element in the backward)
    and the first call does not compile twice (empty table cache, then filled)."""
    if isinstance(getattr(model, "rope", None), torch.nn.Module):
        model.rope(x.shape[-1], x.device)


def with_rope_tables(fn: Callable) -> Callable:
    """fn(model, x, y) with the model's RoPE tables filled first (`_rope_tables`)."""

    def call(model, x, y):
        _rope_tables(model, x)
        return fn(model, x, y)

    return call


def loss_fn() -> Callable:
    """The compiled (model, x, y) -> loss, one per process."""
    return with_rope_tables(compile_once("loss", _loss))


def update_fn() -> Callable:
    """The compiled (adam_groups(opt), constraints(model), clip) -> pre-clip norm (or None), one per process."""
    return compile_once("update", _update)


def tensor_lr(opt: torch.optim.Optimizer) -> None:
    """Every group's LR as a 0-dim tensor (ant.optimizers.set_lr then fills it in place)."""
    for g in opt.param_groups:
        if not isinstance(g["lr"], torch.Tensor):
            g["lr"] = torch.tensor(float(g["lr"]))
