"""One typed config describes one run: RunConfig = ModelConfig + DataConfig + OptimConfig + TrainConfig.

Life cycle:
    cfg = RunConfig.from_yaml("run.yaml")          # or RunConfig.from_dict / RunConfig()
    cfg = cfg.with_overrides(["train.seed=3"])       # the CLI's `--set key=value`
    cfg = ant.recipe.resolve(cfg, vocab_size)        # fill every `None`/"auto" from the paper's recipe; validates
    cfg.run_id()                                      # readable prefix + hash of the resolved config

This module sits just above the primitives: it imports nothing of `ant` but errors, the decoder (ant.decode) and
ant.identity, archs and schedules (the registries some vocabularies are read from), and no torch, so anything may
read a config. What depends on the model or the data (parameter count, the
optimiser recipe, beta2 below 100M, warm-up, derived steps and intervals) lives in ant.recipe;
config knows nothing of it (no upward import).

Run identity is declared on the fields (ant.identity.meta): `identity=False` for a field that cannot change the
result (threads, loggers, where files go), `when=` for one that matters only beside another value (the wsd decay
fields), and `since=DATE` for every field added after run ids were first committed: such a field, with a default
that reproduces the old behaviour, enters the run id only when a run sets it to something else, so adding it
renames no existing run folder. A new field needs one of the two (tests/test_identity.py fails otherwise).

Each section owns its rules (`validate()` per class); closed sets of values are `Literal` types, and the checks
read the allowed values from them, so each vocabulary is written once. Decoding (ant.decode) is hand-written; its
docstring says why not pydantic, cattrs or dacite. Everything that is wrong is a
ConfigError naming the field and the allowed values (exit code 2 at the CLI), before anything is written.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from ant import archs, identity, schedules
from ant import decode as decoder
from ant.decode import build, check_choices, check_int, field_names, parse_assignment
from ant.errors import ConfigError, check_choice, check_range, read_user_file
from ant.identity import meta

# Vocabularies that registries own are read from them (a new architecture or schedule is one row or function there):
# Literal[<tuple>] at run time, as the decoder and check_choices read it.
Arch = Literal[archs.ARCHS]  # type: ignore[valid-type]  # ant.archs.TABLE
# The model ladder's rung names (ant.models.sizes.SIZES holds their shapes; tests/models/test_sizes.py checks
# that the two agree): tiny CPU rungs, then the paper's Table F.1.
Size = Literal[
    "d16L1", "tiny0", "tiny0h8", "d24L2", "tiny1", "tiny1h8", "d40L3", "tiny2", "tiny2h8", "d56L3", "d64L3", "tiny3",
    "tiny4", "tiny5",
    "32M", "62M", "125M", "250M", "0.5B", "1B",
]  # fmt: skip
Tokenizer = Literal["bytes", "bpe", "gpt2"]
Schedule = Literal[tuple(schedules.SCHEDULES)]  # type: ignore[valid-type]  # ant.schedules
DecayShape = Literal[schedules.DECAY_SHAPES]  # type: ignore[valid-type]  # of the wsd decay (ant.schedules)
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "32", "bf16-mixed"]
Compile = Literal["auto", "true", "false"]
EvalSpacing = Literal["log", "every"]  # which multiples of train.eval_interval evaluate (ant.train.evaluation)
Logger = Literal["csv", "tensorboard", "wandb", "mlflow"]  # Lightning's logger classes (ant.train)
Strategy = Literal["auto", "ddp", "fsdp"]  # Lightning strategies for train.devices x train.num_nodes > 1

ARCHS: tuple[str, ...] = typing.get_args(Arch)
SIZE_NAMES: tuple[str, ...] = typing.get_args(Size)

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
MAX_BATCH = 2**24  # sequences per step: 16M sequences is beyond any published batch
MAX_STEPS = 10**12  # intervals and warm-up steps: more steps than any run can take
MAX_OPTION = 10**12  # |value| of a numeric model.options entry; the model bounds each shape option tighter


@dataclass
class ModelConfig:
    arch: Arch = "angpt"
    size: Size = "tiny3"
    # None: the tokenizer's vocabulary padded up to a multiple of 64 (the paper pads GPT-NeoX's to 50304).
    vocab_size: int | None = None
    # Extra keyword arguments for ant.models.build_model: shape overrides (n_layers=3) and ablation switches.
    # Their names and types are the arch's config dataclass's (ant.models.make_config checks them).
    options: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        check_choices(self, "model")
        if self.vocab_size is not None:
            check_int("model.vocab_size", self.vocab_size, minimum=2, maximum=2**24)
        for k, v in self.options.items():  # the model checks names and ranges; no option may be .inf or .nan
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"model.options.{k}", f"must be a finite number, got {v!r}")
            if isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) > MAX_OPTION:
                shown = v if abs(v) < 10**20 else f"a {len(str(int(abs(v))))}-digit number"
                raise ConfigError(f"model.options.{k}", f"out of range, got {shown}", f"|value| <= {MAX_OPTION:.0e}")
            if not isinstance(v, (int, float, str, bool, type(None))):  # a list or mapping: no option takes one
                raise ConfigError(f"model.options.{k}", f"expected a number, string or true/false, got {v!r}"[:200])


@dataclass
class DataConfig:
    # "default": the offline corpus built from registry packages (ant.data.sources); or a path to a .txt/.jsonl
    # file or a folder of them; or "hf:NAME" for a Hugging Face dataset (needs network).
    corpus: str = "default"
    tokenizer: str = "bpe"  # a Tokenizer, or hf:NAME_OR_PATH (a Hugging Face tokenizer): not a closed set
    bpe_vocab_size: int = 4096  # only for tokenizer=bpe
    seq_len: int = 128
    # The validation set is this many tokens, the same for every run on a corpus + tokenizer.
    val_tokens: int = 131072
    # Where corpora, tokenizers and token files are cached (relative paths: to the working dir). None: $ANT_CACHE,
    # else $XDG_CACHE_HOME/ant, else ~/.cache/ant, so that checkouts share one corpus (ant.data.cache_dir_of).
    cache_dir: str | None = meta(None, identity=False, family_free=True)
    # Streamed corpora (hf:NAME): stop after this many tokens (None: the whole corpus). Changes the data, so it
    # is part of the run id.
    max_tokens: int | None = meta(None, since="2026-11-29")
    # Processes that tokenise the corpus in parallel (the token files are the same for any count): not in the id.
    num_proc: int = meta(1, identity=False)

    def validate(self) -> None:
        tok = self.tokenizer
        if not (isinstance(tok, str) and tok.startswith("hf:") and len(tok) > 3):
            check_choice("data.tokenizer", tok, [*typing.get_args(Tokenizer), "hf:NAME_OR_PATH"])
        check_int("data.seq_len", self.seq_len, minimum=2, maximum=MAX_SEQ_LEN)
        check_int("data.val_tokens", self.val_tokens, minimum=2, maximum=MAX_TOKENS)
        if self.val_tokens < self.seq_len + 1:
            msg = f"{self.val_tokens} tokens hold no window of data.seq_len {self.seq_len} + 1 tokens"
            allowed = f">= {self.seq_len + 1}, or a data.seq_len below {self.val_tokens}"
            raise ConfigError("data.val_tokens", msg, allowed)
        if tok == "bpe":
            check_int("data.bpe_vocab_size", self.bpe_vocab_size, minimum=257, maximum=2**20)
        where = "'default', a path, or 'hf:NAME'"
        if not self.corpus:
            raise ConfigError("data.corpus", "must not be empty", where)
        if self.corpus != "default" and not self.corpus.startswith("hf:") and not Path(self.corpus).exists():
            raise ConfigError("data.corpus", f"no such file or folder: {self.corpus}", where)
        if self.max_tokens is not None:
            check_int("data.max_tokens", self.max_tokens, minimum=1, maximum=MAX_TOKENS)
        check_int("data.num_proc", self.num_proc, minimum=1, maximum=1024)


@dataclass
class OptimConfig:
    lr: float | None = None  # peak LR; None -> the architecture's default_lr (ant.archs)
    # auto -> the architecture's (ant.archs: adamw for gpt/gptplus, adam for ngpt/angpt); or any name of
    # ant.optimizers: adam, adamw, or a torch.optim class ("SGD") with optimizer_args as its extra arguments.
    # Checked by ant.recipe.resolve (the names of torch.optim need torch).
    optimizer: str = "auto"
    beta1: float = 0.9
    beta2: float | None = None  # None -> 0.99 below 100M parameters, else 0.95
    eps: float = 1e-9
    weight_decay: float | None = None  # None -> 0.1 (gpt/gptplus, matrices only), 0 (ngpt/angpt)
    warmup_frac: float | None = None  # None -> 0.1 (gpt/gptplus), 0 (ngpt/angpt)
    schedule: Schedule = "cosine"
    final_lr_frac: float = 0.01  # the LR decays to final_lr_frac x peak
    # wsd (warmup-stable-decay, ant.schedules): the last decay_frac of the steps decay to final_lr_frac x peak
    # with decay_shape; the warm-up is warmup_steps, an absolute count so that wsd runs differing only in their
    # budget share every step before the shorter one's decay (None -> warmup_frac x steps; a grid's `budgets:`
    # family sets it from its smallest budget). warmup_steps, when given, overrides warmup_frac for any schedule.
    decay_frac: float = meta(0.2, when={"optim.schedule": "wsd"})
    decay_shape: DecayShape = meta("1-sqrt", when={"optim.schedule": "wsd"})
    warmup_steps: int | None = meta(None, since="2026-11-29")
    grad_clip: float = 1.0  # 0 disables clipping
    # Keyword arguments of a torch.optim optimizer chosen by class name ({momentum: 0.9} for SGD); empty for adam
    # and adamw, whose arguments are the fields above. In the run id only when set (since=, ant.identity).
    optimizer_args: dict[str, Any] = meta(default_factory=dict, since="2026-12-07")

    def validate(self) -> None:
        check_choices(self, "optim")
        if not isinstance(self.optimizer, str) or not self.optimizer:
            raise ConfigError("optim.optimizer", f"expected a name, got {self.optimizer!r}", "auto, adam, SGD, ...")
        for k, v in self.optimizer_args.items():  # scalars only, as model.options
            bad = isinstance(v, float) and not math.isfinite(v)
            if bad or not isinstance(v, (int, float, str, bool, type(None))):
                msg = f"expected a finite number, string or true/false, got {v!r}"[:200]
                raise ConfigError(f"optim.optimizer_args.{k}", msg)
        _check_bounds(self, "optim")
        for name in ("beta1", "beta2"):  # [0, 1): beta = 1 never forgets
            v = getattr(self, name)
            if v is not None and v >= 1:
                raise ConfigError(f"optim.{name}", f"must be in [0, 1), got {v!r}")
        if self.warmup_steps is not None:
            check_int("optim.warmup_steps", self.warmup_steps, minimum=0, maximum=MAX_STEPS)


@dataclass
class TrainConfig:
    # The token budget is the unit: give exactly one of tokens / tokens_per_param. Steps are derived from it.
    tokens: int | None = meta(None, family_free=True)
    tokens_per_param: float | None = meta(None, family_free=True)
    batch_size: int = 16  # sequences per optimizer step
    # Sequences per forward/backward pass (gradient accumulation over batch_size / micro_batch_size passes, also
    # the evaluation batch); 0 -> the whole batch. A memory setting, not part of the run id.
    micro_batch_size: int = meta(0, identity=False)
    seed: int = 0
    device: Device = "auto"
    precision: Precision = "auto"  # auto -> bf16-mixed on cuda, 32 on cpu
    compile: Compile = "auto"  # auto -> true on cuda, false on cpu
    # torch.compile of the training step (model and optimizer step) on CPU, decided when the run starts
    # (ant.train.compiled): "auto" -> when the run is long enough to repay the warm-up. train.compile keeps its
    # resolved value (it is part of the run id; "true" compiles anywhere). The result is the same up to float
    # summation order: not part of the run id.
    cpu_compile: Compile = meta("auto", identity=False)
    eval_interval: int = 0  # steps between validations; 0 -> about steps / 20 (the spacing below thins them)
    # Evaluation (ant.train.evaluation): measurement settings, not part of the run id; the final val loss is the
    # same (up to float summation order) whatever they are. The intermediate evaluations (step 0 and the chosen
    # multiples of eval_interval) use eval_tokens of the validation windows (default all; a subset is evenly spread),
    # the final one all of them. "log": the multiples k = round(sqrt(2)^j) (1, 2, 3, 4, 6, 8, 11, 16, 23 ...),
    # dense where the curve moves on its log-tokens axes, 10 evaluations at the default interval; "every": each.
    eval_spacing: EvalSpacing = meta("log", identity=False)
    # eval_tokens: intermediate evaluations' tokens; 0 -> all of data.val_tokens (no subset). eval_batch_size:
    # sequences per validation forward; 0 -> 16 on cpu (measured), the micro-batch on cuda.
    eval_tokens: int = meta(0, identity=False)
    eval_batch_size: int = meta(0, identity=False)
    log_interval: int = meta(10, identity=False)  # steps between train-loss rows in metrics.parquet
    diag_interval: int = 0  # steps between residual-norm / alpha diagnostics; 0 -> about 5 per run
    # steps between checkpoints; 0 -> 3 per run (a stop request also saves one)
    ckpt_interval: int = meta(0, identity=False, family_free=True)
    divergence_factor: float = 3.0  # diverged if the smoothed loss exceeds factor x its running minimum
    num_threads: int = meta(0, identity=False, family_free=True)  # torch CPU threads; 0 -> torch's default
    # Log the gradient noise scale (gns_* columns; ant.train.noise_scale) from the micro-batch gradients: needs
    # micro_batch_size < batch_size. Measurement only, the training result is the same: not part of the run id.
    noise_scale: bool = meta(False, identity=False)
    # Where the rows of metrics.parquet are also sent: Lightning's own loggers (csv, tensorboard, wandb, mlflow).
    # Watching a run does not change it: not part of the run id.
    loggers: list[Logger] = meta(default_factory=lambda: ["csv"], identity=False)
    # Data-parallel training (issue 15): processes per node (GPUs, or CPU processes with gloo), nodes, and the
    # Lightning strategy. The global batch is train.batch_size whatever the device count, so a run's result does
    # not depend on them (beyond reduction order): not part of the run id.
    devices: int = meta(1, identity=False)
    num_nodes: int = meta(1, identity=False)
    strategy: Strategy = meta("auto", identity=False)

    def validate(self) -> None:
        if (self.tokens is None) == (self.tokens_per_param is None):
            raise ConfigError("train.tokens", "give exactly one of train.tokens and train.tokens_per_param")
        if self.tokens is not None:
            check_int("train.tokens", self.tokens, minimum=1, maximum=MAX_TOKENS)
        _check_bounds(self, "train")
        bs, mbs = self.batch_size, self.micro_batch_size
        check_int("train.batch_size", bs, minimum=1, maximum=MAX_BATCH)
        check_int("train.micro_batch_size", mbs, minimum=0, maximum=MAX_BATCH)
        if mbs and bs % mbs:
            divisors = [n for n in range(1, bs + 1) if bs % n == 0]
            raise ConfigError("train.micro_batch_size", f"{mbs} does not divide batch_size {bs}", divisors)
        check_int("train.seed", self.seed, minimum=0, maximum=2**32 - 1)
        check_choices(self, "train")
        for name in ("eval_interval", "log_interval", "diag_interval", "ckpt_interval"):
            check_int(f"train.{name}", getattr(self, name), minimum=0, maximum=MAX_STEPS)
        check_int("train.eval_tokens", self.eval_tokens, minimum=0, maximum=MAX_TOKENS)
        check_int("train.log_interval", self.log_interval, minimum=1, maximum=MAX_STEPS)
        check_int("train.num_threads", self.num_threads, minimum=0, maximum=4096)
        check_int("train.eval_batch_size", self.eval_batch_size, minimum=0, maximum=4096)
        check_int("train.devices", self.devices, minimum=1, maximum=4096)
        check_int("train.num_nodes", self.num_nodes, minimum=1, maximum=4096)
        if self.noise_scale and not 0 < mbs < bs:
            below = [n for n in range(1, bs) if bs % n == 0]
            msg = f"needs >= 2 micro-batches a step; micro_batch_size {mbs}, batch_size {bs}"
            allowed = f"false, or true with train.micro_batch_size in {below}" if below else "false"
            raise ConfigError("train.noise_scale", msg, allowed)


SECTIONS = ("model", "data", "optim", "train")


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    out_dir: str = meta("results/runs", identity=False, family_free=True)
    # Filled by resolve(): parameter count and derived step count, kept in config.yaml for readers.
    num_params: int | None = None
    steps: int | None = meta(None, family_free=True)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> RunConfig:
        return build(cls, d or {}, prefix="")

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        p = Path(path)
        d = read_user_file(p, "config", "yaml")
        if d is not None and not isinstance(d, dict):
            raise ConfigError("config", f"{p} must hold a mapping of sections", field_names(RunConfig))
        return cls.from_dict(d)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def with_overrides(self, assignments: list[str] | None) -> RunConfig:
        """Apply `section.key=value` strings (values parsed as YAML scalars): `train.seed=3`."""
        d = self.to_dict()
        for a in assignments or []:
            assign(d, *parse_assignment(a))
        return RunConfig.from_dict(d)

    # ------------------------------------------------------------------ resolution
    def validate(self) -> None:
        """Checks that need no model or data; ant.recipe.resolve(cfg) runs them and the model-dependent ones."""
        for section in SECTIONS:
            getattr(self, section).validate()

    @property
    def is_resolved(self) -> bool:
        return self.steps is not None

    # ------------------------------------------------------------------ identity
    def run_id(self) -> str:
        """Readable prefix + hash of the resolved config's identity fields (ant.identity: declared on each field)."""
        if not self.is_resolved:
            raise ValueError("run_id() needs a resolved config (call ant.recipe.resolve(cfg) first)")
        digest = identity.digest(self)  # the fields' own metadata decide (ant.identity)
        m, t = self.model, self.train
        return f"{m.arch}-{m.size}-{_short(t.tokens)}tok-b{t.batch_size}-lr{self.optim.lr:.2g}-s{t.seed}-{digest}"

    def run_dir(self) -> Path:
        return Path(self.out_dir) / self.run_id()


def assign(d: dict[str, Any], key: str, value: Any, where: str | None = None) -> None:
    """Set the dotted `key` (`train.seed`, `model.options.n_layers`) in the dict form of a RunConfig (ant.decode)."""
    decoder.assign(RunConfig, d, key, value, where)


def _check_bounds(section: Any, name: str) -> None:
    for key, (lo, hi, lo_open) in FLOAT_BOUNDS.items():
        sec, field_name = key.split(".")
        v = getattr(section, field_name) if sec == name else None
        if v is not None:
            check_range(key, v, lo, hi, lo_open=lo_open)


def _short(n: int) -> str:
    for unit, div in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= div:
            return f"{n / div:.3g}{unit}"
    return str(n)
