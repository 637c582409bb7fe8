"""Shared pieces of the sweep tests: a small real-English corpus and a tiny grid file writer.

The corpus is the docstrings of a few standard-library modules plus the license texts Debian ships: real prose
that exists on every machine, tokenized as bytes so no tokenizer has to be trained. Runs are tiny1 models on a few
thousand tokens (seconds each).
"""

from __future__ import annotations

import argparse
import collections
import inspect
import json
import os
import pathlib
import typing

import pytest
import yaml


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> pathlib.Path:
    d = tmp_path_factory.mktemp("corpus")
    parts = [inspect.getdoc(m) or "" for m in (json, os, collections, argparse, typing, pathlib, inspect)]
    lic = pathlib.Path("/usr/share/common-licenses")
    if lic.is_dir():
        parts += [p.read_text(errors="ignore") for p in sorted(lic.iterdir())[:6] if p.is_file()]
    p = d / "corpus.txt"
    p.write_text("\n\n".join(parts))
    return p


@pytest.fixture
def slurm_commands(tmp_path, monkeypatch) -> pathlib.Path:
    """A folder put first on PATH holding an `srun` that only says it is not a cluster: submitit's SLURM executor
    refuses to be built without `srun` on PATH, and the tests that build one (the submission script, sbatch
    refusing) need no cluster. A test adds its own commands (e.g. an sbatch) to the folder."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    srun = bin_dir / "srun"
    srun.write_text("#!/bin/sh\necho 'srun: no cluster in this test' >&2\nexit 1\n")
    srun.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


@pytest.fixture(scope="session")
def requeue_reference(tmp_path_factory, corpus) -> pathlib.Path:
    """The requeue tests' run trained without interruption, once, in this process (one device, one thread as
    the SLURM job runs): the run folder whose metrics table a requeued run must equal."""
    from ant.sweep.grid import Grid
    from ant.train import train
    from tests.sweep.slurm_support import requeue_grid

    root = tmp_path_factory.mktemp("requeue-reference")
    cfg = Grid.from_yaml(requeue_grid(root / "g.yaml", corpus, root)).expand()[0]
    cfg.train.num_threads = 1
    result = train(cfg, progress=False)
    assert result.status == "completed" and result.summary["resumed_from_step"] is None
    return result.run_dir


def write_grid(path: pathlib.Path, corpus: pathlib.Path, out: pathlib.Path, **over) -> pathlib.Path:
    """A grid of tiny byte-level runs; keyword arguments replace top-level keys or grid axes."""
    g = {
        "name": over.pop("name", "t"),
        "out_dir": str(out / "runs"),
        "base": {
            "data": {
                "corpus": str(corpus),
                "tokenizer": "bytes",
                "seq_len": 32,
                "val_tokens": 2048,
                "cache_dir": str(out / "cache"),
            },  # fmt: skip
            "train": {"device": "cpu", "eval_interval": 10, "ckpt_interval": 10},
        },
        "grid": {
            "arch": ["gptplus", "angpt"],
            "size": ["tiny1"],
            "tokens": [4096],
            "batch_size": [8],
            "lr": [3e-3],
            "seed": [0],
        },  # fmt: skip
        "executor": {"name": "local", "concurrency": 2, "threads_per_run": 1},
    }
    for k, v in over.items():
        if k in ("executor", "tune", "estimate", "base", "grids"):
            g[k] = v
        else:
            g["grid"][k] = v
    path.write_text(yaml.safe_dump(g))
    return path
