"""Compiled training steps on CPU (ant.train.compiled): the same run id, the loss curve of the eager run within
float summation-order noise, graphs shared by the runs of one process, and exact resume."""

from __future__ import annotations

import pandas as pd
import pytest
import torch._dynamo.utils as dynamo_utils

from ant import recipe
from ant.config import RunConfig
from ant.train import compiled, train
from tests.train.conftest import tiny_cfg
from tests.train.test_resume import stop_at

pytestmark = pytest.mark.slow  # one compilation of a tiny1 step: 20-70 s on the 2-core machine

SHORT = {"tokens": 40 * 8 * 64, "eval_interval": 20, "diag_interval": 20, "ckpt_interval": 20}
# fp32 summation order differs between Inductor's kernels and eager ones, and the difference compounds over the
# 40 steps of Adam at lr 1e-2: 1e-3 relative passes (see the test), and is far below what a wrong update (a
# missed projection, a wrong LR) moves a loss by within a few steps
RTOL = 1e-3


def losses(run) -> pd.Series:
    return pd.read_parquet(run.run_dir / "metrics.parquet").set_index("step")["train_loss"].dropna()


@pytest.fixture(scope="module")
def eager_and_compiled(tmp_path_factory, byte_tokens):
    tmp = tmp_path_factory.mktemp("compiled")
    eager = train(tiny_cfg(tmp / "eager", train={**SHORT, "cpu_compile": "false"}), progress=False)
    return eager, train(tiny_cfg(tmp / "compiled", train={**SHORT, "cpu_compile": "true"}), progress=False)


def test_compiled_run_matches_the_eager_one(eager_and_compiled):
    eager, comp = eager_and_compiled
    assert eager.run_dir.name == comp.run_dir.name  # not part of the run id
    le, lc = losses(eager), losses(comp)
    assert list(le.index) == list(lc.index) and len(le) == 8
    assert lc.to_numpy() == pytest.approx(le.to_numpy(), rel=RTOL)
    assert comp.summary["final_val_loss"] == pytest.approx(eager.summary["final_val_loss"], rel=RTOL)
    assert le.to_numpy().tolist() != lc.to_numpy().tolist()  # it did compile: the kernels differ in rounding


def test_a_second_run_of_the_same_shape_reuses_the_graphs(eager_and_compiled, tmp_path):
    before = dict(dynamo_utils.counters["stats"])
    other = train(tiny_cfg(tmp_path, train={**SHORT, "cpu_compile": "true", "seed": 1}), progress=False)
    assert other.status == "completed"
    assert dynamo_utils.counters["stats"]["unique_graphs"] == before.get("unique_graphs", 0)  # nothing compiled


def test_a_compiled_run_resumes_exactly(eager_and_compiled, tmp_path, monkeypatch):
    cfg = tiny_cfg(tmp_path, train={**SHORT, "cpu_compile": "true"})
    stop_at(monkeypatch, 25)
    first = train(cfg, progress=False)
    assert first.status == "running" and first.summary["steps"] == 25
    monkeypatch.undo()
    done = train(cfg, progress=False)
    ref = eager_and_compiled[1]
    pd.testing.assert_series_equal(losses(done), losses(ref), check_exact=True)
    assert done.summary["final_val_loss"] == ref.summary["final_val_loss"]


def test_the_cpu_rule_compiles_runs_long_enough_to_repay_the_warm_up():
    def cfg(tokens: float, **train) -> RunConfig:
        d = {"model": {"arch": "angpt", "size": "tiny2", "vocab_size": 256}, "data": {"tokenizer": "bytes"},
             "train": {"tokens": int(tokens), "batch_size": 4, "device": "cpu", **train}}  # fmt: skip
        return recipe.resolve(RunConfig.from_dict(d))

    short, long = cfg(2e4), cfg(5e6)  # ~1 s and ~270 s of eager training (estimated)
    assert short.train.compile == long.train.compile == "false"  # the hashed field keeps its CPU default
    assert not compiled.use_compile(short) and compiled.use_compile(long)
    assert not compiled.use_compile(cfg(5e6, num_threads=64))  # more threads: eager is faster, the warm-up is not
    assert compiled.use_compile(cfg(2e4, cpu_compile="true"))
    assert not compiled.use_compile(cfg(5e6, cpu_compile="false"))
    assert compiled.use_compile(cfg(2e4, compile="true"))


def test_the_packed_rule_counts_the_whole_pack():
    """A pack pays one warm-up for all its runs: nine runs too short to compile alone compile together."""

    def cfg(tokens: float, **train) -> RunConfig:
        d = {"model": {"arch": "angpt", "size": "tiny2", "vocab_size": 256}, "data": {"tokenizer": "bytes"},
             "train": {"tokens": int(tokens), "batch_size": 4, "device": "cpu", **train}}  # fmt: skip
        return recipe.resolve(RunConfig.from_dict(d))

    mid = cfg(5e5)  # ~27 s of eager training alone (estimated): below MIN_EAGER_S
    assert not compiled.use_compile(mid) and not compiled.use_compile_packed([mid])
    assert compiled.use_compile_packed([mid] * 9)
    assert not compiled.use_compile_packed([cfg(5e5, num_threads=64)] * 9)
    assert not compiled.use_compile_packed([cfg(5e6, cpu_compile="false")] * 9)
    assert compiled.use_compile_packed([cfg(2e4, cpu_compile="true")])
