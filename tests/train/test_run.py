"""End to end in one process: tiny anGPT and GPT+ learn the default corpus and leave complete run folders."""

from __future__ import annotations

import json
import math
import os

import pandas as pd
import pytest
import torch

from ant.config import RunConfig
from ant.models import build_model
from ant.schedules import lr_at
from ant.train import io, train
from tests.train.conftest import LEARN, tiny_cfg

SUMMARY_FIELDS = [
    "run_id",
    "arch",
    "size",
    "num_params",
    "tokens",
    "steps",
    "batch_size",
    "seq_len",
    "lr",
    "seed",
    "status",
    "final_val_loss",
    "final_train_loss",
    "diverged_step",
    "flops",
    "wall_time_s",
    "tokens_per_s",
    "device",
    "torch_version",
    "finished_at",
    "error",
]


@pytest.mark.parametrize("arch", ["angpt", "gptplus"])
def test_tiny_models_learn_real_text(learned_runs, byte_tokens, arch):
    r = learned_runs[1][arch]
    metrics = pd.read_parquet(r.run_dir / "metrics.parquet")
    val = metrics.dropna(subset=["val_loss"])
    assert r.status == "completed"
    assert val["val_loss"].iloc[0] == pytest.approx(math.log(256), abs=0.3)  # step 0: a uniform guess
    # Well below the unigram entropy: the model predicts from context, not just from letter frequencies.
    assert r.summary["final_val_loss"] < byte_tokens.unigram_entropy - 0.5, (r.summary, byte_tokens.unigram_entropy)
    assert r.summary["final_val_loss"] == val["val_loss"].iloc[-1]


@pytest.mark.parametrize("arch", ["angpt", "gptplus"])
def test_run_folder_is_complete_and_consistent(learned_runs, arch):
    r = learned_runs[1][arch]
    cfg = RunConfig.from_yaml(r.run_dir / "config.yaml")
    assert cfg.is_resolved and cfg.run_id() == r.run_dir.name == r.summary["run_id"]
    s = json.loads((r.run_dir / "summary.json").read_text())
    assert s == r.summary and set(SUMMARY_FIELDS) <= set(s)
    T, B = cfg.data.seq_len, cfg.train.batch_size
    assert s["steps"] == cfg.steps == 192 and s["tokens"] == 192 * B * T
    model = build_model(arch, "tiny1", vocab_size=cfg.model.vocab_size)
    assert s["num_params"] == model.num_params()
    assert s["flops"] == pytest.approx(model.flops_per_token(T) * s["tokens"])
    assert s["diverged_step"] is None and s["error"] is None and s["finished_at"]

    m = pd.read_parquet(r.run_dir / "metrics.parquet")
    assert list(m.columns[:7]) == ["step", "tokens", "train_loss", "val_loss", "lr", "grad_norm", "tokens_per_s"]
    assert (m["tokens"] == m["step"] * B * T).all() and m["step"].is_monotonic_increasing
    train_rows = m.dropna(subset=["train_loss"])
    assert list(train_rows["step"]) == list(range(8, 193, 8))
    assert train_rows["lr"].tolist() == pytest.approx([lr_at(s - 1, cfg.optim, cfg.steps) for s in train_rows["step"]])
    assert (train_rows["grad_norm"] > 0).all() and (train_rows["tokens_per_s"] > 0).all()
    assert list(m.dropna(subset=["val_loss"])["step"]) == [0, 64, 128, 192]
    n_layers = 2
    diag = m.dropna(subset=["resid_norm_0"])
    assert list(diag["step"]) == [0, 64, 128, 192]
    assert {f"resid_norm_{i}" for i in range(n_layers + 1)} <= set(m.columns)
    alphas = {f"alpha_{k}_{i}" for k in "am" for i in range(n_layers)}
    assert (alphas <= set(m.columns)) == (arch == "angpt")
    if arch == "angpt":
        assert diag[sorted(alphas)].notna().all().all()

    ckpts = io.list_checkpoints(r.run_dir / "checkpoints")
    assert [step for step, _ in ckpts] == [128, 64]  # every 64 steps, the last two, none at the very end
    assert all(io.is_valid(p) for _, p in ckpts)


def test_checkpoints_hold_projected_weights(learned_runs):
    """project_weights runs after every optimizer step and before any callback: the checkpointed anGPT weights
    satisfy the norm bound, and the bound is active (Adam pushed rows out, the projection pulled them back)."""
    r = learned_runs[1]["angpt"]
    _, path = io.newest_valid_checkpoint(r.run_dir / "checkpoints")
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    model = build_model("angpt", "tiny1", vocab_size=256)
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    maxima = [c.norms().max().item() for c in model.constraints()]
    assert max(maxima) <= 1 + 1e-5
    assert max(maxima) >= 1 - 1e-5


def test_finished_run_is_returned_not_retrained(learned_runs):
    results, runs = learned_runs
    r = runs["gptplus"]
    before = {p: p.stat().st_mtime_ns for p in r.run_dir.rglob("*")}
    again = train(
        tiny_cfg(results / "runs", model={"arch": "gptplus"}, train={**LEARN, "log_interval": 3}), progress=False
    )  # fmt: skip  (log_interval is not part of the run id)
    assert again.run_dir == r.run_dir and again.summary == r.summary
    assert {p: p.stat().st_mtime_ns for p in r.run_dir.rglob("*")} == before


def test_num_threads_is_applied_and_restored(tmp_path, byte_tokens, monkeypatch):
    seen = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n, _f=torch.set_num_threads: (seen.append(n), _f(n)))
    outer = torch.get_num_threads()
    torch.set_num_threads(2)  # not the run's 1 (an xdist worker runs at 1 thread), so a missed restore shows
    try:
        seen.clear()
        train(tiny_cfg(tmp_path, train={"tokens": 4 * 8 * 64, "eval_interval": 4}), progress=False)
        assert seen[0] == 1 and seen[-1] == 2 and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(outer)
    assert os.listdir(tmp_path)


@pytest.mark.slow
def test_gpu_code_path_compile_and_bf16_on_cpu(tmp_path, byte_tokens):
    """torch.compile + bf16-mixed (the GPU defaults) run end to end here too: checkpoints hold plain `model.*`
    keys (the compiled wrapper is not part of the module tree) and the projection still follows every step."""
    cfg = tiny_cfg(tmp_path, train={"tokens": 30 * 8 * 64, "compile": "true", "precision": "bf16-mixed",
                                    "eval_interval": 30, "ckpt_interval": 20})  # fmt: skip
    r = train(cfg, progress=False)
    assert r.status == "completed" and r.summary["precision"] == "bf16-mixed"
    assert math.isfinite(r.summary["final_val_loss"]) and r.summary["final_val_loss"] < math.log(256)
    _, path = io.newest_valid_checkpoint(r.run_dir / "checkpoints")
    state = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    assert all(k.startswith("model.") and "_orig_mod" not in k for k in state)
    model = build_model("angpt", "tiny1", vocab_size=256)
    model.load_state_dict({k.removeprefix("model."): v for k, v in state.items()})
    assert max(c.norms().max().item() for c in model.constraints()) <= 1 + 1e-5


def test_under_slurm_lightning_does_not_requeue(tmp_path, byte_tokens, monkeypatch):
    """Inside a SLURM job the sweep (submitit) owns requeueing: Lightning gets SLURMEnvironment(auto_requeue=False)
    and installs no SIGUSR1 requeue handler of its own."""
    import signal

    from lightning.pytorch.plugins.environments import SLURMEnvironment

    from ant.train.callbacks import TrainMonitor

    env = {"SLURM_NTASKS": "1", "SLURM_JOB_NAME": "ant-sweep", "SLURM_JOB_ID": "42", "SLURM_NODELIST": "localhost",
           "SLURM_PROCID": "0", "SLURM_LOCALID": "0", "SLURM_NODEID": "0"}  # fmt: skip
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    seen = {}
    start = TrainMonitor.on_train_start

    def record(self, trainer, pl_module):
        seen["env"] = trainer._accelerator_connector.cluster_environment
        seen["usr1"] = signal.getsignal(signal.SIGUSR1)
        start(self, trainer, pl_module)

    monkeypatch.setattr(TrainMonitor, "on_train_start", record)
    r = train(tiny_cfg(tmp_path, train={"tokens": 4 * 8 * 64, "eval_interval": 4}), progress=False)
    assert r.status == "completed"
    assert isinstance(seen["env"], SLURMEnvironment) and seen["env"].auto_requeue is False
    assert seen["usr1"] in (signal.SIG_DFL, None)
