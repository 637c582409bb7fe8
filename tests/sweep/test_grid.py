"""Grid files -> resolved runs: products, rules, per-arch values, dedupe, and one clear error per bad field."""

from __future__ import annotations

import math

import pytest
import yaml

from ant.errors import ConfigError
from ant.recipe import paper_batch, paper_lr, porian_batch, porian_lr
from ant.sweep.grid import Grid

BASE = {"data": {"tokenizer": "bytes", "seq_len": 64}}


def grid(**axes) -> Grid:
    g = {"arch": ["gptplus", "angpt"], "size": ["tiny1", "tiny2"], "tokens": [1e5], **axes}
    return Grid.from_dict({"name": "t", "base": BASE, "grid": g})


def test_product_size_order_and_stable_ids():
    runs = grid(seed=[0, 1], lr=[1e-3, 3e-3]).expand()
    assert len(runs) == 2 * 2 * 2 * 2
    assert all(r.is_resolved for r in runs)
    assert [r.model.arch for r in runs[:8]] == ["gptplus"] * 8
    ids = [r.run_id() for r in runs]
    assert len(set(ids)) == len(ids)
    assert ids == [r.run_id() for r in grid(seed=[0, 1], lr=[1e-3, 3e-3]).expand()]  # stable across expansions
    assert {r.train.tokens for r in runs} == {100000}


def test_tokens_per_param_and_union_dedupes():
    g = Grid.from_dict({"base": BASE, "grids": [
        {"arch": "angpt", "size": "tiny1", "tokens_per_param": [1, 2]},
        {"arch": "angpt", "size": "tiny1", "tokens_per_param": [2, 4]},  # 2 appears twice -> one run
    ]})  # fmt: skip
    runs = g.expand()
    assert len(runs) == 3
    n = runs[0].num_params
    assert sorted(r.train.tokens for r in runs) == [n, 2 * n, 4 * n]


def test_rules_match_the_papers_numbers():
    # paper-notes §5.1 evaluated fits: 0.5B anGPT BS~403 seq, LR~1.8e-3; GPT+ BS~199, LR~2.7e-3
    assert paper_batch("angpt", 505.78e6) == pytest.approx(403, rel=0.03)
    assert paper_lr("angpt", 505.78e6) == pytest.approx(1.8e-3, rel=0.05)
    assert paper_batch("gptplus", 505.73e6) == pytest.approx(199, rel=0.03)
    assert paper_lr("gptplus", 505.73e6) == pytest.approx(2.7e-3, rel=0.05)
    # Porian at its reference size: eta* = 0.0047, B* = 160 sequences
    assert porian_lr("gpt", 108e6) == pytest.approx(0.0047)
    assert porian_batch("gpt", 108e6) == pytest.approx(160)


def test_rule_values_per_arch_with_clamps():
    runs = grid(lr={"gptplus": [1e-3], "angpt": {"rule": "paper"}},
                batch_size={"rule": "porian", "min": 4, "max": 64}).expand()  # fmt: skip
    for r in runs:
        want_lr = 1e-3 if r.model.arch == "gptplus" else float(f"{paper_lr('angpt', r.num_params):.3g}")
        assert r.optim.lr == pytest.approx(want_lr)
        # Porian counts sequences of 2048 tokens; at seq_len 64 that is 32x more sequences, rounded to 2^k
        raw = porian_batch(r.model.arch, r.num_params) * 2048 / 64
        want = min(max(2 ** round(math.log2(max(raw, 1))), 4), 64)
        assert r.train.batch_size == want


def test_set_axis_and_base_overrides():
    runs = grid(set={"optim.beta2": [0.95, 0.99]}).expand()
    assert sorted({r.optim.beta2 for r in runs}) == [0.95, 0.99]
    assert all(r.data.seq_len == 64 for r in runs)


def test_from_study(tmp_path):
    best = tmp_path / "best.yaml"
    best.write_text(yaml.safe_dump({"angpt": {"tiny1": {"lr": 0.0042, "batch_size": 6}}}))
    g = Grid.from_dict({"base": BASE, "grid": {"arch": "angpt", "size": "tiny1", "tokens": 1e4,
                                               "lr": {"from_study": str(best)},
                                               "batch_size": {"from_study": str(best)}}})  # fmt: skip
    run = g.expand()[0]
    assert run.optim.lr == pytest.approx(0.0042) and run.train.batch_size == 6
    g2 = Grid.from_dict({"base": BASE, "grid": {"arch": "angpt", "size": "tiny2", "tokens": 1e4,
                                                "lr": {"from_study": str(best)}}})  # fmt: skip
    with pytest.raises(ConfigError, match="no lr for angpt/tiny2"):
        g2.expand()


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"grid": {"arch": "angpt", "size": "tiny1", "tokens": 1, "lrs": [1]}}, "grid.lrs"),
        ({"grid": {"arch": "bert", "size": "tiny1", "tokens": 1}}, "grid.arch"),
        ({"grid": {"arch": "angpt", "size": "tiny1"}}, "grid.tokens"),
        ({"grid": {"arch": "angpt", "size": "tiny1", "tokens": 1, "tokens_per_param": 2}}, "grid.tokens"),
        ({"grid": {"arch": "angpt", "size": "huge", "tokens": 1}}, "model.size"),
        ({"grid": {"arch": "angpt", "size": "tiny1", "tokens": "many"}}, "grid.tokens"),
        ({"grid": {"arch": "angpt", "size": "tiny1", "tokens": 1, "lr": {"rule": "magic"}}}, "grid.lr.rule"),
        ({"grid": {"arch": "angpt", "size": "tiny1", "tokens": 1, "lr": {"gptplus": [1e-3]}}}, "grid.lr.angpt"),
        ({"grid": {"arch": "angpt", "size": "tiny1", "tokens": 1, "batch_size": [0]}}, "grid.batch_size"),
        ({"grid": {"arch": "angpt", "size": "tiny1", "tokens": 1}, "base": {"optim": {"lrr": 1}}}, "optim.lrr"),
        ({"grid": {"arch": "angpt", "size": "tiny1", "tokens": 1}, "executors": {}}, "executors"),
        ({}, "grid"),
    ],
)
def test_validation_errors_name_the_field(doc, field):
    with pytest.raises(ConfigError) as e:
        Grid.from_dict(doc).expand(vocab_size=256)
    assert e.value.field == field


def test_executor_settings_validation():
    from ant.sweep.executors import ExecutorSettings

    assert ExecutorSettings.from_dict({"name": "slurm", "timeout_min": 5}).timeout_min == 5
    with pytest.raises(ConfigError) as e:
        ExecutorSettings.from_dict({"name": "kubernetes"})
    assert e.value.field == "executor.name"
    with pytest.raises(ConfigError) as e:
        ExecutorSettings.from_dict({"partitions": "gpu"})
    assert e.value.field == "executor.partitions"
