"""The optimisation recipe and the LR schedule (pure functions of the step)."""

from __future__ import annotations

import math

import pytest
import torch

from ant.config import RunConfig
from ant.models import build_model
from ant.train.optim import build_optimizer, lr_at, lr_factor, set_lr, warmup_steps


def resolved(arch: str, **optim) -> RunConfig:
    d = {"model": {"arch": arch, "size": "tiny1"}, "optim": optim, "train": {"tokens": 100 * 16 * 128}}
    return RunConfig.from_dict(d).resolve(vocab_size=256)


def test_warmup_then_cosine_to_final_fraction():
    cfg = resolved("gptplus", lr=1e-3)  # warm-up 10 % of 100 steps
    o, steps = cfg.optim, cfg.steps
    assert steps == 100 and warmup_steps(o, steps) == 10
    lrs = [lr_at(s, o, steps) for s in range(steps)]
    assert lrs[:10] == pytest.approx([1e-3 * (s + 1) / 10 for s in range(10)])
    assert lrs[9] == pytest.approx(1e-3)  # the warm-up ends at the peak
    assert lrs[-1] == pytest.approx(0.01 * 1e-3)  # the last step is at final_lr_frac x peak
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:]))  # monotone decay after the warm-up
    mid = 10 + (99 - 10) / 2  # cosine: half way between peak and floor at the midpoint
    assert lr_factor(int(mid), steps=100, warmup=10, schedule="cosine", final_lr_frac=0.01) == pytest.approx(
        0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (int(mid) - 10) / 89))
    )


def test_angpt_recipe_has_no_warmup_and_linear_constant_schedules():
    cfg = resolved("angpt", lr=2e-3)
    assert warmup_steps(cfg.optim, cfg.steps) == 0
    assert lr_at(0, cfg.optim, cfg.steps) == pytest.approx(2e-3)
    f = dict(steps=11, warmup=0, final_lr_frac=0.1)
    assert [lr_factor(s, schedule="linear", **f) for s in (0, 5, 10)] == pytest.approx([1.0, 0.55, 0.1])
    assert {lr_factor(s, schedule="constant", **f) for s in range(11)} == {1.0}
    assert lr_factor(0, steps=1, warmup=0, schedule="cosine", final_lr_frac=0.01) == 1.0  # one-step run


@pytest.mark.parametrize(
    ("arch", "cls", "decays"), [("gptplus", torch.optim.AdamW, True), ("angpt", torch.optim.Adam, False)]
)
def test_optimizer_follows_the_recipe(arch, cls, decays):
    cfg = resolved(arch)
    model = build_model(arch, "tiny1", vocab_size=cfg.model.vocab_size)
    opt = build_optimizer(model, cfg.optim)
    assert type(opt) is cls
    assert all(g["betas"] == (0.9, 0.99) and g["eps"] == 1e-9 for g in opt.param_groups)  # beta2 0.99 < 100M
    n_params = sum(len(g["params"]) for g in opt.param_groups)
    assert n_params == len(list(model.parameters()))
    decayed = [p for g in opt.param_groups if g["weight_decay"] > 0 for p in g["params"]]
    if decays:  # wd 0.1 on matrices only: no vector or scalar is decayed, every hidden matrix is
        assert {g["weight_decay"] for g in opt.param_groups} == {0.0, 0.1}
        assert decayed and all(p.ndim == 2 for p in decayed)
    else:
        assert not decayed
    set_lr(opt, 0, cfg.optim, cfg.steps)  # step 0: the first warm-up step for GPT+, the peak for anGPT
    expected = cfg.optim.lr / warmup_steps(cfg.optim, cfg.steps) if decays else cfg.optim.lr
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([expected] * len(opt.param_groups))


def test_unresolved_config_is_refused():
    model = build_model("angpt", "tiny1", vocab_size=256)
    with pytest.raises(ValueError, match="resolved"):
        build_optimizer(model, RunConfig().optim)
