"""The measuring stage of `ant bench`: build each architecture's model and optimizer, time training steps in
interleaved blocks, and hand back frozen results (`BenchResults`) for ant/bench/report.py to summarise.

A "step" is ant.train's step itself (ant.train.step.train_step: the LR from the schedule, forward + fp32 loss,
backward, grad-norm clip (optim.grad_clip), optimizer step, zero_grad and the weight constraint
`model.project_weights()`). The optimizer is ant.optimizers.build_optimizer on the training recipe's OptimConfig
(ant.recipe.resolve: AdamW + decay 0.1 for gpt/gptplus, Adam for ngpt/angpt, betas, eps; fused on CUDA), so the
bench cannot drift from training's step or recipe. The LR itself is held at --lr (schedule "constant", no warm-up): its
value does not change a step's time and a constant LR keeps the weights finite over long benchmarks.

All architectures live in ONE process and are measured in interleaved blocks (A B B A A B ...), so slow drift of
the machine (clocks, other tenants on a shared CPU) hits every architecture alike. Step times are the intervals
between consecutive step starts (CUDA events on GPU, perf_counter on CPU), i.e. they include the host-side gaps
between steps, and nothing is synchronised inside the measured block. Tokens are random ids: step time does not
depend on the text.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import torch
import torch.nn.functional as F

from ant.bench.config import BenchConfig
from ant.config import RunConfig
from ant.models import build_model
from ant.optimizers import build_optimizer
from ant.perf import StepTimer, StopAfterBlock, compiled_projection, count_compiled_kernels, count_eager_ops
from ant.recipe import resolve
from ant.train.step import train_step


# ---------------------------------------------------------------------------------------------- frozen results
@dataclass(frozen=True)
class ArchResult:
    """What was measured for one architecture (seconds and bytes; the report turns them into its figures)."""

    arch: str
    num_params: int
    flops_per_token: float
    times_s: tuple[float, ...]  # bare-loop step times
    lightning_times_s: tuple[float, ...]  # the same step through a Lightning Trainer (empty without --lightning)
    warmup_s: float  # the unmeasured warm-up steps, compilation included
    static_bytes: int  # parameters + optimizer state
    peak_extra_bytes: int  # CUDA: peak allocation above the static bytes during a block (0 on CPU)
    kernels: MappingProxyType  # eager op counts and compiled kernel counts (ant.perf)


@dataclass(frozen=True)
class BenchResults:
    config: BenchConfig  # resolved
    archs: tuple[ArchResult, ...]

    @property
    def partial(self) -> bool:
        """Stopped early (SIGTERM): fewer measured steps than asked for."""
        return any(len(a.times_s) < self.config.steps for a in self.archs)


# ---------------------------------------------------------------------------------------------- one arch
def run_config(arch: str, cfg: BenchConfig, steps: int) -> RunConfig:
    """The resolved ant RunConfig of this bench for `arch` over `steps` steps: the training recipe's optimizer
    settings, and the RunConfig that ant.train's LightningModule takes."""
    d = {
        "model": {"arch": arch, "size": cfg.size, "vocab_size": cfg.vocab_size},
        "data": {"seq_len": cfg.seq_len, "val_tokens": cfg.seq_len + 1},
        "optim": {"lr": cfg.lr, "schedule": "constant", "warmup_frac": 0.0},
        "train": {
            "tokens": steps * cfg.batch * cfg.seq_len,
            "batch_size": cfg.batch,
            "device": cfg.device,
            "precision": "bf16-mixed" if cfg.dtype == "bf16" else "32",
            # regional: the blocks are already compiled in place; LMModule must not compile the model again
            "compile": "true" if cfg.compile and cfg.compile_mode == "full" else "false",
            "seed": cfg.seed,
        },
    }
    return resolve(RunConfig.from_dict(d))


class Bench:
    """One architecture's model, optimizer and compiled loss, ready to take timed steps."""

    def __init__(self, arch: str, cfg: BenchConfig):
        self.arch, self.cfg = arch, cfg
        dev = torch.device(cfg.device)
        self.run_cfg = run_config(arch, cfg, cfg.warmup + cfg.steps)
        torch.manual_seed(cfg.seed)
        self.model = build_model(arch, cfg.size, vocab_size=cfg.vocab_size, device=dev)
        self.model.train()
        self.loss_fn = make_loss_fn(self.model, cfg.compile, cfg.compile_mode)
        if cfg.project_compiled:
            self.model.project_weights = compiled_projection(self.model)  # the Lightning path calls it too
        self.optimizer = build_optimizer(self.model, self.run_cfg.optim, fused=dev.type == "cuda")
        g = torch.Generator(device="cpu").manual_seed(cfg.seed)
        # A few distinct batches, already on the device, so the loop measures the model and not the input path.
        self.batches = [
            torch.randint(0, cfg.vocab_size, (cfg.batch, cfg.seq_len + 1), generator=g).to(dev) for _ in range(4)
        ]
        self.num_params = int(self.model.num_params())
        self.flops_per_token = float(self.model.flops_per_token(cfg.seq_len))
        self.times_s: list[float] = []
        self.lightning_times_s: list[float] = []
        self.peak_extra_bytes = 0
        self.n = 0
        self.kernels: dict[str, int] = {}
        self.warmup_s = 0.0

    def autocast(self):
        return torch.autocast(self.cfg.device, dtype=torch.bfloat16, enabled=self.cfg.dtype == "bf16")

    def step(self) -> torch.Tensor:
        """One training step (ant.train.step.train_step, as training takes it); returns the loss (no host sync)."""
        c = self.run_cfg
        batch = self.batches[self.n % len(self.batches)]
        step, self.n = self.n % c.steps, self.n + 1
        return train_step(self.model, self.optimizer, batch[:, :-1], batch[:, 1:], optim=c.optim, step=step,
                          steps=c.steps, loss_fn=self._autocast_loss).loss  # fmt: skip

    def _autocast_loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.loss_fn(x, y)

    def count_eager(self) -> dict[str, int]:
        """ATen ops of one eager forward + backward (no optimizer): where extra scalar multiplies show up.
        One sequence is enough (the count does not depend on the batch) and keeps a 0.5B model's eager
        activations small. With regional compilation the blocks are compiled, so there is nothing to count."""
        if self.cfg.compile and self.cfg.compile_mode == "regional":
            return {}
        x = self.batches[0][:1]

        def fwd_bwd() -> None:
            with self.autocast():
                logits = self.model(x[:, :-1])
                loss = F.cross_entropy(logits.float().flatten(0, 1), x[:, 1:].flatten())
            loss.backward()

        counts = count_eager_ops(fwd_bwd)
        self.optimizer.zero_grad(set_to_none=True)
        return {"eager_ops": counts["ops"], "eager_pointwise_ops": counts["pointwise"]}

    def static_bytes(self) -> int:
        """Parameters + optimizer state: what this arch holds between steps (grads are freed by zero_grad)."""
        n = sum(p.numel() * p.element_size() for p in self.model.parameters())
        for state in self.optimizer.state.values():
            n += sum(t.numel() * t.element_size() for t in state.values() if torch.is_tensor(t))
        return n

    def result(self) -> ArchResult:
        return ArchResult(
            arch=self.arch,
            num_params=self.num_params,
            flops_per_token=self.flops_per_token,
            times_s=tuple(self.times_s),
            lightning_times_s=tuple(self.lightning_times_s),
            warmup_s=self.warmup_s,
            static_bytes=self.static_bytes(),
            peak_extra_bytes=self.peak_extra_bytes,
            kernels=MappingProxyType(dict(self.kernels)),
        )


def make_loss_fn(
    model: torch.nn.Module, compile: bool, mode: str = "full"
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Forward + fp32 cross-entropy, with the model compiled when asked. mode "full" is what ant.train does
    (the model compiled whole, loss outside), and the Lightning path trains through this same compiled forward
    (`loss_fn.forward`), so both share one graph; "regional" compiles every block in place instead
    (see BenchConfig.compile_mode)."""
    forward = model
    if compile and mode == "regional":
        for block in model.blocks:
            block.compile()
    elif compile:
        forward = torch.compile(model)

    def loss_fn(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = forward(x)
        return F.cross_entropy(logits.flatten(0, 1).float(), y.flatten())

    loss_fn.forward = forward  # type: ignore[attr-defined]
    return loss_fn


def make_optimizer(model: torch.nn.Module, arch: str, lr: float, device: torch.device) -> torch.optim.Optimizer:
    """The training recipe's optimizer for `model` (an `arch` at tiny1-like scale) at a constant `lr`."""
    cfg = BenchConfig(archs=(arch,), size="tiny1", seq_len=2, batch=1, vocab_size=2, lr=lr, device=device.type)
    return build_optimizer(model, run_config(arch, cfg, 1).optim, fused=device.type == "cuda")


# ---------------------------------------------------------------------------------------------- timing
def run_block(b: Bench, n_steps: int) -> list[float]:
    dev = torch.device(b.cfg.device)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    timer = StepTimer(dev)
    for _ in range(n_steps):
        timer.mark()
        b.step()
    timer.mark()
    times = timer.elapsed()
    if dev.type == "cuda":
        b.peak_extra_bytes = max(b.peak_extra_bytes, torch.cuda.max_memory_allocated() - base)
    return times


def split_steps(total: int, reps: int) -> list[int]:
    return [total // reps + (1 if i < total % reps else 0) for i in range(reps)]


def warm_up(b: Bench, progress: Callable[[str], None]) -> None:
    """The unmeasured first steps (compilation happens here), with the op and kernel counts taken on the way."""
    cfg = b.cfg
    b.kernels = b.count_eager()
    t0 = time.perf_counter()
    with count_compiled_kernels() if cfg.compile else contextlib.nullcontext({}) as compiled:
        for _ in range(cfg.warmup):
            loss = b.step()
    b.kernels.update({f"compiled_{k}": v for k, v in compiled.items()})
    if not torch.isfinite(loss):  # (a sync: the warm-up time below includes all queued work)
        progress(f"warning: {b.arch} loss is {loss.item()} after warm-up")
    b.warmup_s = time.perf_counter() - t0
    progress(f"warm-up {b.arch}: {cfg.warmup} steps in {b.warmup_s:.1f} s (includes compilation)")


def measure(
    cfg: BenchConfig, progress: Callable[[str], None] = print, stop: StopAfterBlock | None = None
) -> BenchResults:
    """Build every arch of the resolved `cfg`, warm each up, then measure in interleaved blocks; block order
    alternates (ABBA) to cancel drift. A stop requested through `stop` ends the measurement after the current round
    of blocks (every architecture has then been measured equally often)."""
    if cfg.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 runs on GPU use TF32 tensor cores, as training does
        torch.backends.cudnn.allow_tf32 = True
    benches = [Bench(a, cfg) for a in cfg.archs]
    for b in benches:
        warm_up(b, progress)
    lightning_steps = max(2, cfg.steps // cfg.reps)
    t_measure = time.perf_counter()
    stop = stop or StopAfterBlock()  # without a signal handler attached, never requested
    stop.measuring = True
    for rep, n in enumerate(split_steps(cfg.steps, cfg.reps)):
        for b in benches if rep % 2 == 0 else benches[::-1]:
            b.times_s += run_block(b, n)
            if cfg.lightning and not stop.requested:
                b.lightning_times_s += _lightning_block(b, lightning_steps, stop)
        done = ", ".join(f"{b.arch} {1e3 * statistics.median(b.times_s):.1f} ms" for b in benches)
        elapsed = time.perf_counter() - t_measure
        eta = elapsed / (rep + 1) * (cfg.reps - rep - 1)
        progress(f"block {rep + 1}/{cfg.reps}: median so far {done} | {elapsed:.0f} s, ETA {eta:.0f} s")
        if stop.requested:
            progress(f"stopped after block {rep + 1}/{cfg.reps}")
            break
    return BenchResults(cfg, tuple(b.result() for b in benches))


def _lightning_block(b: Bench, n_steps: int, stop: StopAfterBlock, n_warm: int = 2) -> list[float]:
    """`n_steps` timed steps (after `n_warm` untimed ones) of b's model through a Lightning Trainer."""
    # Imported here: Lightning is loaded only when --lightning asks for it (its import takes seconds).
    from ant.bench.lightning import lightning_block

    run_cfg = run_config(b.arch, b.cfg, n_warm + n_steps + 1)
    try:
        return lightning_block(run_cfg, b.model, b.loss_fn.forward, b.batches, n_steps, n_warm)
    except SystemExit:  # Lightning turns a SIGTERM inside fit() into SIGTERMException
        if not stop.requested:
            raise
        return []
