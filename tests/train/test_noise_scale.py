"""The gradient noise scale (train.noise_scale, ant.train.noise_scale): the estimator recovers a known noise scale,
the in-training measurement has the right gradient-accumulation factors, and switching it on changes nothing
about the training result, resumes included."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest
import torch.nn.functional as F

from ant import recipe
from ant.config import RunConfig
from ant.errors import ConfigError
from ant.train import train
from ant.train.noise_scale import NoiseScaleEMA, g2_estimate, trace_estimate
from tests.train.conftest import tiny_cfg
from tests.train.test_resume import stop_at

GNS = ["gns_g2", "gns_trace", "gns_b_simple", "gns_b_simple_tokens"]


# ---------------------------------------------------------------------- the estimator
def test_estimates_are_exact_on_expected_norms():
    """E|G_B|² = |G|² + tr(Σ)/B: fed the expectations, both estimates give back |G|² and tr(Σ)."""
    g2, tr = 3.0, 45.0
    for b, big in ((1, 2), (4, 16), (2, 64)):
        sq_small, sq_big = g2 + tr / b, g2 + tr / big
        assert g2_estimate(b, sq_small, big, sq_big) == pytest.approx(g2, rel=1e-12)
        assert trace_estimate(b, sq_small, big, sq_big) == pytest.approx(tr, rel=1e-12)
    with pytest.raises(ValueError, match="b_small < b_big"):
        g2_estimate(4, 1.0, 4, 1.0)


def quadratic_noise_scale(seed: int, b_simple: float, *, steps: int = 1500, d: int = 64, b: int = 4, big: int = 16):
    """SGD gradients of a quadratic 1/2 (θ-θ*)ᵀH(θ-θ*) at a fixed θ: per-example gradient g_i = H(θ-θ*) + ξ_i with
    ξ_i ~ N(0, Σ), Σ diagonal and scaled so that tr(Σ)/|G|² = b_simple. Each step draws `big` examples in micro-
    batches of `b`, as a training step with micro-batches does, and feeds the squared norms to the estimator.
    Returns (the EMA's B_simple, mean of the per-step |G|² estimates / |G|², same for tr(Σ))."""
    rng = np.random.default_rng(seed)
    grad = np.diag(rng.uniform(0.5, 2.0, d)) @ rng.normal(size=d)  # H (θ - θ*)
    g2 = float(grad @ grad)
    var = rng.uniform(0.2, 1.0, d)  # anisotropic noise
    var *= b_simple * g2 / var.sum()
    ema, g2_sum, tr_sum = NoiseScaleEMA(), 0.0, 0.0
    for _ in range(steps):
        per_example = grad + rng.normal(size=(big, d)) * np.sqrt(var)
        micro = per_example.reshape(big // b, b, d).mean(axis=1)  # each micro-batch's mean gradient
        sq_small = float((micro**2).sum(axis=1).mean())
        full = micro.mean(axis=0)  # what gradient accumulation leaves in .grad
        sq_big = float(full @ full)
        ema.update(b, sq_small, big, sq_big)
        g2_sum += g2_estimate(b, sq_small, big, sq_big)
        tr_sum += trace_estimate(b, sq_small, big, sq_big)
    return ema.b_simple, g2_sum / steps / g2, tr_sum / steps / var.sum()


@pytest.mark.parametrize("b_simple", [4.0, 24.0])  # below and above the batch of 16
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_recovers_a_known_noise_scale_on_a_quadratic(seed, b_simple):
    est, g2_ratio, tr_ratio = quadratic_noise_scale(seed, b_simple)
    assert est == pytest.approx(b_simple, rel=0.10)  # the logged value: ratio of the EMAs at the last step
    assert g2_ratio == pytest.approx(1.0, abs=0.03)  # unbiased: the long-run means are right
    assert tr_ratio == pytest.approx(1.0, abs=0.03)


def test_ema_state_round_trips_and_skips_non_finite_steps():
    a = NoiseScaleEMA()
    assert math.isnan(a.b_simple)
    for sq_small, sq_big in ((10.0, 4.0), (12.0, 3.0), (9.0, 3.5)):
        a.update(2, sq_small, 8, sq_big)
    a.update(2, math.inf, 8, 1.0)  # a diverging step is left out
    assert a.n == 3
    b = NoiseScaleEMA(beta=0.5)
    b.load_state_dict(copy.deepcopy(a.state_dict()))
    for ema in (a, b):
        ema.update(2, 11.0, 8, 2.0)
    assert b.state_dict() == a.state_dict() and b.b_simple == a.b_simple


def test_config_needs_micro_batches_and_keeps_the_run_id():
    with pytest.raises(ConfigError, match=r"train.noise_scale: .*micro_batch_size 0.*\(allowed: false, or true with"):
        RunConfig.from_dict({"train": {"tokens": 1000, "batch_size": 8, "noise_scale": True}}).validate()
    with pytest.raises(ConfigError, match="train.noise_scale"):
        RunConfig.from_dict({"train": {"tokens": 1000, "batch_size": 8, "micro_batch_size": 8, "noise_scale": True}})\
            .validate()  # fmt: skip
    off = RunConfig.from_dict({"train": {"tokens": 1000, "batch_size": 8, "micro_batch_size": 2}})
    on = off.with_overrides(["train.noise_scale=true"])
    assert recipe.resolve(on, vocab_size=256).run_id() == recipe.resolve(off, vocab_size=256).run_id()


# ---------------------------------------------------------------------- in training
def test_measured_norms_are_those_of_the_micro_batch_and_batch_gradients(tmp_path, byte_tokens, monkeypatch):
    """One step of 8 sequences in 4 micro-batches: the logged [mean |g_micro|², |G_batch|²] equal the squared
    norms of gradients computed directly (each micro-batch's own mean-loss gradient, and the whole batch's), so
    the 1/k loss scaling of gradient accumulation is undone correctly."""
    from ant.data import TrainSampler
    from ant.train.callbacks import TrainMonitor

    seen = {}
    start, end = TrainMonitor.on_train_start, TrainMonitor.on_train_batch_end

    def on_start(self, trainer, pl_module):
        seen["model"] = copy.deepcopy(pl_module.model)  # the weights the first step's gradients are taken at
        start(self, trainer, pl_module)

    def on_end(self, trainer, pl_module, outputs, *args):
        if trainer.global_step == 1:
            seen["gns"] = outputs["gns"].clone()
        end(self, trainer, pl_module, outputs, *args)

    monkeypatch.setattr(TrainMonitor, "on_train_start", on_start)
    monkeypatch.setattr(TrainMonitor, "on_train_batch_end", on_end)
    cfg = tiny_cfg(tmp_path, train={"tokens": 2 * 8 * 64, "micro_batch_size": 2, "noise_scale": True})
    train(cfg, progress=False)

    model = seen["model"]
    x, y = TrainSampler(byte_tokens.train, 64, 8, 0).batch(0)

    def sq_grad(xb, yb) -> float:
        model.zero_grad()
        logits = model(xb)
        F.cross_entropy(logits.reshape(-1, logits.size(-1)), yb.reshape(-1)).backward()
        return sum(float(p.grad.double().square().sum()) for p in model.parameters() if p.grad is not None)

    micro = [sq_grad(xb, yb) for xb, yb in zip(x.chunk(4), y.chunk(4))]
    small, big = seen["gns"].tolist()
    assert small == pytest.approx(np.mean(micro), rel=1e-4)
    assert big == pytest.approx(sq_grad(x, y), rel=1e-4)
    assert small > 1.5 * big  # the micro-batch gradients are noisier: the test can tell the two apart


SHORT = {"tokens": 30 * 8 * 64, "micro_batch_size": 4, "log_interval": 5, "eval_interval": 10, "ckpt_interval": 10}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, byte_tokens):
    """The same 30-step tiny1 run (batch 8 in 2 micro-batches) with the noise scale off and on."""
    out = tmp_path_factory.mktemp("gns")
    off = train(tiny_cfg(out / "off", train=SHORT), progress=False)
    on = train(tiny_cfg(out / "on", train={**SHORT, "noise_scale": True}), progress=False)
    return off, on


def metrics(run) -> pd.DataFrame:
    return pd.read_parquet(run.run_dir / "metrics.parquet")


def test_training_is_bit_identical_with_the_noise_scale_on(runs):
    off, on = runs
    assert on.run_dir.name == off.run_dir.name
    m_off, m_on = metrics(off), metrics(on)
    assert not set(GNS) & set(m_off.columns)
    exact = [c for c in m_off.columns if c != "tokens_per_s"]
    pd.testing.assert_frame_equal(m_on[exact], m_off[exact], check_exact=True)
    assert on.summary["final_val_loss"] == off.summary["final_val_loss"]
    assert on.summary["final_train_loss"] == off.summary["final_train_loss"]


def test_noise_scale_columns_are_logged_and_finite(runs):
    _, on = runs
    m = metrics(on)
    rows = m[m["train_loss"].notna()]
    assert list(rows["step"]) == [5, 10, 15, 20, 25, 30]
    gns = rows[GNS].to_numpy()
    assert np.isfinite(gns).all() and (gns > 0).all()
    np.testing.assert_allclose(rows["gns_b_simple"], rows["gns_trace"] / rows["gns_g2"], rtol=1e-12)
    np.testing.assert_allclose(rows["gns_b_simple_tokens"], 64 * rows["gns_b_simple"], rtol=1e-12)
    assert m.loc[m["train_loss"].isna(), GNS].isna().all().all()  # the step-0 evaluation row measures none


def test_resume_continues_the_noise_scale_exactly(tmp_path, runs, monkeypatch):
    """Stopped at step 13 (between log rows, so unfolded per-step values travel in the checkpoint) and resumed:
    the whole table, gns_* columns included, equals the uninterrupted run's."""
    _, on = runs
    cfg = tiny_cfg(tmp_path, train={**SHORT, "noise_scale": True})
    stop_at(monkeypatch, 13)
    assert train(cfg, progress=False).summary["steps"] == 13
    monkeypatch.undo()
    resumed = train(cfg, progress=False)
    assert resumed.summary["resumed_from_step"] == 13
    m_on, m_res = metrics(on), metrics(resumed)
    exact = [c for c in m_on.columns if c != "tokens_per_s"]
    pd.testing.assert_frame_equal(m_res[exact], m_on[exact], check_exact=True)
