"""The recipe: every default that depends on the model, in one place. `resolve(cfg, vocab_size)` fills a config.

    cfg = ant.recipe.resolve(RunConfig.from_yaml("run.yaml"))   # a resolved copy: every None/"auto" filled in

The paper's optimiser recipe (paper-notes §3-4, Table F.2; per architecture: its row in ant.archs):
- gpt/gptplus: AdamW, weight decay 0.1 on matrices only, linear warm-up over 10 % of the steps;
- ngpt/angpt: Adam, no weight decay, no warm-up;
- all: betas (0.9, 0.95), but beta2 = 0.99 below 100M parameters (App. G); eps 1e-9; grad-clip 1.0; cosine decay
  to 0.01 x peak; bf16-mixed + torch.compile on GPU, fp32 eager on CPU.
and the rules a sweep grid may ask for instead of explicit LR/batch values (`{rule: paper}`, `{rule: porian}`):
the paper's fitted optima (Sec. 5.1) and Porian et al. (2024).

Layer: above ant.config (what a run is), ant.models (parameter counts), ant.data (the tokenizer's vocabulary) and
ant.optimizers (which names exist); below ant.train and ant.sweep, which both resolve through it, so `ant train`
and a grid give the same run ids. The config does not call back into it: `resolve(cfg)` here is the one way.
It is a module of its own rather than part of ant.train because the sweep plans thousands of runs without
importing Lightning.
"""

from __future__ import annotations

import math

from ant import optimizers, schedules
from ant.archs import arch as arch_row
from ant.config import OptimConfig, RunConfig
from ant.data import tokenizer_vocab_size
from ant.errors import ConfigError
from ant.models.counts import num_params

# App. G: beta2 = 0.99 for models below 100M parameters, 0.95 above.
BETA2_SMALL, BETA2_LARGE, BETA2_THRESHOLD = 0.99, 0.95, 100e6
PAPER_SEQ = 2048  # the paper's and Porian's batch sizes count sequences of this many tokens


def resolve(cfg: RunConfig, vocab_size: int | None = None) -> RunConfig:
    """A copy of `cfg` with every default filled in from the recipe; validates first. `vocab_size` is the
    tokenizer's, used when model.vocab_size is None (padded up to a multiple of 64)."""
    cfg.validate()
    r = RunConfig.from_dict(cfg.to_dict())
    m, o, t = r.model, r.optim, r.train
    if m.vocab_size is None:
        if vocab_size is None:
            vocab_size = tokenizer_vocab_size(r.data)
        m.vocab_size = int(math.ceil(vocab_size / 64) * 64)
    # counted in closed form (no model is built: ~20 ms a run on the meta device); options are validated as
    # build_model validates them
    try:
        r.num_params = num_params(m.arch, m.size, m.vocab_size, m.options)
    except TypeError as e:  # an unknown option name
        raise ConfigError("model.options", str(e)) from None
    _optimizer_defaults(o, m.arch, r.num_params)
    optimizers.check(o)
    if t.tokens is None:
        t.tokens = int(round(t.tokens_per_param * r.num_params))
    t.tokens_per_param = None  # tokens is now the single source of truth
    r.steps = max(1, math.ceil(t.tokens / (t.batch_size * r.data.seq_len)))
    schedules.resolve(o, r.steps)  # what the schedule fixes in steps (a wsd run's warm-up)
    if t.device == "auto":
        import torch  # late: only this branch needs torch, and a sweep's dry run resolves every run without it

        t.device = "cuda" if torch.cuda.is_available() else "cpu"
    if t.precision == "auto":
        t.precision = "bf16-mixed" if t.device == "cuda" else "32"
    if t.compile == "auto":
        t.compile = "true" if t.device == "cuda" else "false"
    # Derived intervals are multiples of log_interval, so metrics rows line up (one row per logged step).
    if t.eval_interval == 0:
        t.eval_interval = _multiple_of(r.steps // 20, t.log_interval)
    if t.diag_interval == 0:
        t.diag_interval = _multiple_of(r.steps // 5, t.log_interval)
    if t.ckpt_interval == 0:  # 3 a run (at 1/4, 1/2, 3/4): a stop request or SLURM's USR2 saves one anyway, so
        t.ckpt_interval = max(1, r.steps // 4)  # these guard against kill -9 only (not part of the run id)
    return r


def _optimizer_defaults(o: OptimConfig, arch: str, n: int) -> None:
    row = arch_row(arch)
    if o.lr is None:
        o.lr = row.default_lr
    if o.optimizer == "auto":
        o.optimizer = row.optimizer
    if o.beta2 is None:
        o.beta2 = BETA2_SMALL if n < BETA2_THRESHOLD else BETA2_LARGE
    if o.weight_decay is None:
        o.weight_decay = row.weight_decay
    if o.warmup_frac is None:
        o.warmup_frac = row.warmup_frac


def _multiple_of(n: int, unit: int) -> int:
    """n rounded to the nearest positive multiple of unit."""
    return max(1, round(n / unit)) * unit


# ---------------------------------------------------------------------- LR / batch rules (paper-notes §5.1)
def paper_lr(arch: str, n: float) -> float:
    """anGPT: LR = 0.065 N^-0.178; GPT+: LR = 42 N^-0.482 (paper Sec 5.1), the arch's `paper_lr` in ant.archs
    (gpt borrows GPT+'s fit and ngpt anGPT's: the paper fits only these two)."""
    coef, exp = arch_row(arch).paper_lr
    return coef * n**exp


def paper_batch(arch: str, n: float) -> float:
    """Optimal batch in sequences of 2048 tokens: anGPT 1.1e-6 N^0.984; GPT+ 9e-5 N^0.729 (paper Sec 5.1)."""
    coef, exp = arch_row(arch).paper_batch
    return coef * n**exp


def porian_lr(arch: str, n: float) -> float:
    """Porian et al. (2024), as OLMo's ladder uses it: eta* = 0.0047 (N / 108M)^(-1/3)."""
    return 0.0047 * (n / 108e6) ** (-1 / 3)


def porian_batch(arch: str, n: float) -> float:
    """Porian et al.: B* = 160 sequences of 2048 tokens x (N / 108M)^(2/3)."""
    return 160.0 * (n / 108e6) ** (2 / 3)


LR_RULES = {"paper": paper_lr, "porian": porian_lr}
BATCH_RULES = {"paper": paper_batch, "porian": porian_batch}
