"""Shared pieces of the ant.train tests: the real default corpus (byte tokenizer, so a tiny model trains at
~40k tokens/s on one CPU thread) and small run configs that finish in seconds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from ant.config import DataConfig, RunConfig

REPO = Path(__file__).resolve().parents[2]
# 16k validation tokens (255 windows of 64), not the default 131k: each evaluation of a tiny run then costs a
# tenth of its training instead of more than all of it, and every test here trains several runs.
VAL_TOKENS = 16384


def tiny_dict(**sections: dict[str, Any]) -> dict[str, Any]:
    """A few-second tiny1 run on the default corpus; `sections` update the defaults section by section."""
    d: dict[str, Any] = {
        "model": {"arch": "angpt", "size": "tiny1"},
        "data": {"tokenizer": "bytes", "seq_len": 64, "val_tokens": VAL_TOKENS},
        "optim": {"lr": 1e-2},
        "train": {
            "tokens": 300 * 8 * 64,  # 300 steps of batch 8 x 64 tokens
            "batch_size": 8,
            "num_threads": 1,  # bit-exact comparisons need the same thread count in every process
            "log_interval": 5,
            "eval_interval": 100,
            "diag_interval": 100,
            "ckpt_interval": 50,
        },
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            d.setdefault(section, {}).update(values)
        else:
            d[section] = values
    return d


def tiny_cfg(out_dir: Path, **sections: dict[str, Any]) -> RunConfig:
    return RunConfig.from_dict({**tiny_dict(**sections), "out_dir": str(out_dir)})


def write_yaml(path: Path, d: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(d, sort_keys=False))
    return path


@pytest.fixture(scope="session")
def byte_tokens():
    """The default corpus tokenized as bytes with tiny_dict's validation split (builds the token files once, ~2 s,
    into the shared cache)."""
    from ant.data import load_tokens

    return load_tokens(DataConfig(tokenizer="bytes", val_tokens=VAL_TOKENS), progress=False)


# ~200k tokens: enough for a tiny model to get well below the unigram entropy of bytes.
LEARN = {"tokens": 192 * 16 * 64, "batch_size": 16, "log_interval": 8, "eval_interval": 64, "diag_interval": 64,
         "ckpt_interval": 64}  # fmt: skip


@pytest.fixture(scope="session")
def learned_runs(tmp_path_factory, byte_tokens):
    """One ~200k-token run per architecture (a few seconds each), shared by test_run.py and the notebook test.
    Returns (results_dir, {arch: RunResult}); the run folders are under results_dir / "runs"."""
    from ant.train import train

    results = tmp_path_factory.mktemp("results")
    runs = {arch: train(tiny_cfg(results / "runs", model={"arch": arch}, train=LEARN), progress=False)
            for arch in ("angpt", "gptplus")}  # fmt: skip
    return results, runs
