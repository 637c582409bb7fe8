"""Grid YAML -> resolved RunConfigs.

A grid file describes a scaling study; every run in it is a point of a Cartesian product:

    name: small
    out_dir: results/runs                     # where run folders go (RunConfig.out_dir)
    base:                                     # RunConfig sections shared by every run (ant/config.py)
      data: {tokenizer: bpe, seq_len: 64}
      train: {eval_interval: 10}
    grid:                                     # or `grids: [{...}, {...}]`: the union of several products
      arch: [gptplus, angpt]
      size: [tiny1, tiny2, tiny3]
      tokens: [2e5, 4e5]                      # absolute; or tokens_per_param: [10, 20]; or budgets: (below)
      batch_size: [16, 32]                    # or {rule: porian} / {rule: paper, min: 8, max: 64} / {from_study: F}
      lr: [1e-3, 3e-3]                        # or {rule: paper} / {rule: porian, scale: 0.5} / {from_study: F}
      seed: [0, 1]
      set: {optim.beta2: [0.95, 0.99]}        # any other config field as an extra axis (dotted keys)
      schedule: [cosine, wsd]                 # optim.schedule as an axis
    executor: {...}                           # see ant.sweep.executors.ExecutorSettings
    tune: {...}                               # `ant tune` settings, see ant.sweep.tune.TuneSettings
    estimate: {device: a100}                  # dry-run time estimates for a device other than this one

`lr` and `batch_size` may also be keyed by architecture ({gptplus: [...], angpt: {rule: paper}}), since the
paper tunes them separately per model. Rules use N = the run's parameter count (embeddings included, as the
paper's fits do) and express batch sizes in sequences of 2048 tokens, converted to this grid's seq_len.

`budgets: [2e5, 4e5, 8e5]` instead of `tokens:` makes the wsd runs of each point of the other axes one family
(ant.train.branches.make_family): they share a warm-up in steps (from the smallest budget) and their evaluation
steps (from the largest), so the sweep trains the largest budget and branches the others from its checkpoints,
each training only its decay. It needs schedule wsd (`schedule: wsd`, or optim.schedule in `base`); runs of
other schedules in the same product get these budgets as ordinary separate runs.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ant import recipe
from ant.config import ARCHS, RunConfig, assign
from ant.data import tokenizer_vocab_size
from ant.decode import decode
from ant.errors import ConfigError, read_user_file
from ant.recipe import BATCH_RULES, LR_RULES, PAPER_SEQ

AXES = ("arch", "size", "tokens", "tokens_per_param", "budgets", "batch_size", "lr", "seed", "set", "schedule")
BUDGET_KEYS = ("tokens", "tokens_per_param", "budgets")
TOP_KEYS = ("name", "out_dir", "base", "grid", "grids", "executor", "tune", "estimate")
RULES = ("paper", "porian")
RULE_KEYS = ("rule", "scale", "min", "max", "round", "from_study")
# The config field each axis sets. A `set:` entry or `ant sweep --set` on one of these would be overridden by (or
# override) the axis in silence (`seed: [0, 1, 2]` + `set: {train.seed: [5]}` planned 1 run): an error instead.
AXIS_FIELDS = {"arch": "model.arch", "size": "model.size", "tokens": "train.tokens", "budgets": "train.tokens",
               "tokens_per_param": "train.tokens_per_param", "batch_size": "train.batch_size", "lr": "optim.lr",
               "seed": "train.seed", "schedule": "optim.schedule"}  # fmt: skip
# Runs one grid may plan unless the caller raises it (`ant sweep --max-runs`): 10^5 runs took a minute to plan and
# 10^7 would take hours; the largest grid in sweeps/ has 528. A typo (`seed: range`) rather than a plan.
MAX_RUNS = 20_000
NAME_CHARS = "letters, digits, '.', '_' and '-' (it names a folder: no '/', no '..')"


# ---------------------------------------------------------------------- the parsed file
@dataclass
class Grid:
    name: str
    path: Path | None
    out_dir: str
    base: dict[str, Any]
    products: list[dict[str, Any]]
    executor: dict[str, Any] = field(default_factory=dict)
    tune: dict[str, Any] = field(default_factory=dict)
    # for --dry-run time estimates on another machine: {device: a100} or {flops_per_s: 1e14}
    estimate: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_yaml(cls, path: str | Path) -> Grid:
        p = Path(path)
        d = read_user_file(p, "sweep", "yaml")
        return cls.from_dict(d, path=p)

    @classmethod
    def from_dict(cls, d: Any, path: Path | None = None) -> Grid:
        if not isinstance(d, dict):
            raise ConfigError("grid", "a grid file must hold a mapping", TOP_KEYS)
        for k in d:
            if k not in TOP_KEYS:
                raise ConfigError(k, "unknown grid key", TOP_KEYS)
        if ("grid" in d) == ("grids" in d):
            raise ConfigError("grid", "give exactly one of `grid` (a mapping) and `grids` (a list of mappings)")
        products = [d["grid"]] if "grid" in d else d["grids"]
        if not isinstance(products, list) or not products:
            raise ConfigError("grids", "must be a non-empty list of mappings")
        for i, g in enumerate(products):
            _check_product(g, "grid" if "grid" in d else f"grids[{i}]")
        base = d.get("base") or {}
        if not isinstance(base, dict):
            raise ConfigError("base", "must be a mapping of RunConfig sections", ["model", "data", "optim", "train"])
        RunConfig.from_dict(base)  # unknown sections/keys fail here, named
        name = str(d.get("name") or (path.stem if path else "sweep"))
        check_name("name", name)
        for key in ("executor", "tune", "estimate"):
            if d.get(key) is not None and not isinstance(d[key], dict):
                raise ConfigError(key, "must be a mapping")
        out_dir = str(d.get("out_dir") or base.get("out_dir") or "results/runs")
        ex, tune, est = (d.get(k) or {} for k in ("executor", "tune", "estimate"))
        return cls(name, path, out_dir, base, products, ex, tune, est)

    def expand(self, vocab_size: int | None = None, max_runs: int = MAX_RUNS, progress=None) -> list[RunConfig]:
        """Every run of the grid, resolved, in a stable order, without duplicates (same run_id -> one run); a
        ConfigError before any work when the axes plan more than `max_runs`. `progress(done, total)`, when given,
        is called after each run is resolved."""
        return expand(self, vocab_size=vocab_size, max_runs=max_runs, progress=progress)


def _check_product(g: Any, where: str) -> None:
    if not isinstance(g, dict):
        raise ConfigError(where, "must be a mapping of axes", AXES)
    for k in g:
        if k not in AXES + ("name",):
            raise ConfigError(f"{where}.{k}", "unknown grid axis", AXES)
    for k in ("arch", "size"):
        if k not in g:
            raise ConfigError(f"{where}.{k}", "missing (every grid names its architectures and sizes)")
    if sum(k in g for k in BUDGET_KEYS) != 1:
        raise ConfigError(f"{where}.tokens", "give exactly one of tokens, tokens_per_param and budgets")
    if isinstance(g.get("set"), dict):
        for k in g["set"]:
            axis = next((a for a, f in AXIS_FIELDS.items() if f == k and a in g), None)
            if axis is not None:
                msg = f"collides with the grid axis {where}.{axis} (both set {k}); give its values in one place"
                raise ConfigError(f"{where}.set.{k}", msg, [f"{where}.{axis}", f"{where}.set.{k}"])
    for a in _as_list(g["arch"]):
        if a not in ARCHS:
            raise ConfigError(f"{where}.arch", f"unknown value {a!r}", ARCHS)
    # An empty list makes the whole product empty: a sweep that plans 0 runs and "succeeds" hides the typo.
    nested = {f"{where}.set.{k}": v for k, v in (g.get("set") or {}).items()} if isinstance(g.get("set"), dict) else {}
    for k in ("lr", "batch_size"):
        if isinstance(g.get(k), dict):
            nested.update({f"{where}.{k}.{a}": v for a, v in g[k].items() if a in ARCHS})
    for name, v in {**{f"{where}.{k}": v for k, v in g.items() if k != "set"}, **nested}.items():
        if isinstance(v, (list, tuple)) and not v:
            raise ConfigError(name, "is an empty list: the product would plan no run", "a non-empty list or a value")


def check_name(field: str, name: str) -> None:
    """A sweep or study name becomes a folder (results/sweeps/NAME, a tune journal): a name, never a path."""
    ok = 0 < len(name) <= 100 and name[0] not in ".-" and all(c.isascii() and (c.isalnum() or c in "._-") for c in name)
    if not ok:
        raise ConfigError(field, f"{name[:60]!r} is not a name", NAME_CHARS)


def axis_of(grid: Grid, key: str) -> str | None:
    """The axis of `grid` that sets the config field `key` in some product (ant sweep --set checks it)."""
    for i, g in enumerate(grid.products):
        for axis, f in AXIS_FIELDS.items():
            if f == key and axis in g:
                return ("grid" if len(grid.products) == 1 else f"grids[{i}]") + f".{axis}"
    return None


def count_runs(grid: Grid) -> int:
    """An upper bound of the runs `expand` plans (before duplicates merge), from the axes' lengths alone."""
    total = 0
    for g in grid.products:
        n = 1
        for axis in ("arch", "size", *BUDGET_KEYS, "seed", "schedule", "batch_size", "lr"):
            if axis in g:
                v = g[axis]
                if isinstance(v, dict) and v and all(k in ARCHS for k in v):  # per arch: the longest
                    v = max((_as_list(x) for x in v.values() if not isinstance(x, dict)), key=len, default=[1])
                n *= len(v) if isinstance(v, (list, tuple)) else 1
        for v in (g.get("set") or {}).values() if isinstance(g.get("set"), dict) else []:
            n *= len(v) if isinstance(v, (list, tuple)) else 1
        total += n
    return total


# ---------------------------------------------------------------------- expansion
def expand(grid: Grid, vocab_size: int | None = None, max_runs: int = MAX_RUNS, progress=None) -> list[RunConfig]:
    n_max = count_runs(grid)
    if n_max > max_runs:
        msg = f"plans up to {n_max:,} runs, more than the limit {max_runs:,} (a typo in an axis?)"
        raise ConfigError("grid", msg, f"fewer runs, or `ant sweep --max-runs {n_max}` if it is meant")
    # In order: resolved runs, and the keys of wsd families (made once all their budgets are known).
    ordered: list[RunConfig | tuple] = []
    families: dict[tuple, tuple[dict[str, Any], list[Any], int]] = {}  # key -> (config dict, budgets, vocab)
    vocab_cache: dict[str, int] = {}
    n_cache: dict[tuple, int] = {}
    for i, g in enumerate(grid.products):
        where = "grid" if len(grid.products) == 1 else f"grids[{i}]"
        budget_key = next(k for k in BUDGET_KEYS if k in g)
        token_key = "tokens_per_param" if budget_key == "tokens_per_param" else "tokens"
        n_families = len(families)
        set_axes = g.get("set") or {}
        if not isinstance(set_axes, dict):
            raise ConfigError(f"{where}.set", "must map dotted config keys to lists of values")
        set_keys = list(set_axes)
        set_values = [_as_list(set_axes[k]) for k in set_keys]
        for arch, size, budget, seed, schedule, *extra in itertools.product(
            _as_list(g["arch"]),
            _as_list(g["size"]),
            _as_list(g[budget_key]),
            _as_list(g.get("seed", [_base_seed(grid)])),  # no axis: the base (or --set) seed, not 0
            _as_list(g.get("schedule", [None])),
            *set_values,
        ):
            d = copy.deepcopy(grid.base)
            d["out_dir"] = grid.out_dir
            assign(d, "model.arch", arch)
            assign(d, "model.size", size)
            assign(d, f"train.{token_key}", _number(budget, f"{where}.{budget_key}"))
            assign(d, "train.tokens_per_param" if token_key == "tokens" else "train.tokens", None)
            assign(d, "train.seed", seed)
            if schedule is not None:
                assign(d, "optim.schedule", schedule)
            for k, v in zip(set_keys, extra):
                assign(d, k, v, where=f"{where}.set")
            base_cfg = RunConfig.from_dict(d)
            base_cfg.validate()
            vkey = repr(sorted(base_cfg.to_dict()["data"].items()))
            if vocab_size is None and vkey not in vocab_cache:
                vocab_cache[vkey] = _tokenizer_vocab(base_cfg)
            vocab = vocab_size if vocab_size is not None else vocab_cache[vkey]
            nkey = (arch, size, vocab, repr(sorted(base_cfg.model.options.items())), base_cfg.model.vocab_size)
            if nkey not in n_cache:
                n_cache[nkey] = recipe.resolve(base_cfg, vocab_size=vocab).num_params
            n = n_cache[nkey]
            seq_len = base_cfg.data.seq_len
            bs_spec = g.get("batch_size", [base_cfg.train.batch_size])
            for bs in _values(bs_spec, arch, f"{where}.batch_size"):
                batch = _batch_value(bs, arch, size, n, seq_len, f"{where}.batch_size", grid)
                lr_spec = g.get("lr", [d.get("optim", {}).get("lr")])
                for lr in _values(lr_spec, arch, f"{where}.lr"):
                    lr_value = _lr_value(lr, arch, size, n, batch, f"{where}.lr", grid)
                    dd = copy.deepcopy(d)
                    assign(dd, "train.batch_size", batch)
                    assign(dd, "optim.lr", lr_value)
                    if budget_key == "budgets" and base_cfg.optim.schedule == "wsd":
                        key = (i, arch, size, seed, schedule, repr(extra), batch, lr_value)
                        if key not in families:
                            families[key] = (dd, [], vocab)
                            ordered.append(key)
                        families[key][1].append(dd["train"]["tokens"])
                        continue
                    ordered.append(recipe.resolve(RunConfig.from_dict(dd), vocab_size=vocab))
                    if progress is not None:
                        progress(len(ordered), n_max)
        if budget_key == "budgets" and len(families) == n_families:
            msg = "budgets make wsd families, but no run of this product has schedule wsd (tokens: for others)"
            raise ConfigError(f"{where}.budgets", msg, ["schedule: wsd", "base optim.schedule: wsd"])
    runs: dict[str, RunConfig] = {}
    for item in ordered:
        if isinstance(item, RunConfig):
            runs.setdefault(item.run_id(), item)
            continue
        from ant.train.branches import make_family  # late import: only grids with budgets need ant.train

        d, budgets, vocab = families[item]
        for cfg in make_family(RunConfig.from_dict(d), budgets, vocab_size=vocab):
            runs.setdefault(cfg.run_id(), cfg)
    return list(runs.values())


def _values(spec: Any, arch: str, where: str) -> list[Any]:
    """A list, a scalar, a rule mapping, or a mapping keyed by architecture of any of these."""
    if isinstance(spec, dict) and spec and all(k in ARCHS for k in spec):
        if arch not in spec:
            raise ConfigError(f"{where}.{arch}", "no value for this architecture", list(spec))
        return _values(spec[arch], arch, f"{where}.{arch}")
    if isinstance(spec, dict):
        for k in spec:
            if k not in RULE_KEYS:
                raise ConfigError(f"{where}.{k}", "unknown rule key (or an architecture name)", RULE_KEYS + ARCHS)
        return [spec]
    return _as_list(spec)


def _study_value(spec: dict, arch: str, size: str, key: str, where: str, grid: Grid) -> float:
    """A tuned value from a best.yaml ({arch: {size: {lr, batch_size}}}), written by `ant tune` or the study."""
    from ant.sweep.tune import best_value  # late: ant.sweep.tune imports optuna, only from_study needs it

    path = Path(spec["from_study"])
    if not path.is_absolute() and grid.path is not None and not path.exists():
        path = grid.path.parent / path
    return best_value(path, arch, size, key, where=f"{where}.from_study")


def _batch_value(spec: Any, arch: str, size: str, n: int, seq_len: int, where: str, grid: Grid) -> int:
    if isinstance(spec, dict) and "from_study" in spec:
        return int(_study_value(spec, arch, size, "batch_size", where, grid))
    if isinstance(spec, dict):
        rule = spec.get("rule")
        if rule not in BATCH_RULES:
            raise ConfigError(f"{where}.rule", f"unknown batch-size rule {rule!r}", list(BATCH_RULES))
        # the laws count sequences of 2048 tokens; keep the tokens per step and convert to this seq_len
        seqs = BATCH_RULES[rule](arch, n) * float(spec.get("scale", 1.0)) * PAPER_SEQ / seq_len
        if spec.get("round", "pow2") == "pow2":
            seqs = 2 ** round(math.log2(max(seqs, 1.0)))
        seqs = min(max(seqs, float(spec.get("min", 1))), float(spec.get("max", math.inf)))
        return max(1, int(round(seqs)))
    v = _number(spec, where)
    if v != int(v) or v < 1:
        raise ConfigError(where, f"must be a positive integer, got {spec!r}")
    return int(v)


def _lr_value(spec: Any, arch: str, size: str, n: int, batch: int, where: str, grid: Grid) -> float | None:
    if spec is None:
        return None
    if isinstance(spec, dict):
        if "from_study" in spec:
            lr = _study_value(spec, arch, size, "lr", where, grid)
        else:
            rule = spec.get("rule")
            if rule not in LR_RULES:
                raise ConfigError(f"{where}.rule", f"unknown learning-rate rule {rule!r}", list(LR_RULES))
            # 3 significant digits keep run ids readable and stable
            lr = float(f"{LR_RULES[rule](arch, n):.3g}")
        if "scale" in spec:
            lr = float(f"{lr * float(spec['scale']):.4g}")
        return min(max(lr, float(spec.get("min", 0.0))), float(spec.get("max", math.inf)))
    v = _number(spec, where)
    if v <= 0:
        raise ConfigError(where, f"must be a positive number, got {spec!r}")
    return v


# ---------------------------------------------------------------------- small helpers
def _as_list(v: Any) -> list[Any]:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _number(v: Any, where: str) -> float:
    """A grid value read as a number by the config's decoder; integers stay integers (readable run ids)."""
    v = decode(where, v, float)
    return int(v) if v.is_integer() and abs(v) >= 1 else v


def _tokenizer_vocab(cfg: RunConfig) -> int:
    if cfg.model.vocab_size is not None:
        return cfg.model.vocab_size
    return tokenizer_vocab_size(cfg.data)


def load_grid(path: str | Path) -> Grid:
    return Grid.from_yaml(path)


def _base_seed(grid: Grid) -> Any:
    train = grid.base.get("train")
    return train.get("seed", 0) if isinstance(train, dict) else 0
