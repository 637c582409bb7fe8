"""The LR schedules (ant.schedules): pure functions of the step, registered by name; the config's vocabulary is
the registry's."""

from __future__ import annotations

import math
import typing

import pytest

from ant import recipe, schedules
from ant.config import DecayShape, RunConfig, Schedule
from ant.errors import ConfigError
from ant.schedules import SCHEDULES, Span, lr_at, lr_factor, warmup_steps


def resolved(arch: str, **optim) -> RunConfig:
    d = {"model": {"arch": arch, "size": "tiny1"}, "optim": optim, "train": {"tokens": 100 * 16 * 128}}
    return recipe.resolve(RunConfig.from_dict(d), vocab_size=256)


def test_the_config_vocabulary_is_the_registry():
    assert typing.get_args(Schedule) == tuple(SCHEDULES) == ("cosine", "linear", "constant", "wsd")
    assert typing.get_args(DecayShape) == schedules.DECAY_SHAPES
    with pytest.raises(ConfigError, match=r"optim.schedule: .*allowed: cosine, linear, constant, wsd"):
        resolved("gptplus", schedule="cosin")
    with pytest.raises(ConfigError, match=r"optim.schedule: .*allowed: cosine, linear, constant, wsd"):
        lr_factor(5, "cosin", Span(steps=10, warmup=0, final=0.1))


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
    assert lr_factor(int(mid), "cosine", Span(steps=100, warmup=10, final=0.01)) == pytest.approx(
        0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * (int(mid) - 10) / 89))
    )


def test_angpt_recipe_has_no_warmup_and_linear_constant_schedules():
    cfg = resolved("angpt", lr=2e-3)
    assert warmup_steps(cfg.optim, cfg.steps) == 0
    assert lr_at(0, cfg.optim, cfg.steps) == pytest.approx(2e-3)
    s = Span(steps=11, warmup=0, final=0.1)
    assert [lr_factor(i, "linear", s) for i in (0, 5, 10)] == pytest.approx([1.0, 0.55, 0.1])
    assert {lr_factor(i, "constant", s) for i in range(11)} == {1.0}
    assert lr_factor(0, "cosine", Span(steps=1, warmup=0, final=0.01)) == 1.0  # one-step run


def test_every_schedule_is_a_pure_function_that_starts_at_the_peak():
    s = Span(steps=50, warmup=0, final=0.05, decay=10)
    for name, fn in SCHEDULES.items():
        first = [fn(i, s) for i in range(50)]
        assert first == [fn(i, s) for i in range(50)]  # no state
        assert first[0] == pytest.approx(1.0, abs=0.01) and all(0 < v <= 1 for v in first), name
