"""Analytic counts (ant.models.counts) equal the built model's, exactly, for every arch x size x option.

The models are built on the meta device (no memory, no init), so the whole ladder, paper sizes included, is
cheap. Every option of every architecture is tried with a value other than its default: the ones that change the
parameter count (shape overrides, mlp_mult, angpt's lerp and qk_scale_per_head) must be followed by the formula,
and the others must leave it alone."""

from __future__ import annotations

import dataclasses
import typing

import pytest

from ant.errors import ConfigError
from ant.models import ARCHS, PAPER_SIZES, REGISTRY, SIZES, build_model, option_names
from ant.models.counts import counts, flops_per_token, num_params
from ant.models.sizes import PAPER_VOCAB

SEQ_LENS = (128, 2048)


def _other_value(arch: str, size: str, name: str):
    """A valid non-default value of option `name`."""
    spec = SIZES[size]
    if name == "n_layers":
        return spec.n_layers + 1
    if name == "d_model":
        return 2 * spec.d_model
    if name == "n_heads":
        return 2 * spec.n_heads  # head dim halves: still even rotated dims on every rung
    if name == "mlp_mult":
        return 2
    if name == "rope_fraction":
        return 1.0
    _, cfg_cls, _ = REGISTRY[arch]
    default = next(f.default for f in dataclasses.fields(cfg_cls) if f.name == name)
    hint = typing.get_type_hints(cfg_cls)[name]
    if hint is bool:
        return not default
    return 0.5 * default if isinstance(default, float) else 0.7  # None defaults are derived floats


def _cases():
    for arch in ARCHS:
        for size in SIZES:
            vocab = PAPER_VOCAB if size in PAPER_SIZES else 256
            yield arch, size, vocab, {}
            for name in option_names(arch):
                yield arch, size, vocab, {name: _other_value(arch, size, name)}


CASES = list(_cases())


def test_cases_cover_every_option_and_the_paper_sizes():
    assert {s for _, s, _, _ in CASES} == set(SIZES) >= set(PAPER_SIZES)
    for arch in ARCHS:
        tried = {n for a, _, _, o in CASES if a == arch for n in o}
        assert tried == set(option_names(arch))
    changing = {(a, next(iter(o))) for a, s, v, o in CASES if o and s == "tiny1"
                if num_params(a, s, v, o) != num_params(a, s, v)}  # fmt: skip
    # the options that change N are exactly the shape ones and angpt's two switches
    shape = {"n_layers", "d_model", "n_heads", "mlp_mult"}
    assert {n for a, n in changing if a != "angpt"} == shape - {"n_heads"}
    assert {n for a, n in changing if a == "angpt"} == (shape - {"n_heads"}) | {"lerp", "qk_scale_per_head"}


@pytest.mark.parametrize("arch", ARCHS)
def test_counts_equal_the_built_model(arch):
    for a, size, vocab, options in CASES:
        if a != arch:
            continue
        model = build_model(arch, size, vocab_size=vocab, device="meta", **options)
        c = counts(arch, size, vocab, options)
        where = f"{arch} {size} {options}"
        assert c.num_params == model.num_params(), where
        assert c.matmul_params == model.matmul_params(), where
        for T in SEQ_LENS:
            assert c.flops_per_token(T) == model.flops_per_token(T), where
            assert flops_per_token(arch, size, vocab, T, options) == model.flops_per_token(T), where


def test_table_f1_closed_form_for_angpt():
    """Table F.1: anGPT has L * 16 d^2 + 2 V d + L (2d + 1) + V parameters."""
    for size in PAPER_SIZES:
        s = SIZES[size]
        d, L, V = s.d_model, s.n_layers, PAPER_VOCAB
        assert num_params("angpt", size) == L * 16 * d * d + 2 * V * d + L * (2 * d + 1) + V


def test_bad_options_fail_as_build_model_does():
    with pytest.raises(ConfigError, match="model.options.lerp_corection"):
        num_params("angpt", "tiny1", 256, {"lerp_corection": False})
    with pytest.raises(ConfigError, match="model.options.n_heads"):
        num_params("gpt", "tiny1", 256, {"n_heads": 5})
    with pytest.raises(ConfigError, match="model.arch"):
        num_params("bert", "tiny1", 256)
    with pytest.raises(ConfigError, match="model.size"):
        num_params("gpt", "huge", 256)
    # a cached shape does not hide an error for a value of another type (1 vs True)
    assert num_params("angpt", "tiny1", 256, {"lerp": True}) == num_params("angpt", "tiny1", 256)
    with pytest.raises(ConfigError, match="model.options.lerp"):
        num_params("angpt", "tiny1", 256, {"lerp": 1})
