"""Optimizers by name (ant.optimizers): the recipe's Adam/AdamW, any torch.optim class with its arguments, bad
names and arguments refused naming the field; set_lr; and what only Adam(W) supports (compiled, packed)."""

from __future__ import annotations

import pytest
import torch

from ant import recipe
from ant.config import RunConfig
from ant.errors import ConfigError
from ant.models import build_model
from ant.optimizers import build_optimizer, current_lr, set_lr
from ant.schedules import lr_at, warmup_steps
from ant.train.compiled import use_compile
from ant.train.pack_rules import packable


def resolved(arch: str, **optim) -> RunConfig:
    d = {"model": {"arch": arch, "size": "tiny1"}, "optim": optim, "train": {"tokens": 100 * 16 * 128}}
    return recipe.resolve(RunConfig.from_dict(d), vocab_size=256)


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


def test_a_torch_optimizer_by_name_with_its_arguments_trains():
    cfg = resolved("gptplus", optimizer="SGD", optimizer_args={"momentum": 0.9, "nesterov": True}, lr=0.1)
    assert cfg.optim.weight_decay == 0.1  # the architecture's recipe still fills what is left open
    model = build_model("gptplus", "tiny1", vocab_size=cfg.model.vocab_size)
    opt = build_optimizer(model, cfg.optim)
    assert type(opt) is torch.optim.SGD and opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"]
    assert {g["weight_decay"] for g in opt.param_groups} == {0.0, 0.1}  # matrices only, as with AdamW
    before = [p.detach().clone() for p in model.parameters()]
    set_lr(opt, 50, cfg.optim, cfg.steps)
    assert current_lr(opt) == lr_at(50, cfg.optim, cfg.steps)  # what the optimizer holds: the schedule's LR
    x = torch.randint(0, cfg.model.vocab_size, (2, 9))
    torch.nn.functional.cross_entropy(model(x[:, :-1]).flatten(0, 1), x[:, 1:].flatten()).backward()
    opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    # only Adam(W) has a compiled update and a packed form: SGD trains eager and alone
    long_cpu = recipe.resolve(cfg, vocab_size=256)
    long_cpu.train.cpu_compile = "true"
    assert use_compile(long_cpu) is False
    assert "optim.optimizer=SGD" in packable(cfg)
    assert RunConfig().optim.optimizer_args == {}  # the default, left out of run ids (scripts/run_ids.py)


def test_bad_optimizer_names_and_arguments_name_the_field():
    with pytest.raises(
        ConfigError, match=r"optim.optimizer: unknown optimizer 'sgd'.*allowed: auto, adam, adamw, .*SGD"
    ):
        resolved("angpt", optimizer="sgd")
    with pytest.raises(ConfigError, match=r"optim.optimizer_args.momentun: not an argument of torch.optim.SGD"):
        resolved("angpt", optimizer="SGD", optimizer_args={"momentun": 0.9})
    with pytest.raises(ConfigError, match=r"optim.optimizer_args: adam takes its arguments from the optim fields"):
        resolved("angpt", optimizer="adam", optimizer_args={"amsgrad": True})
    with pytest.raises(ConfigError, match=r"optim.optimizer_args.m: expected a finite number"):
        resolved("angpt", optimizer="SGD", optimizer_args={"m": [1, 2]})
    with pytest.raises(ConfigError, match=r"optim.optimizer: unknown optimizer 'Optimizer'"):
        resolved("angpt", optimizer="Optimizer")  # the base class is not an optimizer
