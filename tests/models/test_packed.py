"""ant.models.packed: K runs of one shape as one model, with the models' own forward (no second definition).

Each run's slice must compute exactly what that run's own model computes, and what Table 1's literal forward
(ant/models/reference.py) computes from its weights; a single model keeps its shapes and state dict."""

from __future__ import annotations

import pytest
import torch

from ant.models import build_model
from ant.models.packed import load_run_, pack, unpack
from ant.models.reference import FORWARDS

from .conftest import VOCAB
from .reference import perturb_vectors

ARCHS = ["gpt", "gptplus", "ngpt", "angpt"]


def _models(arch: str, k: int = 3, size: str = "tiny1", **options):
    out = []
    for seed in range(k):
        torch.manual_seed(seed)
        m = build_model(arch, size, vocab_size=VOCAB, **options)
        perturb_vectors(m, seed)  # every gain, scale and g off its init and different per run
        out.append(m)
    return out


@pytest.mark.parametrize("arch", ARCHS)
def test_packed_forward_is_each_runs_own_forward(arch, real_batch):
    models = _models(arch)
    packed = pack(models)
    x = torch.stack([real_batch(2, 48, offset=100 * k) for k in range(3)])  # [K, B, T]: each run its own data
    with torch.no_grad():
        got = packed(x)
        want = torch.stack([m(x[k]) for k, m in enumerate(models)])
    assert got.shape == (3, 2, 48, VOCAB)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("arch", "option"), [("gptplus", {}), ("angpt", {}), ("angpt", {"qk_scale_per_head": True})])
def test_packed_runs_match_the_table1_reference(arch, option, real_batch):
    models = _models(arch, size="tiny2", **option)
    packed = pack(models)
    x = torch.stack([real_batch(2, 32, offset=50 * k) for k in range(3)])
    with torch.no_grad():
        got = packed(x)
        for k, m in enumerate(models):
            want = torch.stack([FORWARDS[arch](m, s) for s in x[k]])
            torch.testing.assert_close(got[k], want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("arch", ARCHS)
def test_unpack_gives_each_runs_state_dict_and_load_run_puts_it_back(arch):
    models = _models(arch)
    packed = pack(models)
    for k, m in enumerate(models):
        state = unpack(packed, k)
        assert list(state) == list(m.state_dict())
        assert all(torch.equal(state[n], v) for n, v in m.state_dict().items())
    load_run_(packed, 0, models[2].state_dict())
    assert all(torch.equal(v, models[2].state_dict()[n]) for n, v in unpack(packed, 0).items())
    # the models given to pack() are copied, never aliased
    assert all(p.data_ptr() != q.data_ptr() for p, q in zip(packed.parameters(), models[0].parameters()))


@pytest.mark.parametrize("arch", ["ngpt", "angpt"])
def test_projection_acts_per_run_and_per_row(arch):
    models = _models(arch, k=2)
    packed = pack(models)
    with torch.no_grad():
        for p in packed.parameters():
            p.mul_(3.0)
        for m in models:
            for p in m.parameters():
                p.mul_(3.0)
    packed.project_weights()
    for k, m in enumerate(models):
        m.project_weights()
        for n, v in m.state_dict().items():
            torch.testing.assert_close(unpack(packed, k)[n], v, rtol=1e-6, atol=1e-7)


def test_pack_refuses_models_of_different_shapes():
    with pytest.raises(ValueError, match="one class and config"):
        pack([build_model("angpt", "tiny0", vocab_size=VOCAB), build_model("angpt", "tiny1", vocab_size=VOCAB)])
    with pytest.raises(ValueError, match="one class and config"):
        pack([build_model("angpt", "tiny0", vocab_size=VOCAB), build_model("gptplus", "tiny0", vocab_size=VOCAB)])
