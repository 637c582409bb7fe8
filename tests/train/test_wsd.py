"""Warmup-stable-decay and cool-down branches (issue 11, C6): the schedule's invariants, and a branch taken from a
trunk's checkpoint is bit-identical to the same run started alone; the trunk is unchanged by keeping branch
checkpoints; a resume from any other run's checkpoint is still refused."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest
import torch

from ant import recipe
from ant.config import RunConfig
from ant.errors import ConfigError
from ant.schedules import Span, decay_start, decay_steps, lr_at, lr_factor, warmup_steps
from ant.sweep.families import train_branch, train_family
from ant.train import io, train
from ant.train.branches import (
    BRANCH_FILE,
    KEEP_DIR,
    branch_steps,
    check_family,
    find_families,
    make_family,
    seed_branch,
)
from tests.train.conftest import tiny_cfg

EXACT = ["step", "tokens", "train_loss", "val_loss", "lr", "grad_norm"]  # all but the throughput
SEQ_TOKENS = 8 * 64  # tokens per step of the tiny runs (batch 8 x 64)


def wsd(arch: str = "gptplus", **optim) -> RunConfig:
    d = {"model": {"arch": arch, "size": "tiny1"}, "optim": {"lr": 1e-3, "schedule": "wsd", **optim},
         "train": {"tokens": 100 * 16 * 128}}  # fmt: skip
    return RunConfig.from_dict(d)


# ---------------------------------------------------------------------- the schedule
@pytest.mark.parametrize("shape", ["1-sqrt", "linear"])
def test_wsd_family_shares_its_prefix_and_decays_to_the_floor(shape):
    family = make_family(wsd(decay_shape=shape), [100 * 2048, 250 * 2048, 1000 * 2048], vocab_size=256)
    assert [c.steps for c in family] == [1000, 250, 100]  # trunk first
    assert {c.optim.warmup_steps for c in family} == {10}  # 10 % of the smallest budget, in steps
    assert {c.train.eval_interval for c in family} == {family[0].train.eval_interval}  # the trunk's
    for c in family:
        o, n = c.optim, c.steps
        lrs = [lr_at(s, o, n) for s in range(n)]
        k, start = decay_steps(o, n), decay_start(o, n)
        assert k == round(0.2 * n) and start == n - k
        assert lrs[:10] == pytest.approx([1e-3 * (s + 1) / 10 for s in range(10)])  # warm-up
        assert set(lrs[10:start]) == {1e-3}  # stable at the peak
        assert all(x < 1e-3 for x in lrs[start:]) and len(lrs[start:]) == k  # exactly k steps below the peak
        assert all(a > b for a, b in zip(lrs[start:], lrs[start + 1 :]))  # strictly decreasing
        assert lrs[-1] == pytest.approx(0.01 * 1e-3)  # the last step at final_lr_frac x peak
    # every member has the trunk's LR at every step before its own decay starts
    trunk = family[0]
    for c in family[1:]:
        start = decay_start(c.optim, c.steps)
        assert [lr_at(s, c.optim, c.steps) for s in range(start)] == [
            lr_at(s, trunk.optim, trunk.steps) for s in range(start)
        ]
    assert list(branch_steps(family).values()) == [200, 80]


def test_decay_shapes_at_half_way():
    f = dict(steps=110, warmup=0, final=0.0, decay=10)  # decay steps 100..109
    assert lr_factor(99, "wsd", Span(**f)) == 1.0
    assert lr_factor(104, "wsd", Span(**f, decay_shape="linear")) == pytest.approx(0.5)  # q = 5/10
    assert lr_factor(104, "wsd", Span(**f, decay_shape="1-sqrt")) == pytest.approx(1 - math.sqrt(0.5))


def test_wsd_resolution_and_bad_values():
    alone = recipe.resolve(wsd(), vocab_size=256)  # alone: warm-up from its own steps, fixed in steps
    assert alone.optim.warmup_steps == 10 and warmup_steps(alone.optim, alone.steps) == 10
    assert recipe.resolve(wsd(arch="angpt"), vocab_size=256).optim.warmup_steps == 0  # anGPT's recipe: no warm-up
    with pytest.raises(ConfigError, match=r"optim.warmup_steps: 90 warm-up steps .* decay starts at step 80"):
        recipe.resolve(wsd(warmup_steps=90), vocab_size=256)
    with pytest.raises(ConfigError, match="optim.decay_shape: .*allowed: 1-sqrt, linear"):
        recipe.resolve(wsd(decay_shape="cosine"), vocab_size=256)
    with pytest.raises(ConfigError, match="optim.decay_frac"):
        recipe.resolve(wsd(decay_frac=0), vocab_size=256)
    # the wsd fields are not part of other schedules' run ids: ids from before them stay the same
    cos = RunConfig.from_dict({"model": {"size": "tiny1"}, "train": {"tokens": 204800}})
    cos2 = RunConfig.from_dict({"model": {"size": "tiny1"}, "optim": {"decay_frac": 0.5}, "train": {"tokens": 204800}})
    assert recipe.resolve(cos, vocab_size=256).run_id() == recipe.resolve(cos2, vocab_size=256).run_id()
    with pytest.raises(ConfigError, match="optim.schedule"):
        make_family(cos, [1e5, 2e5])


def test_families_are_found_and_mixed_configs_refused():
    family = make_family(wsd(), [100 * 2048, 300 * 2048], vocab_size=256)
    other = make_family(wsd(lr=2e-3), [100 * 2048], vocab_size=256)
    cos = recipe.resolve(RunConfig.from_dict({"model": {"size": "tiny1"}, "train": {"tokens": 204800}}), vocab_size=256)
    units = find_families([family[1], cos, other[0], family[0]])
    assert [[c.run_id() for c in u] for u in units] == [
        [family[0].run_id(), family[1].run_id()],  # trunk first
        [cos.run_id()],
        [other[0].run_id()],
    ]
    with pytest.raises(ConfigError, match=r"^optim.lr: .* differs from .* in optim.lr"):
        check_family([family[0], other[0]])


# ---------------------------------------------------------------------- branches on the real corpus
SHORT, LONG = 20, 40  # steps: the branch leaves the trunk at step 16 (decay 4), the trunk decays over 8


def family_cfgs(out) -> list[RunConfig]:
    base = tiny_cfg(out, model={"arch": "gptplus"}, optim={"schedule": "wsd"}, data={"val_tokens": 4096},
                    train={"eval_interval": 0, "diag_interval": 0, "ckpt_interval": 19})  # fmt: skip
    return make_family(base, [LONG * SEQ_TOKENS, SHORT * SEQ_TOKENS])


def moved(cfg: RunConfig, out) -> RunConfig:
    d = cfg.to_dict()
    d["out_dir"] = str(out)
    return RunConfig.from_dict(d)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A family trained as a family, and both of its runs trained alone (the short one without any trunk
    checkpoint to start from): 104 tiny steps in all, with a 4k-token validation set (the default 131k would
    cost more than the training)."""
    root = tmp_path_factory.mktemp("wsd")
    fam = family_cfgs(root / "family")
    trunk, branch = train_family(fam, progress=False)
    alone_trunk = train(moved(fam[0], root / "alone"), progress=False)
    # no kept checkpoint in the alone trunk: the short run trains from step 0, as if started for its budget alone
    alone_short = train_branch(moved(fam[1], root / "alone"), moved(fam[0], root / "alone"), progress=False)
    return fam, trunk, branch, alone_trunk, alone_short


def assert_same_run(a, b) -> None:
    ma, mb = (pd.read_parquet(r.run_dir / "metrics.parquet") for r in (a, b))
    pd.testing.assert_frame_equal(ma.drop(columns="tokens_per_s"), mb.drop(columns="tokens_per_s"), check_exact=True)
    for key in ("status", "final_val_loss", "final_train_loss", "steps", "tokens", "flops"):
        assert a.summary[key] == b.summary[key], key  # bit for bit, not approx


def weights_at(run, step: int) -> dict[str, torch.Tensor]:
    ckpt = torch.load(io.ckpt_path(run.run_dir / "checkpoints", step), map_location="cpu", weights_only=True)
    flat = dict(ckpt["state_dict"])
    for i, s in ckpt["optimizer_states"][0]["state"].items():
        flat.update({f"adam.{i}.{k}": v for k, v in s.items()})
    return flat


def test_branch_is_bit_identical_to_the_run_started_alone(runs):
    fam, trunk, branch, _, alone = runs
    assert branch.run_dir.name == alone.run_dir.name == fam[1].run_id()  # the very same config
    assert branch.summary["status"] == "completed" and branch.summary["steps"] == SHORT
    assert_same_run(branch, alone)
    a, b = weights_at(branch, 19), weights_at(alone, 19)  # model and Adam state after step 19 of 20
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the branch trained only its decay; the run alone all of it
    assert (branch.summary["branched_from"], branch.summary["branch_step"]) == (trunk.run_dir.name, 16)
    assert branch.summary["resumed_from_step"] == 16
    assert branch.summary["trained_steps"] == 4 and branch.summary["trained_tokens"] == 4 * SEQ_TOKENS
    assert alone.summary["branched_from"] is None and alone.summary["trained_steps"] == SHORT
    assert io.read_json(branch.run_dir / BRANCH_FILE)["trunk_run_id"] == trunk.run_dir.name
    # the decay made a difference: the branch's final loss is not the trunk's loss at the same step
    mt = pd.read_parquet(trunk.run_dir / "metrics.parquet").set_index("step")
    mb = pd.read_parquet(branch.run_dir / "metrics.parquet").set_index("step")
    assert mb.loc[20, "train_loss"] != mt.loc[20, "train_loss"]
    assert mb.loc[:16, EXACT[1:]].equals(mt.loc[:16, EXACT[1:]])  # and up to step 16 they are one run


def test_trunk_is_unchanged_by_keeping_branch_checkpoints(runs):
    _, trunk, _, alone_trunk, _ = runs
    assert_same_run(trunk, alone_trunk)
    assert trunk.summary["trained_steps"] == LONG and trunk.summary["branched_from"] is None
    kept = trunk.run_dir / "checkpoints" / KEEP_DIR
    assert [s for s, p in io.list_checkpoints(kept) if io.is_valid(p)] == [16]
    assert not (alone_trunk.run_dir / "checkpoints" / KEEP_DIR).exists()
    assert [s for s, _ in io.list_checkpoints(trunk.run_dir / "checkpoints")] == [38, 19]  # pruning unchanged


def test_resume_from_another_runs_checkpoint_is_refused(runs, tmp_path):
    from ant.data import load_tokens

    fam, trunk, *_ = runs
    kept = io.ckpt_path(trunk.run_dir / "checkpoints" / KEEP_DIR, 16)

    def plant(cfg: RunConfig, branch_json: bool) -> None:
        d = cfg.run_dir() / "checkpoints"
        d.mkdir(parents=True)
        shutil.copyfile(kept, io.ckpt_path(d, 16))
        io.write_checksum(io.ckpt_path(d, 16))
        if branch_json:
            io.write_json(cfg.run_dir() / BRANCH_FILE, {"trunk_run_id": trunk.run_dir.name, "step": 16})

    # a config differing in the LR (a "branch" of a trunk it does not belong to): refused when seeding ...
    d = fam[1].to_dict()
    d["optim"]["lr"], d["out_dir"] = 2e-2, str(tmp_path / "lr")
    other = RunConfig.from_dict(d)
    with pytest.raises(ConfigError, match=r"^optim.lr: "):
        seed_branch(other, fam[0])
    # ... and when its checkpoint is put in place by hand, even with a branch.json naming the trunk
    plant(other, branch_json=True)
    with pytest.raises(ConfigError, match=r"^optim.lr: .* written by run .* which differs in optim.lr"):
        train(other, progress=False)
    assert not (other.run_dir() / "summary.json").exists()  # refused before anything was trained or written
    # the same budget-only difference without an explicit branch.json is refused too
    same = moved(fam[1], tmp_path / "nobranch")
    plant(same, branch_json=False)
    with pytest.raises(ConfigError, match=r"^train.tokens: .* is not this folder's trunk"):
        train(same, progress=False)
    # a trunk shorter than its branch, and a trunk trained on other token data
    with pytest.raises(ConfigError, match=r"^train.tokens: the trunk .* is shorter"):
        seed_branch(moved(fam[0], tmp_path / "x"), moved(fam[1], trunk.run_dir.parent))
    copy = tmp_path / "copy"
    shutil.copytree(trunk.run_dir, copy / trunk.run_dir.name)
    summary = io.read_json(copy / trunk.run_dir.name / "summary.json")
    io.write_json(copy / trunk.run_dir.name / "summary.json", {**summary, "data_fingerprint": "0" * 64})
    with pytest.raises(ConfigError, match=r"^data.corpus: the trunk .* token data 000000000000"):
        seed_branch(moved(fam[1], tmp_path / "y"), moved(fam[0], copy), data=load_tokens(fam[1].data, progress=False))
