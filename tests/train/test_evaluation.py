"""Evaluation that costs what it should (issue 23): intermediate evaluations on a subset of the validation
windows at log-spaced steps, the final one on all of them at its own batch size; the final val loss is the one
the old scheme (every window at the training batch) gives, up to float summation order."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from ant.config import RunConfig
from ant.models import build_model
from ant.train import evaluation, train
from ant.train.module import evaluate
from tests.train.conftest import VAL_TOKENS, tiny_cfg

SHORT = {"tokens": 120 * 8 * 64, "eval_interval": 20, "diag_interval": 60, "ckpt_interval": 60}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, byte_tokens):
    """The same run under the old scheme (every window, at the training batch 8, at every multiple of
    eval_interval) and the new defaults with a quarter of the windows at the intermediate evaluations."""
    tmp = tmp_path_factory.mktemp("evaluation")
    old = train(tiny_cfg(tmp / "old", train={**SHORT, "eval_spacing": "every", "eval_tokens": VAL_TOKENS,
                                               "eval_batch_size": 8}), progress=False)  # fmt: skip
    subset = {**SHORT, "eval_tokens": VAL_TOKENS // 4}  # opted into: the default evaluates every window
    return old, train(tiny_cfg(tmp / "new", train=subset), progress=False)


def test_subset_and_batch_leave_the_final_val_loss_unchanged(runs):
    old, new = runs
    assert old.run_dir.name == new.run_dir.name  # measurement settings: the same run id
    mo, mn = (pd.read_parquet(r.run_dir / "metrics.parquet") for r in (old, new))
    # training never sees the evaluation: the same loss curve bit for bit
    pd.testing.assert_series_equal(mo["train_loss"], mn["train_loss"], check_exact=True)
    assert new.summary["final_val_loss"] == pytest.approx(old.summary["final_val_loss"], rel=1e-6, abs=0)
    full = VAL_TOKENS // 64 * 64 - 64  # (val_tokens - 1) // seq_len windows of seq_len predicted tokens
    vo, vn = mo.dropna(subset=["val_loss"]), mn.dropna(subset=["val_loss"])
    assert list(vo["step"]) == list(range(0, 121, 20))
    # step 0, the multiples 1, 2, 3, 4 of 20 below 120 (not 5), then the final step
    assert list(vn["step"]) == [0, 20, 40, 60, 80, 120]
    assert list(vo["val_tokens"]) == [full] * len(vo)
    assert list(vn["val_tokens"]) == [VAL_TOKENS // 4] * 5 + [full]  # a quarter of data.val_tokens: 64 windows
    assert new.summary["final_val_loss"] == vn["val_loss"].iloc[-1]
    # the subset's loss at the final step is recorded beside the full one (the offset of the curve's points)
    assert vn["val_loss_subset"].iloc[-1] == pytest.approx(vn["val_loss"].iloc[-1], rel=0.05)
    # intermediate subset points estimate the full set's: within a few % of the old run's full evaluations
    both = vo.set_index("step")["val_loss"].reindex(vn["step"]).to_numpy()
    assert vn["val_loss"].to_numpy() == pytest.approx(both, rel=0.05)


def test_intermediate_evaluations_use_every_window_by_default():
    # the frontier, IsoFLOP and Fig. 4 fit every val row of a curve: one estimator throughout unless opted out
    cfg = RunConfig.from_dict({"model": {"arch": "gptplus", "size": "tiny0"}, "train": {"tokens": 4096}})
    assert cfg.train.eval_tokens == 0
    assert evaluation.subset_windows(cfg, 1000) == min(1000, cfg.data.val_tokens // cfg.data.seq_len)
    assert evaluation.subset_windows(cfg, 10) == 10
    cfg.train.eval_tokens = 4 * cfg.data.seq_len
    assert evaluation.subset_windows(cfg, 1000) == 4


def test_final_weights_evaluate_the_same_at_any_eval_batch(runs, byte_tokens):
    r = runs[1]
    cfg = RunConfig.from_yaml(r.run_dir / "config.yaml")
    model = build_model(cfg.model.arch, cfg.model.size, vocab_size=cfg.model.vocab_size)
    model.load_state_dict(torch.load(r.run_dir / "weights.pt", weights_only=True))
    for b in (3, 64):
        cfg.train.eval_batch_size = b
        full = evaluation.val_sets(cfg, byte_tokens.val).full
        assert evaluate(model, full, "cpu") == pytest.approx(r.summary["final_val_loss"], rel=1e-6, abs=0)


def test_log_spacing_depends_on_the_interval_alone():
    def cfg(steps: int, every: int, spacing: str = "log") -> RunConfig:
        c = RunConfig()
        c.steps, c.train.eval_interval, c.train.eval_spacing = steps, every, spacing
        return c

    # the default interval (steps / 20): step 0, 8 multiples, the final step = 10 evaluations
    inter, final = evaluation.eval_steps(cfg(2000, 100))
    assert inter == [0, 100, 200, 300, 400, 600, 800, 1100, 1600] and final == 2000
    # a shorter member of a wsd family (the trunk's interval) evaluates at the trunk's steps below its own end
    assert evaluation.eval_steps(cfg(700, 100))[0] == [s for s in inter if s < 700]
    assert evaluation.eval_steps(cfg(700, 100), start=250)[0] == [300, 400, 600]
    assert evaluation.eval_steps(cfg(50, 10, "every"))[0] == [0, 10, 20, 30, 40]
