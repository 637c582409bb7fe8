"""`ant bench`'s settings: one frozen dataclass whose fields are the command's flags (ant/bench/cli.py derives the
parser from them: name, default, `help` from each field's metadata, choices from its Literal type; the values go
through ant.decode, the decoder every settings class shares), and its own rules (`resolve`: defaults that follow
the size and the device, and the checks that name the flag at fault)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields, replace
from typing import Any, Literal

import torch

from ant.archs import PAPER_ORDER
from ant.config import Arch, Device
from ant.decode import check_int
from ant.errors import ConfigError, check_choice
from ant.models.sizes import PAPER_SIZES, get_size

DType = Literal["auto", "bf16", "fp32"]
CompileMode = Literal["full", "regional"]
ARCHS, DEVICES = typing.get_args(Arch), typing.get_args(Device)
DTYPES, COMPILE_MODES = typing.get_args(DType), typing.get_args(CompileMode)


def _help(text: str) -> dict[str, Any]:
    """A field's metadata: its flag's help line (ant/bench/cli.py)."""
    return {"help": text}


@dataclass(frozen=True)
class BenchConfig:
    archs: tuple[Arch, ...] = field(default=PAPER_ORDER, metadata=_help("architectures; the first is the reference"))
    size: str = field(default="tiny3", metadata=_help("a size rung (ant.models.sizes), e.g. tiny3, 125M, 0.5B"))
    seq_len: int | None = field(default=None, metadata=_help("default 2048 (paper sizes) / 128 (tiny)"))
    # 8 for paper sizes is the paper's Table 2 setting
    batch: int | None = field(default=None, metadata=_help("sequences per step; default 8 (paper) / 16 (tiny)"))
    # 4096 for tiny rungs: a BPE-4096 tokenizer
    vocab_size: int | None = field(default=None, metadata=_help("default 50304 (paper) / 4096 (tiny)"))
    steps: int = field(default=20, metadata=_help("measured steps per architecture, split over --reps blocks"))
    warmup: int = field(default=5, metadata=_help("unmeasured steps per architecture first (compilation)"))
    reps: int = field(default=4, metadata=_help("interleaved measurement blocks"))
    compile: bool = field(default=False, metadata=_help("torch.compile the model (as training on GPU does)"))
    # full: torch.compile(model), as ant.train does. regional: each block compiled on its own; identical blocks
    # share one compiled graph, so compilation takes one block's time instead of the whole model's (cold start
    # on a GPU: minutes -> seconds), at the price of no fusion across block boundaries.
    compile_mode: CompileMode = field(default="full", metadata=_help("full model or per block"))
    # model.project_weights as one compiled function over all constrained matrices (ant.perf.compiled_projection):
    # a candidate for the training loop, measured here against the eager loop.
    project_compiled: bool = field(default=False, metadata=_help("compile the weight projection (candidate)"))
    device: Device = field(default="auto", metadata=_help("auto: cuda when torch sees one"))
    dtype: DType = field(default="auto", metadata=_help("auto: bf16 autocast on cuda, fp32 on cpu"))
    lightning: bool = field(default=False, metadata=_help("also time the step through a Lightning Trainer"))
    threads: int = field(default=0, metadata=_help("torch CPU threads (0: torch's default)"))
    seed: int = field(default=0, metadata=_help("weights and token batches"))
    # irrelevant for timing, but keeps the weights finite over long benchmarks (held constant, see measure.py)
    lr: float = field(default=1e-3, metadata=_help("peak LR of the timed steps (does not change their time)"))

    def resolve(self) -> BenchConfig:
        """Checked, with every `auto`/None filled in; the flag at fault is named in a ConfigError."""
        if not self.archs:
            raise ConfigError("--archs", "give at least one architecture", ARCHS)
        for a in self.archs:
            check_choice("--archs", a, ARCHS)
        if len(set(self.archs)) != len(self.archs):
            raise ConfigError("--archs", f"duplicate architecture in {list(self.archs)}", ARCHS)
        get_size(self.size)
        check_choice("--device", self.device, DEVICES)
        check_choice("--dtype", self.dtype, DTYPES)
        check_choice("--compile-mode", self.compile_mode, COMPILE_MODES)
        # finite bounds on every count: `--steps 10**12` would time steps for ever (issue 26)
        bounds = {"steps": (1, 10**6), "warmup": (1, 10**6), "reps": (1, 10**4), "seq_len": (2, 2**16),
                  "batch": (1, 2**20), "threads": (0, 4096), "seed": (0, 2**32 - 1)}  # fmt: skip
        for name, (lo, hi) in bounds.items():
            if getattr(self, name) is not None:
                check_int(f"--{name.replace('_', '-')}", getattr(self, name), lo, hi)
        if isinstance(self.lr, bool) or not isinstance(self.lr, (int, float)) or not 0 < self.lr <= 10:
            raise ConfigError("--lr", f"must be a number in (0, 10], got {self.lr!r}")  # also refuses nan, inf
        if self.steps < self.reps:
            raise ConfigError("--steps", f"must be >= --reps ({self.reps}) so every block measures a step")
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cuda" and not torch.cuda.is_available():
            raise ConfigError("--device", "cuda requested but torch sees no CUDA device", ["cpu"])
        paper = self.size in PAPER_SIZES
        return replace(
            self,
            archs=tuple(self.archs),
            device=device,
            dtype=("bf16" if device == "cuda" else "fp32") if self.dtype == "auto" else self.dtype,
            seq_len=self.seq_len or (2048 if paper else 128),
            batch=self.batch or (8 if paper else 16),
            vocab_size=self.vocab_size or (50304 if paper else 4096),
        )

    def to_dict(self) -> dict[str, Any]:
        """The report's "config" object (JSON: archs as a list)."""
        return {f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v for f in fields(self)}
