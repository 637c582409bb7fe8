"""RunConfig: parsing, overrides, validation errors naming the field, and stable run ids."""

from __future__ import annotations

import pytest

from ant import recipe
from ant.config import RunConfig
from ant.errors import ConfigError


def _cfg(**sections) -> RunConfig:
    base = {"model": {"arch": "angpt", "size": "tiny1"}, "train": {"tokens": 20000, "batch_size": 4}}
    for k, v in sections.items():
        base.setdefault(k, {}).update(v)
    return RunConfig.from_dict(base)


@pytest.mark.parametrize(
    ("sections", "field"),
    [
        ({"model": {"arch": "llama"}}, "model.arch"),
        ({"model": {"size": "7B"}}, "model.size"),
        ({"data": {"tokenizer": "sentencepiece"}}, "data.tokenizer"),
        ({"data": {"seq_len": 0}}, "data.seq_len"),
        ({"data": {"corpus": "/no/such/corpus.txt"}}, "data.corpus"),
        ({"train": {"tokens": 0}}, "train.tokens"),
        ({"train": {"batch_size": 0}}, "train.batch_size"),
        ({"train": {"device": "tpu"}}, "train.device"),
        ({"train": {"precision": "fp8"}}, "train.precision"),
        ({"optim": {"lr": -1.0}}, "optim.lr"),
        ({"optim": {"optimizer_args": {"momentum": [0.9]}}}, "optim.optimizer_args.momentum"),  # names: at resolve
        ({"optim": {"warmup_frac": 1.5}}, "optim.warmup_frac"),
        ({"optim": {"beta2": 1.0}}, "optim.beta2"),
    ],
)
def test_validate_names_the_field(sections, field):
    with pytest.raises(ConfigError) as e:
        _cfg(**sections).validate()
    assert e.value.field == field
    assert field in str(e.value)


def test_unknown_keys_and_types_are_rejected_with_allowed_values():
    with pytest.raises(ConfigError, match=r"model\.depth: unknown config key \(allowed: arch, size"):
        RunConfig.from_dict({"model": {"depth": 3}})
    with pytest.raises(ConfigError, match="train.batch_size: expected an integer"):
        RunConfig.from_dict({"train": {"batch_size": 2.5}})
    with pytest.raises(ConfigError, match="train.tokens"):
        RunConfig.from_dict({"train": {"tokens": "many"}})
    with pytest.raises(ConfigError, match="exactly one"):
        RunConfig.from_dict({"train": {"tokens": 10, "tokens_per_param": 20}}).validate()


def test_yaml_style_numbers_and_overrides():
    cfg = RunConfig.from_dict({"train": {"tokens": "1e6"}, "optim": {"lr": "3e-3"}})
    assert cfg.train.tokens == 1_000_000 and cfg.optim.lr == pytest.approx(3e-3)
    cfg = cfg.with_overrides(["train.seed=7", "model.arch=gptplus", "model.options.n_layers=3"])
    assert (cfg.train.seed, cfg.model.arch, cfg.model.options) == (7, "gptplus", {"n_layers": 3})
    with pytest.raises(ConfigError, match="train.sede"):
        cfg.with_overrides(["train.sede=1"])
    with pytest.raises(ConfigError, match="key=value"):
        cfg.with_overrides(["train.seed"])


def test_yaml_round_trip(tmp_path):
    cfg = _cfg(optim={"lr": 1e-3})
    p = tmp_path / "c.yaml"
    p.write_text(cfg.to_yaml())
    assert RunConfig.from_yaml(p) == cfg
    with pytest.raises(ConfigError, match="file not found"):
        RunConfig.from_yaml(tmp_path / "missing.yaml")


def test_resolve_applies_the_paper_recipe_per_architecture():
    an = recipe.resolve(_cfg(), vocab_size=300)
    gp = recipe.resolve(_cfg(model={"arch": "gptplus"}), vocab_size=300)
    assert an.model.vocab_size == 320  # padded to a multiple of 64
    assert (an.optim.optimizer, an.optim.weight_decay, an.optim.warmup_frac) == ("adam", 0.0, 0.0)
    assert (gp.optim.optimizer, gp.optim.weight_decay, gp.optim.warmup_frac) == ("adamw", 0.1, 0.1)
    assert an.optim.beta2 == 0.99  # below 100M parameters (App. G)
    assert an.steps == -(-20000 // (4 * an.data.seq_len))
    assert an.train.device == "cpu" and an.train.precision == "32" and an.train.compile == "false"


def test_readme_recipe_beta2_by_size_grad_clip_and_gpu_defaults():
    """README (One run): beta2 0.99 below 100M parameters and 0.95 at or above; grad-clip 1.0 by default;
    bf16-mixed + torch.compile on GPU, fp32 eager on CPU. Resolving needs no GPU (only `auto` asks torch)."""
    for size, beta2 in (("62M", 0.99), ("125M", 0.95), ("0.5B", 0.95)):
        r = recipe.resolve(_cfg(model={"size": size}, data={"seq_len": 64}), vocab_size=50304)
        assert (r.num_params >= 100e6) == (beta2 == 0.95) and r.optim.beta2 == beta2, (size, r.num_params)
    small = recipe.resolve(_cfg(), vocab_size=300)
    assert small.optim.grad_clip == 1.0
    assert recipe.resolve(_cfg(optim={"grad_clip": 0.5}), vocab_size=300).optim.grad_clip == 0.5
    gpu = recipe.resolve(_cfg(train={"device": "cuda"}), vocab_size=300)
    assert (gpu.train.precision, gpu.train.compile) == ("bf16-mixed", "true")
    cpu = recipe.resolve(_cfg(train={"device": "cpu"}), vocab_size=300)
    assert (cpu.train.precision, cpu.train.compile) == ("32", "false")


def test_tokens_per_param_resolves_against_the_counted_parameters():
    cfg = recipe.resolve(
        RunConfig.from_dict({"model": {"size": "tiny1"}, "train": {"tokens_per_param": 20}}), vocab_size=256
    )
    assert cfg.train.tokens == round(20 * cfg.num_params)
    assert cfg.train.tokens_per_param is None


def test_run_id_is_stable_and_ignores_bookkeeping_fields():
    a = recipe.resolve(_cfg(), vocab_size=256)
    b = recipe.resolve(_cfg(train={"ckpt_interval": 3, "num_threads": 1}), vocab_size=256)
    b.out_dir = "elsewhere"
    c = recipe.resolve(_cfg(train={"seed": 1}), vocab_size=256)
    d = recipe.resolve(_cfg(optim={"lr": 3e-3}), vocab_size=256)  # explicit default == implicit default
    assert a.run_id() == b.run_id() == d.run_id() != c.run_id()
    assert a.run_id().startswith("angpt-tiny1-20ktok-b4-lr0.003-s0-")


def test_derived_intervals_line_up_with_logged_steps():
    cfg = recipe.resolve(_cfg(train={"tokens": 400 * 4 * 128, "log_interval": 10}), vocab_size=256)
    assert cfg.steps == 400
    assert (cfg.train.eval_interval, cfg.train.diag_interval) == (20, 80)
    assert cfg.train.ckpt_interval == 100  # 3 checkpoints a run (issue 23), at steps 100, 200, 300


def test_vocabularies_are_written_once():
    """config's Literal types are the one list of architectures and rung names; the models use them."""
    from ant.config import ARCHS, SIZE_NAMES
    from ant.models import REGISTRY, SIZES

    assert tuple(REGISTRY) == ARCHS and tuple(SIZES) == SIZE_NAMES


def test_one_assignment_parser_for_configs_and_grids():
    from ant.config import assign, parse_assignment

    d: dict = {}
    assign(d, *parse_assignment("model.options.lerp=false"))
    assign(d, "train.tokens", "1e6", where="grid.set")
    assert RunConfig.from_dict(d).model.options == {"lerp": False} and d["train"]["tokens"] == "1e6"
    with pytest.raises(ConfigError, match=r"grid\.set\.optim\.bta2: unknown config key \(allowed: lr, "):
        assign(d, "optim.bta2", 0.9, where="grid.set")
    with pytest.raises(ConfigError, match=r"train\.seed: is a value, not a section"):
        assign(d, "train.seed.x", 1)
