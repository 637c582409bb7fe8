"""`ant bench`: step time, tokens/s, MFU and peak memory of a full training step, per architecture.

    ant bench --archs gptplus angpt ngpt --size 0.5B --seq-len 2048 --batch 8 --compile --dtype bf16 --out b.json

A "step" is everything a training step does: forward + loss, backward, grad-norm clip, optimizer step,
zero_grad and the weight constraint `model.project_weights()`. All architectures live in ONE process and are
measured in interleaved blocks (A B B A A B ...), so slow drift of the machine (clocks, other tenants on a shared
CPU) hits every architecture alike; the overhead column is each architecture's median step time over the first's.

Step times are the intervals between consecutive step starts (CUDA events on GPU, perf_counter on CPU), i.e. they
include the host-side gaps between steps, and nothing is synchronised inside the measured block. `--lightning`
measures the same step through a real Lightning Trainer (automatic optimisation, gradient_clip_val, a projection
hook), so the JSON also shows what the framework costs over the bare loop.

Tokens are random ids: step time does not depend on the text. The report (JSON and table) is built in
ant/bench_report.py; the Lightning-driven step in ant/bench_lightning.py.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from ant.bench_report import format_table, summarize
from ant.errors import ConfigError, check_choice
from ant.fsio import atomic_write_json
from ant.perf import (
    StepTimer,
    StopAfterBlock,
    compiled_projection,
    count_compiled_kernels,
    count_eager_ops,
)

ARCH_CHOICES = ("gpt", "gptplus", "ngpt", "angpt")
DTYPES = ("auto", "bf16", "fp32")
COMPILE_MODES = ("full", "regional")


@dataclass
class BenchConfig:
    archs: list[str] = field(default_factory=lambda: ["gptplus", "angpt", "ngpt"])
    size: str = "tiny3"
    seq_len: int | None = None  # None -> 2048 for paper sizes, 128 for tiny rungs
    batch: int | None = None  # None -> 8 for paper sizes (the paper's Table 2 setting), 16 for tiny rungs
    vocab_size: int | None = None  # None -> 50304 for paper sizes, 4096 for tiny rungs (a BPE-4096 tokenizer)
    steps: int = 20  # measured steps per architecture (bare loop), split over `reps` blocks
    warmup: int = 5  # unmeasured steps per architecture first (compilation happens here)
    reps: int = 4  # interleaved blocks
    compile: bool = False
    # full: torch.compile(model), as ant.train does. regional: each block compiled on its own; identical blocks
    # share one compiled graph, so compilation takes one block's time instead of the whole model's (cold start
    # on a GPU: minutes -> seconds), at the price of no fusion across block boundaries.
    compile_mode: str = "full"
    # Replace model.project_weights by one compiled function over all constrained matrices (see
    # compiled_projection): a candidate for the training loop, measured here against the eager loop.
    project_compiled: bool = False
    device: str = "auto"
    dtype: str = "auto"  # auto -> bf16 autocast on cuda, fp32 on cpu
    lightning: bool = False
    seed: int = 0
    lr: float = 1e-3  # irrelevant for timing, but keeps the weights finite over long benchmarks

    def resolve(self) -> BenchConfig:
        from ant.models.sizes import PAPER_SIZES, get_size

        if not self.archs:
            raise ConfigError("--archs", "give at least one architecture", ARCH_CHOICES)
        for a in self.archs:
            check_choice("--archs", a, ARCH_CHOICES)
        if len(set(self.archs)) != len(self.archs):
            raise ConfigError("--archs", f"duplicate architecture in {self.archs}", ARCH_CHOICES)
        get_size(self.size)
        check_choice("--device", self.device, ("auto", "cpu", "cuda"))
        check_choice("--dtype", self.dtype, DTYPES)
        check_choice("--compile-mode", self.compile_mode, COMPILE_MODES)
        for name, minimum in (("steps", 1), ("warmup", 1), ("reps", 1), ("seq_len", 2), ("batch", 1)):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < minimum):
                raise ConfigError(f"--{name.replace('_', '-')}", f"must be an integer >= {minimum}, got {v!r}")
        if self.steps < self.reps:
            raise ConfigError("--steps", f"must be >= --reps ({self.reps}) so every block measures a step")
        paper = self.size in PAPER_SIZES
        r = BenchConfig(**asdict(self))
        if r.device == "auto":
            r.device = "cuda" if torch.cuda.is_available() else "cpu"
        if r.device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device", "cuda requested but torch sees no CUDA device", ["cpu"])
        if r.dtype == "auto":
            r.dtype = "bf16" if r.device == "cuda" else "fp32"
        r.seq_len = r.seq_len or (2048 if paper else 128)
        r.batch = r.batch or (8 if paper else 16)
        r.vocab_size = r.vocab_size or (50304 if paper else 4096)
        return r


# ---------------------------------------------------------------------------------------------- one arch
class Bench:
    """One architecture's model, optimiser and compiled loss, ready to take timed steps."""

    def __init__(self, arch: str, cfg: BenchConfig):
        from ant.models import build_model

        self.arch, self.cfg = arch, cfg
        dev = torch.device(cfg.device)
        torch.manual_seed(cfg.seed)
        self.model = build_model(arch, cfg.size, vocab_size=cfg.vocab_size, device=dev)
        self.model.train()
        self.loss_fn = make_loss_fn(self.model, cfg.compile, cfg.compile_mode)
        if cfg.project_compiled:
            self.model.project_weights = compiled_projection(self.model)  # the Lightning path calls it too
        self.optimizer = make_optimizer(self.model, arch, cfg.lr, dev)
        g = torch.Generator(device="cpu").manual_seed(cfg.seed)
        # A few distinct batches, already on the device, so the loop measures the model and not the input path.
        self.batches = [
            torch.randint(0, cfg.vocab_size, (cfg.batch, cfg.seq_len + 1), generator=g).to(dev) for _ in range(4)
        ]
        self.flops_per_token = float(self.model.flops_per_token(cfg.seq_len))
        self.num_params = int(self.model.num_params())
        self.times_s: list[float] = []
        self.lightning_times_s: list[float] = []
        self.peak_extra_bytes = 0
        self.n = 0
        self.kernels: dict[str, int] = {}
        self.warmup_s = 0.0

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

    def autocast(self):
        use = self.cfg.dtype == "bf16"
        return torch.autocast(self.cfg.device, dtype=torch.bfloat16, enabled=use)

    def step(self) -> torch.Tensor:
        batch = self.batches[self.n % len(self.batches)]
        self.n += 1
        with self.autocast():
            loss = self.loss_fn(batch[:, :-1], batch[:, 1:])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.model.project_weights()
        return loss

    def run_config(self, steps: int):
        """A resolved ant RunConfig equivalent to this bench (for ant.train's LightningModule)."""
        from ant.config import RunConfig

        c = self.cfg
        d = {
            "model": {"arch": self.arch, "size": c.size, "vocab_size": c.vocab_size},
            "data": {"seq_len": c.seq_len, "val_tokens": c.seq_len + 1},
            "optim": {"lr": c.lr},
            "train": {
                "tokens": steps * c.batch * c.seq_len,
                "batch_size": c.batch,
                "device": c.device,
                "precision": "bf16-mixed" if c.dtype == "bf16" else "32",
                # regional: the blocks are already compiled in place; LMModule must not compile the model again
                "compile": "true" if c.compile and c.compile_mode == "full" else "false",
                "seed": c.seed,
            },
        }
        return RunConfig.from_dict(d).resolve()

    def static_bytes(self) -> int:
        """Parameters + optimizer state: what this arch holds between steps (grads are freed by zero_grad)."""
        n = sum(p.numel() * p.element_size() for p in self.model.parameters())
        for state in self.optimizer.state.values():
            n += sum(t.numel() * t.element_size() for t in state.values() if torch.is_tensor(t))
        return n


def make_loss_fn(
    model: torch.nn.Module, compile: bool, mode: str = "full"
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Forward + fp32 cross-entropy, with the model compiled when asked. mode "full" is what ant.train.LMModule
    does (torch.compile(model), loss outside), so the bare loop and the Lightning path share one compiled graph;
    "regional" compiles every block in place instead (see BenchConfig.compile_mode)."""
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
    """The paper's recipe (ant.config): AdamW + decay on matrices for gpt/gptplus, Adam for ngpt/angpt."""
    decay = 0.1 if arch in ("gpt", "gptplus") else 0.0
    kw: dict[str, Any] = {"lr": lr, "betas": (0.9, 0.95), "eps": 1e-9}
    if device.type == "cuda":
        kw["fused"] = True  # one kernel for the whole update; what a tuned training loop uses on GPU
    cls = torch.optim.AdamW if decay > 0 else torch.optim.Adam
    return cls(model.param_groups(decay), **kw)


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


def measure(
    benches: list[Bench], cfg: BenchConfig, progress: Callable[[str], None] = print, stop: StopAfterBlock | None = None
) -> None:
    """Warm every arch up, then measure in interleaved blocks; block order alternates (ABBA) to cancel drift.
    A stop requested through `stop` ends the measurement after the current round of blocks (every architecture
    has then been measured equally often)."""
    for b in benches:
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
    from ant.bench_lightning import lightning_block  # Lightning is imported only when --lightning asks for it

    lightning_steps = max(2, cfg.steps // cfg.reps)
    t_measure = time.perf_counter()
    stop = stop or StopAfterBlock()  # without a signal handler attached, never requested
    stop.measuring = True
    for rep, n in enumerate(split_steps(cfg.steps, cfg.reps)):
        order = benches if rep % 2 == 0 else benches[::-1]
        for b in order:
            b.times_s += run_block(b, n)
            if cfg.lightning and not stop.requested:
                try:
                    b.lightning_times_s += lightning_block(b, lightning_steps)
                except SystemExit:  # Lightning turns a SIGTERM inside fit() into SIGTERMException
                    if not stop.requested:
                        raise
        done = ", ".join(f"{b.arch} {1e3 * statistics.median(b.times_s):.1f} ms" for b in benches)
        elapsed = time.perf_counter() - t_measure
        eta = elapsed / (rep + 1) * (cfg.reps - rep - 1)
        progress(f"block {rep + 1}/{cfg.reps}: median so far {done} | {elapsed:.0f} s, ETA {eta:.0f} s")
        if stop.requested:
            progress(f"stopped after block {rep + 1}/{cfg.reps}")
            break


def bench(
    cfg: BenchConfig, progress: Callable[[str], None] = print, stop: StopAfterBlock | None = None
) -> dict[str, Any]:
    """Run the benchmark described by `cfg` and return the report dict (see the module docstring)."""
    cfg = cfg.resolve()
    if cfg.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # fp32 runs on GPU use TF32 tensor cores, as training does
        torch.backends.cudnn.allow_tf32 = True
    benches = [Bench(a, cfg) for a in cfg.archs]
    measure(benches, cfg, progress, stop)
    return summarize(benches, cfg)


# ---------------------------------------------------------------------------------------------- CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    d = BenchConfig()
    p.add_argument("--archs", nargs="+", default=d.archs, help="architectures; the first is the reference")
    p.add_argument("--size", default=d.size, help="a size rung (ant.models.sizes), e.g. tiny3, 125M, 0.5B")
    p.add_argument("--seq-len", type=int, default=None, help="default 2048 (paper sizes) / 128 (tiny)")
    p.add_argument("--batch", type=int, default=None, help="sequences per step; default 8 (paper) / 16 (tiny)")
    p.add_argument("--vocab-size", type=int, default=None, help="default 50304 (paper) / 4096 (tiny)")
    p.add_argument("--steps", type=int, default=d.steps, help="measured steps per architecture")
    p.add_argument("--warmup", type=int, default=d.warmup, help="unmeasured steps first (compilation)")
    p.add_argument("--reps", type=int, default=d.reps, help="interleaved measurement blocks")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (as training on GPU does)")
    p.add_argument("--compile-mode", default=d.compile_mode, choices=COMPILE_MODES, help="full model or per block")
    p.add_argument("--project-compiled", action="store_true", help="compile the weight projection (candidate)")
    p.add_argument("--device", default=d.device, choices=("auto", "cpu", "cuda"))
    p.add_argument("--dtype", default=d.dtype, choices=DTYPES, help="auto: bf16 autocast on cuda, fp32 on cpu")
    p.add_argument("--lightning", action="store_true", help="also time the step through a Lightning Trainer")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--out", default=None, help="write the report to this JSON file")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = BenchConfig(
        archs=list(args.archs),
        size=args.size,
        seq_len=args.seq_len,
        batch=args.batch,
        vocab_size=args.vocab_size,
        steps=args.steps,
        warmup=args.warmup,
        reps=args.reps,
        compile=args.compile,
        compile_mode=args.compile_mode,
        project_compiled=args.project_compiled,
        device=args.device,
        dtype=args.dtype,
        lightning=args.lightning,
        seed=args.seed,
    )
    # Under a time limit, SIGTERM after the first measured block still yields a (partial) report.
    stop = StopAfterBlock()
    signal.signal(signal.SIGTERM, stop)
    report = bench(cfg, stop=stop)
    print(format_table(report))
    if args.out:
        atomic_write_json(Path(args.out), report, indent=2)
        print(f"wrote {args.out}")
    return 0
