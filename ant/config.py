"""One typed config describes one run: RunConfig = ModelConfig + DataConfig + OptimConfig + TrainConfig.

Life cycle:
    cfg = RunConfig.from_yaml("run.yaml")          # or RunConfig.from_dict / RunConfig()
    cfg = cfg.with_overrides(["train.seed=3"])       # the CLI's `--set key=value`
    cfg = cfg.resolve()                              # fill every `None`/"auto" from the paper's recipe; validates
    cfg.run_id()                                      # readable prefix + hash of the resolved config

`resolve()` is pure: it returns a new config in which nothing is left to chance, so the saved `config.yaml` of a
run reproduces it exactly. Everything that is wrong with a config is reported by `validate()` as a ConfigError
naming the field and the allowed values (exit code 2 at the CLI), before anything is written.

The recipe (paper-notes §3-4, Table F.2):
- gpt/gptplus: AdamW, weight decay 0.1 on matrices only, linear warm-up over 10 % of the steps;
- ngpt/angpt: Adam, no weight decay, no warm-up;
- all: betas (0.9, 0.95), but beta2 = 0.99 below 100M parameters (App. G); eps 1e-9; grad-clip 1.0; cosine decay
  to 0.01 x peak; bf16-mixed + torch.compile on GPU, fp32 eager on CPU.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ant.errors import ConfigError, check_choice, check_range, parse_yaml_value, read_user_file

ARCHS = ("gpt", "gptplus", "ngpt", "angpt")
TOKENIZERS = ("bytes", "bpe", "gpt2")
OPTIMIZERS = ("auto", "adamw", "adam")
SCHEDULES = ("cosine", "linear", "constant", "wsd")
DECAY_SHAPES = ("1-sqrt", "linear")  # of the wsd decay (ant.train.optim)
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "32", "bf16-mixed")
COMPILE = ("auto", "true", "false")
LOGGERS = ("csv", "tensorboard", "wandb", "mlflow")  # Lightning's logger classes (ant.train); csv is always cheap
STRATEGIES = ("auto", "ddp", "fsdp")  # Lightning strategies for train.devices x train.num_nodes > 1

# Peak learning rate when none is given. Sweeps normally set it explicitly or through a rule (ant.sweep.grid).
DEFAULT_LR = {"gpt": 3e-3, "gptplus": 3e-3, "ngpt": 3e-3, "angpt": 3e-3}
# Finite bounds of every float field (lo, hi, lo excluded): wide enough for any sane experiment (an lr of 50 makes
# a deliberately diverging test run), narrow enough that .inf, 1e400 and typos fail here, naming the field.
FLOAT_BOUNDS = {
    "optim.lr": (0.0, 1e3, True),
    "optim.beta1": (0.0, 1.0, False),
    "optim.beta2": (0.0, 1.0, False),
    "optim.eps": (0.0, 1.0, True),
    "optim.weight_decay": (0.0, 1e3, False),
    "optim.warmup_frac": (0.0, 1.0, False),
    "optim.final_lr_frac": (0.0, 1.0, False),
    "optim.decay_frac": (0.0, 1.0, True),
    "optim.grad_clip": (0.0, 1e9, False),
    "train.tokens_per_param": (0.0, 1e6, True),
    "train.divergence_factor": (1.0, 1e6, True),
}
MAX_TOKENS = 10**15  # more than any model has been trained on; train.tokens=1e30 is a typo, not a plan
MAX_SEQ_LEN = 2**16  # 32x the paper's 2048; a larger window is a typo at these model sizes
# App. G: beta2 = 0.99 for models below 100M parameters, 0.95 above.
BETA2_SMALL, BETA2_LARGE, BETA2_THRESHOLD = 0.99, 0.95, 100e6


@dataclass
class ModelConfig:
    arch: str = "angpt"
    size: str = "tiny3"
    # None: the tokenizer's vocabulary padded up to a multiple of 64 (the paper pads GPT-NeoX's to 50304).
    vocab_size: int | None = None
    # Extra keyword arguments for ant.models.build_model: shape overrides (n_layers=3) and ablation switches.
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class DataConfig:
    # "default": the offline corpus built from registry packages (ant.data.sources); or a path to a .txt/.jsonl
    # file or a folder of them; or "hf:NAME" for a Hugging Face dataset (needs network).
    corpus: str = "default"
    tokenizer: str = "bpe"
    bpe_vocab_size: int = 4096  # only for tokenizer=bpe
    seq_len: int = 128
    # The validation set is this many tokens, the same for every run on a corpus + tokenizer.
    val_tokens: int = 131072
    # Where corpora, tokenizers and token files are cached (relative paths: to the working dir). None: $ANT_CACHE,
    # else $XDG_CACHE_HOME/ant, else ~/.cache/ant, so that checkouts share one corpus (ant.data.cache_dir_of).
    cache_dir: str | None = None
    # Streamed corpora (hf:NAME): stop after this many tokens (None: the whole corpus). Changes the data, so it
    # is part of the run id.
    max_tokens: int | None = None
    # Processes that tokenise the corpus in parallel (the token files are the same for any count): not in the id.
    num_proc: int = 1


@dataclass
class OptimConfig:
    lr: float | None = None  # peak LR; None -> DEFAULT_LR[arch]
    optimizer: str = "auto"  # auto -> adamw for gpt/gptplus, adam for ngpt/angpt
    beta1: float = 0.9
    beta2: float | None = None  # None -> 0.99 below 100M parameters, else 0.95
    eps: float = 1e-9
    weight_decay: float | None = None  # None -> 0.1 (gpt/gptplus, matrices only), 0 (ngpt/angpt)
    warmup_frac: float | None = None  # None -> 0.1 (gpt/gptplus), 0 (ngpt/angpt)
    schedule: str = "cosine"
    final_lr_frac: float = 0.01  # the LR decays to final_lr_frac x peak
    # wsd (warmup-stable-decay, ant.train.optim): the last decay_frac of the steps decay to final_lr_frac x peak
    # with decay_shape; the warm-up is warmup_steps, an absolute count so that wsd runs differing only in their
    # budget share every step before the shorter one's decay (None -> warmup_frac x steps; a grid's `budgets:`
    # family sets it from its smallest budget). warmup_steps, when given, overrides warmup_frac for any schedule.
    decay_frac: float = 0.2
    decay_shape: str = "1-sqrt"
    warmup_steps: int | None = None
    grad_clip: float = 1.0  # 0 disables clipping


@dataclass
class TrainConfig:
    # The token budget is the unit: give exactly one of tokens / tokens_per_param. Steps are derived from it.
    tokens: int | None = None
    tokens_per_param: float | None = None
    batch_size: int = 16  # sequences per optimizer step
    # Sequences per forward/backward pass (gradient accumulation over batch_size / micro_batch_size passes, also
    # the evaluation batch); 0 -> the whole batch. A memory setting, not part of the run id.
    micro_batch_size: int = 0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"  # auto -> bf16-mixed on cuda, 32 on cpu
    compile: str = "auto"  # auto -> true on cuda, false on cpu
    eval_interval: int = 0  # steps between validations; 0 -> about 20 evaluations per run
    log_interval: int = 10  # steps between train-loss rows in metrics.parquet
    diag_interval: int = 0  # steps between residual-norm / alpha diagnostics; 0 -> about 5 per run
    ckpt_interval: int = 0  # steps between checkpoints; 0 -> about 10 per run
    divergence_factor: float = 3.0  # diverged if the smoothed loss exceeds factor x its running minimum
    num_threads: int = 0  # torch CPU threads; 0 -> torch's default
    # Log the gradient noise scale (gns_* columns; ant.train.noise_scale) from the micro-batch gradients: needs
    # micro_batch_size < batch_size. Measurement only, the training result is the same: not part of the run id.
    noise_scale: bool = False
    # Where the rows of metrics.parquet are also sent: Lightning's own loggers (csv, tensorboard, wandb, mlflow).
    # Watching a run does not change it: not part of the run id.
    loggers: list[str] = field(default_factory=lambda: ["csv"])
    # Data-parallel training (issue 15): processes per node (GPUs, or CPU processes with gloo), nodes, and the
    # Lightning strategy. The global batch is train.batch_size whatever the device count, so a run's result does
    # not depend on them (beyond reduction order): not part of the run id.
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out_dir: str = "results/runs"
    # Filled by resolve(): parameter count and derived step count, kept in config.yaml for readers.
    num_params: int | None = None
    steps: int | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RunConfig:
        return _build(cls, d or {}, prefix="")

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        p = Path(path)
        d = read_user_file(p, "config", "yaml")
        if d is not None and not isinstance(d, dict):
            raise ConfigError("config", f"{p} must hold a mapping of sections", _section_names())
        return cls.from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def with_overrides(self, assignments: list[str] | None) -> RunConfig:
        """Apply `section.key=value` strings (values parsed as YAML scalars): `train.seed=3`."""
        d = self.to_dict()
        for a in assignments or []:
            if "=" not in a:
                raise ConfigError("--set", f"expected key=value, got {a!r}")
            key, raw = a.split("=", 1)
            parts = key.strip().split(".")
            value = parse_yaml_value(raw, key.strip())
            node = d
            for i, part in enumerate(parts[:-1]):
                if not isinstance(node, dict) or part not in node:
                    allowed = list(node) if isinstance(node, dict) else None
                    raise ConfigError(".".join(parts[: i + 1]), "unknown config key", allowed)
                if node[part] is None and parts[: i + 1] == ["model", "options"]:
                    node[part] = {}
                node = node[part]
            last = parts[-1]
            in_options = parts[:2] == ["model", "options"] and len(parts) == 3
            if not in_options and last not in node:
                raise ConfigError(key, "unknown config key", list(node))
            node[last] = value
        return RunConfig.from_dict(d)

    # ------------------------------------------------------------------ resolution
    def validate(self) -> None:
        """Checks that need no model or data. resolve() runs it and the model-dependent checks."""
        m, dc, o, t = self.model, self.data, self.optim, self.train
        check_choice("model.arch", m.arch, ARCHS)
        from ant.models.sizes import get_size

        get_size(m.size)
        if m.vocab_size is not None:
            _check_int("model.vocab_size", m.vocab_size, minimum=2, maximum=2**24)
        for k, v in m.options.items():  # the model checks names and ranges; no option may be .inf or .nan
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"model.options.{k}", f"must be a finite number, got {v!r}")
        if not (isinstance(dc.tokenizer, str) and dc.tokenizer.startswith("hf:") and len(dc.tokenizer) > 3):
            check_choice("data.tokenizer", dc.tokenizer, [*TOKENIZERS, "hf:NAME_OR_PATH"])
        _check_int("data.seq_len", dc.seq_len, minimum=2, maximum=MAX_SEQ_LEN)
        _check_int("data.val_tokens", dc.val_tokens, minimum=2, maximum=MAX_TOKENS)
        if dc.val_tokens < dc.seq_len + 1:
            msg = f"{dc.val_tokens} tokens hold no window of data.seq_len {dc.seq_len} + 1 tokens"
            raise ConfigError("data.val_tokens", msg, f">= {dc.seq_len + 1}, or a data.seq_len below {dc.val_tokens}")
        if dc.tokenizer == "bpe":
            _check_int("data.bpe_vocab_size", dc.bpe_vocab_size, minimum=257, maximum=2**20)
        if not dc.corpus:
            raise ConfigError("data.corpus", "must not be empty", "'default', a path, or 'hf:NAME'")
        if dc.corpus != "default" and not dc.corpus.startswith("hf:") and not Path(dc.corpus).exists():
            raise ConfigError("data.corpus", f"no such file or folder: {dc.corpus}", "'default', a path, or 'hf:NAME'")
        check_choice("optim.optimizer", o.optimizer, OPTIMIZERS)
        check_choice("optim.schedule", o.schedule, SCHEDULES)
        for name, (lo, hi, lo_open) in FLOAT_BOUNDS.items():
            section, key = name.split(".")
            v = getattr(getattr(self, section), key)
            if v is not None:
                check_range(name, v, lo, hi, lo_open=lo_open)
        for name in ("beta1", "beta2"):  # [0, 1): beta = 1 never forgets
            v = getattr(o, name)
            if v is not None and v >= 1:
                raise ConfigError(f"optim.{name}", f"must be in [0, 1), got {v!r}")
        check_choice("optim.decay_shape", o.decay_shape, DECAY_SHAPES)
        if o.warmup_steps is not None:
            _check_int("optim.warmup_steps", o.warmup_steps, minimum=0)
        if (t.tokens is None) == (t.tokens_per_param is None):
            raise ConfigError("train.tokens", "give exactly one of train.tokens and train.tokens_per_param")
        if t.tokens is not None:
            _check_int("train.tokens", t.tokens, minimum=1, maximum=MAX_TOKENS)
        _check_int("train.batch_size", t.batch_size, minimum=1)
        _check_int("train.micro_batch_size", t.micro_batch_size, minimum=0)
        if t.micro_batch_size and t.batch_size % t.micro_batch_size:
            divisors = [n for n in range(1, t.batch_size + 1) if t.batch_size % n == 0]
            msg = f"{t.micro_batch_size} does not divide batch_size {t.batch_size}"
            raise ConfigError("train.micro_batch_size", msg, divisors)
        _check_int("train.seed", t.seed, minimum=0, maximum=2**32 - 1)
        check_choice("train.device", t.device, DEVICES)
        check_choice("train.precision", t.precision, PRECISIONS)
        check_choice("train.compile", t.compile, COMPILE)
        for name in ("eval_interval", "log_interval", "diag_interval", "ckpt_interval", "num_threads"):
            _check_int(f"train.{name}", getattr(t, name), minimum=0)
        _check_int("train.log_interval", t.log_interval, minimum=1)
        for i, name in enumerate(t.loggers):
            check_choice(f"train.loggers[{i}]", name, LOGGERS)
        _check_int("train.devices", t.devices, minimum=1, maximum=4096)
        _check_int("train.num_nodes", t.num_nodes, minimum=1, maximum=4096)
        check_choice("train.strategy", t.strategy, STRATEGIES)
        if dc.max_tokens is not None:
            _check_int("data.max_tokens", dc.max_tokens, minimum=1, maximum=MAX_TOKENS)
        _check_int("data.num_proc", dc.num_proc, minimum=1, maximum=1024)
        if t.noise_scale and not 0 < t.micro_batch_size < t.batch_size:
            below = [n for n in range(1, t.batch_size) if t.batch_size % n == 0]
            msg = f"needs >= 2 micro-batches a step; micro_batch_size {t.micro_batch_size}, batch_size {t.batch_size}"
            allowed = f"false, or true with train.micro_batch_size in {below}" if below else "false"
            raise ConfigError("train.noise_scale", msg, allowed)

    def resolve(self, vocab_size: int | None = None) -> RunConfig:
        """Return a copy with every default filled in from the recipe. `vocab_size` is the tokenizer's, used
        when model.vocab_size is None (padded up to a multiple of 64)."""
        self.validate()
        r = RunConfig.from_dict(self.to_dict())
        m, o, t = r.model, r.optim, r.train
        if m.vocab_size is None:
            if vocab_size is None:
                vocab_size = _tokenizer_vocab(r.data)
            m.vocab_size = int(math.ceil(vocab_size / 64) * 64)
        from ant.models.counts import num_params  # late import: config is glue above models

        # counted in closed form (no model is built: ~20 ms a run on the meta device); options are validated
        # as build_model validates them
        try:
            r.num_params = num_params(m.arch, m.size, m.vocab_size, m.options)
        except TypeError as e:  # an unknown option name
            raise ConfigError("model.options", str(e)) from None
        matrices_decay = m.arch in ("gpt", "gptplus")
        if o.lr is None:
            o.lr = DEFAULT_LR[m.arch]
        if o.optimizer == "auto":
            o.optimizer = "adamw" if matrices_decay else "adam"
        if o.beta2 is None:
            o.beta2 = BETA2_SMALL if r.num_params < BETA2_THRESHOLD else BETA2_LARGE
        if o.weight_decay is None:
            o.weight_decay = 0.1 if matrices_decay else 0.0
        if o.warmup_frac is None:
            o.warmup_frac = 0.1 if matrices_decay else 0.0
        if t.tokens is None:
            t.tokens = int(round(t.tokens_per_param * r.num_params))
        t.tokens_per_param = None  # tokens is now the single source of truth
        tokens_per_step = t.batch_size * r.data.seq_len
        r.steps = max(1, math.ceil(t.tokens / tokens_per_step))
        if o.schedule == "wsd":
            _resolve_wsd(o, r.steps)
        if t.device == "auto":
            t.device = "cuda" if _cuda_available() else "cpu"
        if t.precision == "auto":
            t.precision = "bf16-mixed" if t.device == "cuda" else "32"
        if t.compile == "auto":
            t.compile = "true" if t.device == "cuda" else "false"
        # Derived intervals are multiples of log_interval, so metrics rows line up (one row per logged step).
        if t.eval_interval == 0:
            t.eval_interval = _multiple_of(r.steps // 20, t.log_interval)
        if t.diag_interval == 0:
            t.diag_interval = _multiple_of(r.steps // 5, t.log_interval)
        if t.ckpt_interval == 0:
            t.ckpt_interval = max(1, r.steps // 10)
        return r

    @property
    def is_resolved(self) -> bool:
        return self.steps is not None

    # ------------------------------------------------------------------ identity
    def run_id(self) -> str:
        """Readable prefix + hash of the resolved config, minus fields that do not change the result."""
        if not self.is_resolved:
            raise ValueError("run_id() needs a resolved config (call resolve() first)")
        d = self.to_dict()
        d.pop("out_dir")
        for k in ("log_interval", "ckpt_interval", "num_threads", "micro_batch_size", "noise_scale", "loggers",
                  "devices", "num_nodes", "strategy"):
            d["train"].pop(k)
        d["data"].pop("cache_dir")
        d["data"].pop("num_proc")
        if d["data"]["max_tokens"] is None:  # run ids from before the field existed stay the same
            d["data"].pop("max_tokens")
        # the wsd fields change nothing for other schedules: left out, run ids from before them stay the same
        if d["optim"]["schedule"] != "wsd":
            d["optim"].pop("decay_frac")
            d["optim"].pop("decay_shape")
        if d["optim"]["warmup_steps"] is None:
            d["optim"].pop("warmup_steps")
        digest = hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:10]
        m, t = self.model, self.train
        return f"{m.arch}-{m.size}-{_short(t.tokens)}tok-b{t.batch_size}-lr{self.optim.lr:.2g}-s{t.seed}-{digest}"

    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.run_id()


# ---------------------------------------------------------------------- helpers
def _section_names() -> list[str]:
    return [f.name for f in dataclasses.fields(RunConfig)]


# get_type_hints evaluates every annotation string on each call (~0.5 ms a section): once per class is enough,
# and from_dict runs several times per run of a 10,000-run grid (issue 17)
_type_hints = functools.cache(typing.get_type_hints)


def _build(cls: type, d: dict[str, Any], prefix: str):
    if not isinstance(d, dict):
        raise ConfigError(prefix.rstrip(".") or "config", f"expected a mapping, got {type(d).__name__}")
    hints = _type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in d.items():
        if key not in names:
            raise ConfigError(f"{prefix}{key}", "unknown config key", names)
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value or {}, prefix=f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(f"{prefix}{key}", value, hint)
    return cls(**kwargs)


def _coerce(name: str, value: Any, hint: Any) -> Any:
    """YAML gives '1e6' as a string and 1 for a float field; accept what a person means, reject the rest."""
    base, optional = hint, False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # `X | None`
        args = typing.get_args(hint)
        optional = type(None) in args
        base = next(a for a in args if a is not type(None))
    if value is None:
        if optional:
            return None
        raise ConfigError(name, "must not be empty")
    origin = typing.get_origin(base) or base
    if origin is list:
        if isinstance(value, str):  # `--set train.loggers=csv` means a list of one
            value = [value]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(name, f"expected a list, got {value!r}")
        (item,) = typing.get_args(base) or (Any,)
        return [_coerce(f"{name}[{i}]", v, item) for i, v in enumerate(value)]
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(name, f"expected a mapping, got {value!r}")
        return dict(value)
    if origin is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(name, f"expected true/false, got {value!r}")
    if origin in (int, float):
        if isinstance(value, bool):
            raise ConfigError(name, f"expected a number, got {value!r}")
        if isinstance(value, str):
            try:
                value = float(value.replace("_", ""))
            except ValueError:
                raise ConfigError(name, f"expected a number, got {value!r}") from None
        if not isinstance(value, (int, float)) or math.isnan(value):
            raise ConfigError(name, f"expected a number, got {value!r}")
        if origin is int:
            if not math.isfinite(value) or float(value) != int(value):  # int(inf) would raise OverflowError
                raise ConfigError(name, f"expected an integer, got {value!r}")
            return int(value)
        return float(value)
    if origin is str:
        if isinstance(value, bool):  # YAML reads `compile: true` as a bool; keep the string vocabulary
            return "true" if value else "false"
        if isinstance(value, (int, float)):
            return str(value)
        if not isinstance(value, str):
            raise ConfigError(name, f"expected a string, got {value!r}")
        return value
    return value


def _check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ConfigError(name, f"must be an integer >= {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ConfigError(name, f"must be an integer in [{minimum}, {maximum:.6g}], got {value!r}")


def wsd_decay_steps(steps: int, decay_frac: float) -> int:
    """Length of the final decay of a wsd run of `steps` steps: at least one step (ant.train.optim)."""
    return min(steps, max(1, int(round(decay_frac * steps))))


def _resolve_wsd(o: OptimConfig, steps: int) -> None:
    """Fix the warm-up of a wsd run in steps and check that it ends before the decay starts."""
    if o.warmup_steps is None:
        o.warmup_steps = int(round((o.warmup_frac or 0.0) * steps))
    start = steps - wsd_decay_steps(steps, o.decay_frac)
    if o.warmup_steps > start:
        msg = f"{o.warmup_steps} warm-up steps do not end before the decay starts at step {start} of {steps}"
        raise ConfigError("optim.warmup_steps", msg, f"0..{start}")


def _multiple_of(n: int, unit: int) -> int:
    """n rounded to the nearest positive multiple of unit."""
    return max(1, round(n / unit)) * unit


def _short(n: int) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def _tokenizer_vocab(data: DataConfig) -> int:
    from ant.data import tokenizer_vocab_size

    return tokenizer_vocab_size(data)
