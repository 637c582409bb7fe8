"""`ant train`: bad configs are refused before anything is written (exit 2, the field named), divergence is a
result (exit 0), a crash is recorded as failed (exit 1)."""

from __future__ import annotations

import json

import pytest
import torch

from ant.cli import main
from ant.train import io
from tests.train.conftest import tiny_cfg, tiny_dict, write_yaml

# (--set assignments, the field the one-line error must name)
BAD = [
    (["model.arch=transformer"], "model.arch"),
    (["model.size=huge"], "model.size"),
    (["model.options.n_heads=5"], "model.options.n_heads"),  # 5 heads do not divide d_model 32
    (["model.options.flash=true"], "model.options.flash"),
    (["model.vocab_size=100"], "model.vocab_size"),  # smaller than the byte tokenizer's 256
    (["train.tokens=0"], "train.tokens"),
    (["train.tokens_per_param=20"], "train.tokens"),  # both tokens and tokens_per_param
    (["train.batch_size=100000000"], "train.batch_size"),  # more sequences than the corpus holds
    (["train.device=tpu"], "train.device"),
    (["train.precision=fp8"], "train.precision"),
    (["train.divergence_factor=0.5"], "train.divergence_factor"),
    (["train.epochs=3"], "train.epochs"),
    (["data.tokenizer=sentencepiece"], "data.tokenizer"),
    (["data.corpus=/nonexistent/corpus.txt"], "data.corpus"),
    (["data.seq_len=1"], "data.seq_len"),
    (["data.val_tokens=10"], "data.val_tokens"),
    (["optim.optimizer=sgd"], "optim.optimizer"),
    (["optim.lr=-1"], "optim.lr"),
    (["optim.beta2=1.5"], "optim.beta2"),
    (["optim.schedule=step"], "optim.schedule"),
]
if not torch.cuda.is_available():
    BAD.append((["train.device=cuda"], "train.device"))


@pytest.mark.parametrize(("sets", "field"), BAD, ids=[s[0] for s, _ in BAD])
def test_bad_config_exits_2_names_the_field_and_writes_nothing(tmp_path, capsys, byte_tokens, sets, field):
    config = write_yaml(tmp_path / "run.yaml", tiny_dict())
    out = tmp_path / "runs"
    args = ["train", str(config), "--out-dir", str(out), "--no-progress"]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"ant train: error: {field}:"), err
    assert not out.exists()


def test_missing_config_file(tmp_path, capsys):
    assert main(["train", str(tmp_path / "nope.yaml")]) == 2
    assert "config: file not found" in capsys.readouterr().err


def test_divergence_is_a_result_exit_0(tmp_path, capsys, byte_tokens):
    config = write_yaml(tmp_path / "run.yaml", tiny_dict(model={"arch": "gptplus"}, optim={"lr": 50.0, "grad_clip": 0}))
    assert main(["train", str(config), "--out-dir", str(tmp_path / "runs"), "--no-progress", "--json"]) == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    s = io.read_json(run_dir / "summary.json")
    assert s["status"] == "diverged" and 1 <= s["diverged_step"] <= s["steps"] < 300
    assert s["finished_at"] and s["error"] is None
    assert json.loads(capsys.readouterr().out)["status"] == "diverged"  # stdout: the JSON alone, no progress lines
    # a diverged run keeps no checkpoint: there is nothing worth resuming
    assert not (run_dir / "checkpoints").exists() or not list((run_dir / "checkpoints").glob("*.ckpt"))
    # Rerunning a diverged run returns its result instead of diverging again.
    assert main(["train", str(config), "--out-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    assert io.read_json(run_dir / "summary.json") == s


def test_a_nan_loss_is_divergence_at_its_step(tmp_path, byte_tokens, monkeypatch):
    """The non-finite branch of the divergence guard: the forward pass of step 12 gives a NaN loss (the
    loss-factor branch cannot see it: every comparison with NaN is false, so without the branch the run would
    train on to the end with NaN weights and call itself completed)."""
    from ant.train import module
    from ant.train.run import train

    nan_step, inject = 12, {"on": False}
    token_loss, training_step = module.token_loss, module.LMModule.training_step

    def loss_of_step(forward, x, y):
        loss = token_loss(forward, x, y)
        return loss * float("nan") if inject["on"] else loss

    def step(self, batch, batch_idx):
        inject["on"] = self.trainer.global_step + 1 == nan_step  # the monitor counts steps from 1
        try:
            return training_step(self, batch, batch_idx)
        finally:
            inject["on"] = False

    monkeypatch.setattr(module, "token_loss", loss_of_step)
    monkeypatch.setattr(module.LMModule, "training_step", step)
    s = train(tiny_cfg(tmp_path / "runs", model={"arch": "gptplus"}), progress=False).summary
    assert s["status"] == "diverged" and s["diverged_step"] == nan_step, s
    assert s["steps"] < s["planned_steps"], s  # the run stopped there, at the end of its log interval


def test_crash_is_recorded_as_failed_exit_1(tmp_path, capsys, byte_tokens, monkeypatch):
    from ant.train.module import LMModule

    step = LMModule.training_step

    def boom(self, batch, batch_idx):
        if self.trainer.global_step == 7:
            raise RuntimeError("out of cheese")
        return step(self, batch, batch_idx)

    monkeypatch.setattr(LMModule, "training_step", boom)
    config = write_yaml(tmp_path / "run.yaml", tiny_dict(train={"ckpt_interval": 5, "tokens": 20 * 8 * 64}))
    assert main(["train", str(config), "--out-dir", str(tmp_path / "runs"), "--no-progress"]) == 1
    assert "out of cheese" in capsys.readouterr().err
    (run_dir,) = (tmp_path / "runs").iterdir()
    s = io.read_json(run_dir / "summary.json")
    assert s["status"] == "failed" and "RuntimeError: out of cheese" in s["error"]
    assert s["steps"] == 7 and io.newest_valid_checkpoint(run_dir / "checkpoints")[0] == 5
    # A failed run is retried, from its newest checkpoint.
    monkeypatch.undo()
    assert main(["train", str(config), "--out-dir", str(tmp_path / "runs"), "--no-progress"]) == 0
    s = io.read_json(run_dir / "summary.json")
    assert s["status"] == "completed" and s["resumed_from_step"] == 5
