"""The architecture table (ant.archs) is the one place per-architecture facts live: the config's vocabulary, the
model registry, the recipe's defaults, the paper's LR/batch laws and the plots read it."""

from __future__ import annotations

import subprocess
import sys
import typing

import pytest

from ant import archs, recipe
from ant.archs import ARCHS, TABLE, arch
from ant.config import Arch, RunConfig
from ant.errors import ConfigError


def test_the_config_vocabulary_is_the_table():
    assert typing.get_args(Arch) == ARCHS and ARCHS[:4] == ("gpt", "gptplus", "ngpt", "angpt")
    with pytest.raises(ConfigError, match=r"model.arch: unknown value 'nanogpt'.*allowed: gpt, gptplus, ngpt, angpt"):
        RunConfig.from_dict({"model": {"arch": "nanogpt"}, "train": {"tokens": 10}}).validate()
    with pytest.raises(ConfigError, match="model.arch"):
        arch("nanogpt")
    assert set(archs.PAPER_ORDER) <= set(ARCHS)


def test_models_plots_and_recipe_read_the_table():
    from ant.laws.plotting import ARCH_COLOR, ARCH_LABEL, label
    from ant.models import REGISTRY, build_model
    from ant.models.base import Transformer

    assert tuple(REGISTRY) == ARCHS
    for row in TABLE:
        cls, cfg_cls, fixed = REGISTRY[row.name]
        assert issubclass(cls, Transformer) and cls.config_cls is cfg_cls and fixed == dict(row.fixed)
        assert f"{cls.__module__}:{cls.__name__}" == row.model
        assert f"{cfg_cls.__module__}:{cfg_cls.__name__}" == row.config  # the model's config_cls is the row's
        assert ARCH_LABEL[row.name] == label(row.name) == row.label and ARCH_COLOR[row.name] == row.color
        model = build_model(row.name, "tiny0", vocab_size=64)
        assert bool(model.alpha_stats()) == row.alphas  # the flag the synthetic results and plots read
        d = {"model": {"arch": row.name, "size": "tiny1"}, "train": {"tokens": 100 * 16 * 128}}
        o = recipe.resolve(RunConfig.from_dict(d), vocab_size=256).optim
        assert (o.optimizer, o.weight_decay, o.warmup_frac, o.lr) == (
            row.optimizer, row.weight_decay, row.warmup_frac, row.default_lr)  # fmt: skip


def test_the_recipe_is_the_papers():
    """Table F.2 and Sec. 5.1, written out: the table must not drift from the paper."""
    paper = [arch(a) for a in ("gpt", "gptplus", "ngpt", "angpt")]
    assert [(a.optimizer, a.weight_decay, a.warmup_frac) for a in paper] == [
        ("adamw", 0.1, 0.1), ("adamw", 0.1, 0.1), ("adam", 0.0, 0.0), ("adam", 0.0, 0.0)]  # fmt: skip
    n = 505.78e6
    assert recipe.paper_lr("angpt", n) == 0.065 * n**-0.178 == recipe.paper_lr("ngpt", n)
    assert recipe.paper_lr("gptplus", n) == 42.0 * n**-0.482 == recipe.paper_lr("gpt", n)
    assert recipe.paper_batch("angpt", n) == 1.1e-6 * n**0.984 and recipe.paper_batch("gpt", n) == 9e-5 * n**0.729
    assert [a.alphas for a in paper] == [False, False, True, True]


def test_the_table_and_the_config_load_without_torch():
    code = "import sys, ant.archs, ant.schedules, ant.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_counting_and_checking_options_load_no_torch():
    """The planner counts every run's parameters and checks its model.options (ant.models.sizes, .counts,
    make_config) without torch; torch loads with the first build_model."""
    code = "import sys, ant.models.sizes; print('torch' in sys.modules)\n"
    code += (
        "from ant.models.counts import num_params; print(num_params('angpt', 'tiny3', 256), 'torch' in sys.modules)\n"
    )
    code += "from ant.models import make_config, option_names; make_config('gptplus', 'tiny0', 64, qk_scale_init=2.0)\n"
    code += "print(len(option_names('ngpt')), 'torch' in sys.modules)\n"
    code += "from ant.models import build_model; print(build_model('angpt', 'tiny3', vocab_size=256).num_params())\n"
    code += "print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "295684", "False", "17", "False", "295684", "True"]
