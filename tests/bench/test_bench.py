"""ant bench: the report's figures are consistent, the timed step is a real training step, bad input exits 2."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ant.bench import Bench, BenchConfig, bench, format_table, split_steps
from ant.cli import main
from ant.errors import ConfigError
from ant.perf import StopAfterBlock
from tests.conftest import COMPILE_SHAPE

ROOT = Path(__file__).resolve().parents[2]


def test_cli_report_is_consistent_and_includes_lightning(tmp_path, capsys):
    out = tmp_path / "bench" / "b.json"
    args = ["bench", "--archs", "gptplus", "angpt", "--size", "tiny1", "--steps", "4", "--reps", "2"]
    args += ["--warmup", "1", "--seq-len", "32", "--batch", "4", "--vocab-size", "256", "--lightning"]
    assert main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rep = json.loads(out.read_text())
    assert rep["device"].startswith("cpu") and rep["torch"] == torch.__version__ and rep["peak_flops"] is None
    assert rep["config"]["seq_len"] == 32 and rep["config"]["dtype"] == "fp32"
    assert [r["arch"] for r in rep["results"]] == ["gptplus", "angpt"]
    first = rep["results"][0]["step_time_ms"]
    for r in rep["results"]:
        assert r["n_steps"] == 4 and r["step_time_ms"] > 0 and r["step_time_min_ms"] <= r["step_time_ms"]
        assert r["tokens_per_s"] == pytest.approx(4 * 32 / (r["step_time_ms"] / 1e3))
        assert r["overhead_vs_first"] == pytest.approx(r["step_time_ms"] / first)
        assert r["mfu"] is None and r["peak_mem_mb"] is None  # CPU: no peak table entry, no CUDA allocator
        # ... but an MFU against the measured fp32 GEMM rate of this process: a training step of tiny matmuls
        # cannot run faster than one large GEMM
        tflops = r["flops_per_token"] * r["tokens_per_s"]
        assert r["mfu_vs_measured_matmul"] == pytest.approx(tflops / rep["measured_matmul_peak_flops"])
        assert 0 < r["mfu_vs_measured_matmul"] < 1
        assert r["lightning_step_time_ms"] > 0
        assert r["lightning_overhead"] == pytest.approx(r["lightning_step_time_ms"] / r["step_time_ms"] - 1)
        assert r["eager_ops"] > r["eager_pointwise_ops"] > 0
        assert r["flops_per_token"] > 6 * r["num_params"] * 0.5
        assert r["arch"] in printed
    assert "+0.0%" in printed and not list(out.parent.glob("*.tmp"))


def test_the_timed_step_trains_and_keeps_the_weight_constraint():
    cfg = BenchConfig(archs=["angpt"], size="tiny1", seq_len=16, batch=4, vocab_size=64, lr=1e-2).resolve()
    b = Bench("angpt", cfg)
    b.batches = b.batches[:1]  # one batch over and over: the loss must fall if the step really trains
    losses = [b.step().item() for _ in range(25)]
    assert losses[-1] < losses[0] - 1.0
    # anGPT bounds every matrix row (input dim) to norm <= 1 after each step (project_weights is in the step)
    for c in b.model.constraints():
        assert c.norms().max() <= 1 + 1e-5, c.name
    assert b.static_bytes() >= 3 * 4 * b.num_params  # fp32 weights + Adam's two moments


@pytest.mark.parametrize(
    "argv, field",
    [
        (["--archs", "gptplus", "transformer"], "--archs"),
        (["--archs", "angpt", "angpt"], "--archs"),
        (["--steps", "2", "--reps", "3"], "--steps"),
        (["--size", "7B"], "model.size"),
        (["--warmup", "0"], "--warmup"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, argv, field):
    out = tmp_path / "b.json"
    assert main(["bench", *argv, "--out", str(out)]) == 2
    assert field in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_a_gpu_is_a_config_error():
    with pytest.raises(ConfigError, match="--device"):
        BenchConfig(device="cuda").resolve()


def test_defaults_follow_the_size_and_blocks_split_the_steps():
    paper = BenchConfig(size="0.5B", device="cpu").resolve()
    assert (paper.seq_len, paper.batch, paper.vocab_size) == (2048, 8, 50304)
    tiny = BenchConfig(size="tiny3", device="cpu").resolve()
    assert (tiny.seq_len, tiny.batch, tiny.dtype) == (128, 16, "fp32")
    assert split_steps(10, 4) == [3, 3, 2, 2]


def test_table_prints_every_column():
    rep = {
        "device": "NVIDIA H100 80GB HBM3",
        "torch": "2.11.0",
        "config": {"size": "0.5B", "seq_len": 2048, "batch": 8, "dtype": "bf16", "compile": True},
        "results": [
            {"arch": a, "step_time_ms": t, "step_time_iqr_ms": 0.5, "tokens_per_s": 16384 / t * 1e3, "mfu": m,
             "peak_mem_mb": 30000.0, "overhead_vs_first": t / 100.0, "lightning_step_time_ms": t * 1.02,
             "lightning_overhead": 0.02}
            for a, t, m in (("gptplus", 100.0, 0.5), ("angpt", 101.5, 0.49))
        ],
    }  # fmt: skip
    text = format_table(rep)
    assert "50.0%" in text and "+1.5%" in text and "+2.0%" in text and "30000" in text


def _bench_process(out, steps: str, *extra: str) -> subprocess.Popen:
    args = [sys.executable, "-m", "ant.cli", "bench", "--archs", "gptplus", "angpt", "--size", "tiny1"]
    args += ["--steps", steps, "--reps", steps, "--warmup", "1", "--seq-len", "32", "--batch", "2"]
    args += ["--vocab-size", "256", "--threads", "1", "--out", str(out), *extra]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_sigterm_while_measuring_reports_the_blocks_so_far(tmp_path):
    """Under a time limit (timeout, SLURM, a device lease) the benchmark keeps what it measured: SIGTERM ends it
    after the current round of blocks, with equal blocks per architecture and the report marked partial."""
    out = tmp_path / "b.json"
    p = _bench_process(out, "5000")  # one step per block: far more blocks than the test waits for
    lines = []
    for line in p.stdout:
        lines.append(line)
        if line.startswith("block 2/"):
            p.send_signal(signal.SIGTERM)
            break
    rest, _ = p.communicate(timeout=120)
    assert p.returncode == 0, "".join(lines) + rest
    rep = json.loads(out.read_text())
    n = [r["n_steps"] for r in rep["results"]]
    assert rep["partial"] is True and 2 <= n[0] < 5000 and n[0] == n[1], n
    assert "stopped after block" in rest and "PARTIAL" in rest


def test_sigterm_inside_a_lightning_fit_still_reports(monkeypatch):
    """With --lightning most of a round is spent in Trainer.fit(), where Lightning turns SIGTERM into an
    exception (SIGTERMException). The round's bare blocks still finish and the report keeps every full block."""
    from ant.train.module import LMModule

    calls = {"n": 0}
    original = LMModule.training_step

    def training_step(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 12:  # 5 steps per Lightning block: inside round 2's first Lightning block
            os.kill(os.getpid(), signal.SIGTERM)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LMModule, "training_step", training_step)
    cfg = BenchConfig(archs=["gptplus", "angpt"], size="tiny1", seq_len=32, batch=2, vocab_size=256, steps=40,
                      reps=20, warmup=1, lightning=True)  # fmt: skip
    stop = StopAfterBlock()
    previous = signal.signal(signal.SIGTERM, stop)
    try:
        rep = bench(cfg, progress=lambda line: None, stop=stop)
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert stop.requested and rep["partial"] is True
    assert [r["n_steps"] for r in rep["results"]] == [4, 4]  # two full rounds of 2-step bare blocks
    # round 1 measured both Trainers; round 2's Lightning blocks were cut or skipped
    assert all(r["lightning_step_time_ms"] > 0 for r in rep["results"])


def test_sigterm_before_measuring_exits_at_once_without_a_report(tmp_path):
    out = tmp_path / "b.json"
    # 100 warm-up steps per architecture (~5 s each): once GPT+'s warm-up line is out, the handler is installed
    # and angpt is still warming up, so the signal lands before measuring by a margin of seconds, not by a sleep
    p = _bench_process(out, "4", "--warmup", "100")
    for line in p.stdout:
        if line.startswith("warm-up gptplus"):
            break
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=60)
    assert p.returncode in (143, -signal.SIGTERM) and not out.exists()


def test_every_config_field_is_a_flag_and_parses_into_the_config():
    """The parser is derived from BenchConfig: a new field is a new flag with the field's default, its value read by
    ant.decode as the field's type."""
    import argparse
    from dataclasses import fields

    from ant.bench import add_arguments
    from ant.bench.cli import config

    p = argparse.ArgumentParser()
    add_arguments(p)
    defaults = p.parse_args([])
    assert {f.name: getattr(defaults, f.name) for f in fields(BenchConfig)} == {
        f.name: f.default for f in fields(BenchConfig)
    }
    assert config(defaults) == BenchConfig().resolve()
    args = p.parse_args(["--archs", "gpt", "ngpt", "--seq-len", "32", "--compile", "--lr", "1e-2", "--threads", "1"])
    cfg = config(args)
    assert cfg.archs == ("gpt", "ngpt") and cfg.seq_len == 32 and cfg.compile and cfg.lr == 0.01 and cfg.threads == 1
    assert cfg.to_dict()["archs"] == ["gpt", "ngpt"]


@pytest.mark.parametrize(
    "flag, value", [("--lr", "nan"), ("--lr", "inf"), ("--lr", "0"), ("--lr", "-1e-3"), ("--steps", "2.5"),
                    ("--threads", "two"), ("--seq-len", "1")]
)  # fmt: skip
def test_a_bad_value_exits_2_naming_its_flag(tmp_path, capsys, flag, value):
    out = tmp_path / "b.json"
    assert main(["bench", flag, value, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert flag in err and len(err.strip().splitlines()) == 1 and not out.exists(), err


def test_the_report_is_made_from_frozen_results_alone():
    """measure -> BenchResults -> summarize: the report needs no model, only what was measured."""
    import dataclasses
    from types import MappingProxyType

    from ant.bench import ArchResult, BenchResults, summarize

    cfg = BenchConfig(archs=("gptplus", "angpt"), size="tiny1", seq_len=32, batch=4, steps=4, reps=2).resolve()
    arch = [
        ArchResult(a, 1000, 6e3, tuple(t), (), 0.5, 12000, 0, MappingProxyType({"eager_ops": 7}))
        for a, t in (("gptplus", [0.010, 0.012, 0.011, 0.013]), ("angpt", [0.011, 0.013, 0.012]))
    ]
    res = BenchResults(cfg, tuple(arch))
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.archs = ()  # type: ignore[misc]
    rep = summarize(res)
    assert rep["partial"] is True  # angpt has 3 of 4 steps
    r0, r1 = rep["results"]
    assert r0["step_time_ms"] == pytest.approx(11.5) and r1["step_time_ms"] == pytest.approx(12.0)
    assert r1["overhead_vs_first"] == pytest.approx(12.0 / 11.5) and r0["eager_ops"] == 7
    assert r0["tokens_per_s"] == pytest.approx(4 * 32 / 0.0115) and r0["n_steps"] == 4


@pytest.mark.slow
def test_compiled_model_through_lightning(tmp_path):
    """--compile --lightning is what scripts/gpu_check.sh runs on a leased GPU: the Trainer trains through the
    bench's compiled graph (handed to LMModule as `forward`), and both paths report (~40 s on 2 loaded cores)."""
    # Dynamo keeps what it compiled for the model class's forward in this process: a test before this one that
    # compiled the same shape would leave nothing to compile (and count) here
    torch._dynamo.reset()
    rep = bench(
        # the compile tests' shared shape (tests/conftest.py)
        BenchConfig(archs=("angpt",), size="tiny1", seq_len=COMPILE_SHAPE[1], batch=COMPILE_SHAPE[0], vocab_size=256,
                    steps=2, reps=1, warmup=1, compile=True, lightning=True),
        progress=lambda line: None,
    )  # fmt: skip
    (r,) = rep["results"]
    assert r["compiled_graphs"] >= 2 and r["compiled_graph_breaks"] == 0  # forward and backward, one graph each
    assert r["step_time_ms"] > 0 and r["lightning_step_time_ms"] > 0 and rep["partial"] is False
