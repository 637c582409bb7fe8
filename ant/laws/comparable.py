"""Runs that must not be compared: fits, figures, the report and the study assume one tokenizer, vocabulary,
corpus, validation set and sequence length across the runs they compare (a speedup between GPT+ on bpe-512 and
anGPT on bytes is a difference of tokenizers, not of architectures: issue 26 found one in REPORT.md, exit 0).

    runs = select(runs, ["tokenizer=bytes"])   # `--select KEY=VALUE`: a key below or any runs-table column
    check_comparable(runs, "results")          # ConfigError naming the first key that differs, and the fix

The keys are columns of the runs table (ant.laws.collect); a value that is missing (data_sha256 of runs from
before it was recorded) is not a difference.
"""

from __future__ import annotations

import pandas as pd

from ant.errors import ConfigError

# name shown and accepted by --select -> runs-table column ("tokenizer" is derived: bpe carries its vocabulary)
KEYS = {
    "tokenizer": None,
    "vocab_size": "cfg.model.vocab_size",
    "corpus": "cfg.data.corpus",
    "data_sha256": "data_sha256",
    "val_tokens": "cfg.data.val_tokens",
    "seq_len": "cfg.data.seq_len",
}


def key_values(runs: pd.DataFrame, name: str) -> pd.Series | None:
    """The values of `name` (a KEYS entry or a column) per run as text, or None when the table lacks it."""
    if name == "tokenizer":
        if "cfg.data.tokenizer" not in runs:
            return None
        tok = runs["cfg.data.tokenizer"].astype(str)
        if "cfg.data.bpe_vocab_size" in runs:
            bpe = tok.eq("bpe")
            size = runs["cfg.data.bpe_vocab_size"].map(lambda v: "" if pd.isna(v) else str(int(v)))
            tok = tok.where(~bpe, "bpe-" + size)
        return tok.where(runs["cfg.data.tokenizer"].notna())
    col = KEYS.get(name, name)
    if col not in runs:
        return None
    return runs[col].map(lambda v: None if v is None or (isinstance(v, float) and pd.isna(v)) else _text(v))


def _text(v) -> str:
    return str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)


def select(runs: pd.DataFrame, items: list[str] | None) -> pd.DataFrame:
    """The runs whose KEY equals VALUE for every `KEY=VALUE` in `items`."""
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError("--select", f"expected KEY=VALUE, got {item!r}", list(KEYS))
        if runs.empty:
            continue
        values = key_values(runs, key)
        if values is None:
            raise ConfigError(f"--select {key}", "no such key in the runs table", list(KEYS))
        keep = values.eq(value.strip())
        if not keep.any():
            seen = sorted(values.dropna().unique())
            raise ConfigError(f"--select {key}", f"no run has {key}={value.strip()}", seen)
        runs = runs[keep].reset_index(drop=True)
    return runs


def check_comparable(runs: pd.DataFrame, where: str) -> None:
    """ConfigError naming the first KEYS entry whose (present) values differ between runs, with the counts and
    the --select that keeps one group."""
    for name in KEYS:
        values = key_values(runs, name) if not runs.empty else None
        if values is None:
            continue
        counts = values.dropna().value_counts()
        if len(counts) > 1:
            shown = "; ".join(f"{v}: {n} run(s)" for v, n in counts.items())
            msg = (f"the runs in {where} differ ({shown}): speedups, HP trends, the compute frontier and Chinchilla "
                   f"fits compare runs on one {name}")  # fmt: skip
            allowed = f"--select {name}={counts.index[0]} (one value at a time), or one results folder per {name}"
            raise ConfigError(name, msg, allowed)
