"""Run identity is declared on the config's fields (ant.identity): a field added later with `since=` and a default
leaves every run id of every grid under sweeps/ as it was; an identity field changes the id; the committed study
tables' run ids are still produced by their grids."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import yaml

from ant import identity
from ant.config import ARCHS, SIZE_NAMES, DataConfig, ModelConfig, OptimConfig, RunConfig, TrainConfig
from ant.errors import ConfigError
from ant.identity import meta
from ant.sweep.grid import load_grid

ROOT = Path(__file__).resolve().parents[1]
GRIDS = sorted((ROOT / "sweeps").rglob("*.yaml"))

# Every field hashed whatever its value, as of 2026-12-07 (when identity moved onto the fields). Never add to this
# set: a new field carries since="YYYY-MM-DD" (or identity=False), which is what keeps the committed run ids.
UNCONDITIONAL = {
    "model.arch", "model.size", "model.vocab_size", "model.options",
    "data.corpus", "data.tokenizer", "data.bpe_vocab_size", "data.seq_len", "data.val_tokens",
    "optim.lr", "optim.optimizer", "optim.beta1", "optim.beta2", "optim.eps", "optim.weight_decay",
    "optim.warmup_frac", "optim.schedule", "optim.final_lr_frac", "optim.grad_clip",
    "train.tokens", "train.tokens_per_param", "train.batch_size", "train.seed", "train.device", "train.precision",
    "train.compile", "train.eval_interval", "train.diag_interval", "train.divergence_factor",
    "num_params", "steps",
}  # fmt: skip


def test_a_new_field_must_declare_its_identity():
    """The trap this replaces: a field added without a thought renamed every run folder. Now it fails here."""
    always = set(identity.fields_where(RunConfig, identity.IDENTITY, True))
    since_none = set(identity.fields_where(RunConfig, identity.SINCE, None))
    unconditional = always & since_none & set(identity.fields_where(RunConfig, identity.WHEN, {}))
    new = unconditional - UNCONDITIONAL
    assert not new, f"{sorted(new)}: declare them with ant.identity.meta(default, since='YYYY-MM-DD') or identity=False"
    assert always >= UNCONDITIONAL  # a field that left the identity changes every id it was in


def _expanded_grids(tmp: Path) -> dict[str, list[RunConfig]]:
    """Every grid's configs. Grids that read a tuned file an earlier study part writes read a temporary one here
    (every arch and size at one LR and batch), so that they expand too."""
    for rel in ("results/study/tuned.yaml", "results/study/v2/tuned.yaml", "results/study/v2/predicted_hps.yaml"):
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)  # the committed entries where there are some
        tuned = {a: {s: {"lr": 0.01, "batch_size": 4} for s in SIZE_NAMES} for a in ARCHS}
        have = ROOT / rel
        for arch, by_size in ((yaml.safe_load(have.read_text()) or {}) if have.is_file() else {}).items():
            tuned.setdefault(arch, {}).update(by_size)  # a part not yet run leaves its sizes out of the file
        (tmp / rel).write_text(yaml.safe_dump(tuned))
    out = {}
    for path in GRIDS:
        out[str(path.relative_to(ROOT))] = load_grid(path).expand()
    return out


@pytest.fixture(scope="module")
def grids(tmp_path_factory) -> dict[str, list[RunConfig]]:
    tmp = tmp_path_factory.mktemp("tuned")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp)  # from_study paths are read relative to the working directory first
        return _expanded_grids(tmp)


def _with_added_fields(cfg: RunConfig, **kwargs) -> RunConfig:
    """`cfg` as if every section had gained a field `added_knob` declared with meta(**kwargs); the value is the
    default unless kwargs holds `value`."""
    value = kwargs.pop("value", dataclasses.MISSING)
    sections = {}
    for name, cls in (("model", ModelConfig), ("data", DataConfig), ("optim", OptimConfig), ("train", TrainConfig)):
        plus = dataclasses.make_dataclass(f"{cls.__name__}Plus", [("added_knob", float, meta(**kwargs))], bases=(cls,))
        extra = {} if value is dataclasses.MISSING else {"added_knob": value}
        sections[name] = plus(**dataclasses.asdict(getattr(cfg, name)), **extra)
    return dataclasses.replace(cfg, **sections)


def test_every_grid_expands(grids):
    assert len(grids) == len(GRIDS) and all(grids.values())


def test_a_field_added_with_since_keeps_every_run_id(grids):
    n = 0
    for where, cfgs in grids.items():
        for c in cfgs:
            assert _with_added_fields(c, default=0.5, since="2099-01-01").run_id() == c.run_id(), where
            n += 1
    assert n > 1000  # every run of every grid (1,160 on 2026-12-07)


def test_the_added_field_counts_once_set_or_when_declared_plainly(grids):
    c = grids["sweeps/small.yaml"][0]
    assert _with_added_fields(c, default=0.5, since="2099-01-01", value=0.7).run_id() != c.run_id()
    # without since= the field enters every hash: what test_a_new_field_must_declare_its_identity refuses
    assert _with_added_fields(c, default=0.5).run_id() != c.run_id()
    assert _with_added_fields(c, default=0.5, identity=False, value=0.7).run_id() == c.run_id()


def test_identity_fields_change_the_id_and_others_do_not(grids):
    c = grids["sweeps/small.yaml"][0]
    same = ["train.num_threads=2", "train.log_interval=3", "train.loggers=[csv,tensorboard]", "data.num_proc=4",
            "out_dir=/elsewhere", "train.micro_batch_size=1", "optim.decay_frac=0.5"]  # fmt: skip
    for s in same:
        assert c.with_overrides([s]).run_id() == c.run_id(), s
    for s in ["train.seed=7", "optim.lr=0.5", "optim.beta1=0.8", "data.seq_len=64", "model.options={n_layers: 1}",
              "optim.schedule=wsd", "data.val_tokens=9999"]:  # fmt: skip
        assert c.with_overrides([s]).run_id() != c.run_id(), s
    wsd = c.with_overrides(["optim.schedule=wsd"])
    assert wsd.with_overrides(["optim.decay_frac=0.5"]).run_id() != wsd.run_id()  # when={"optim.schedule": "wsd"}


def test_meta_refuses_a_field_both_outside_and_inside_the_identity():
    with pytest.raises(ValueError, match="either"):
        meta(0, identity=False, since="2099-01-01")


def test_committed_study_tables_still_match_their_grids(grids):
    """Every run id in a committed runs.parquet is one that a grid under sweeps/ produces today, or an edge
    extension of one, as its committed extension log's config resolves today."""
    import json

    from ant.sweep.extend import logged_config

    ids = {c.run_id() for cfgs in grids.values() for c in cfgs}
    for log in sorted((ROOT / "results" / "study").rglob("extensions-*.json")):
        ids |= {logged_config(e).run_id() for e in json.loads(log.read_text())}
    tables = sorted((ROOT / "results" / "study").rglob("runs.parquet"))
    if not tables:
        pytest.skip("no committed run tables in this checkout")
    for t in tables:
        got = pd.read_parquet(t, columns=["run_id"])["run_id"]
        missing = sorted(set(got) - ids)
        assert not missing, f"{t}: {len(missing)} run ids no grid produces, e.g. {missing[:3]}"


def test_family_free_fields_are_the_budget_and_bookkeeping():
    from ant.train.branches import FREE_FIELDS

    assert set(FREE_FIELDS) == {"out_dir", "steps", "train.tokens", "train.tokens_per_param",
                                "train.ckpt_interval", "train.num_threads", "data.cache_dir"}  # fmt: skip


def test_bad_field_name_in_override_still_names_it():
    with pytest.raises(ConfigError, match="train.no_such"):
        RunConfig().with_overrides(["train.no_such=1"])
