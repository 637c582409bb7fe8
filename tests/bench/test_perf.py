"""ant.perf: the peak-FLOPs table, MFU, and the op/kernel counters the fused-scalar check relies on."""

from __future__ import annotations

import pytest
import torch

from ant.perf import (
    count_compiled_kernels,
    count_eager_ops,
    measure_matmul_peak,
    mfu,
    peak_flops,
    peak_flops_by_name,
)


@pytest.mark.parametrize(
    "name, expected",
    [
        ("NVIDIA H100 80GB HBM3", 989e12),  # SXM: dense bf16, not the 1979e12 sparsity figure
        ("NVIDIA H100 PCIe", 756e12),
        ("NVIDIA H100 NVL", 835e12),
        ("NVIDIA H200", 989e12),
        ("NVIDIA GH200 480GB", 989e12),
        ("NVIDIA A100-SXM4-40GB", 312e12),
        ("NVIDIA L40S", 362e12),
        ("NVIDIA A10G", 70e12),
        ("NVIDIA A10", 125e12),
        ("NVIDIA L4", 121e12),
        ("Some Future Card", None),
    ],
)
def test_peak_table_prefers_the_specific_name(name, expected):
    assert peak_flops_by_name(name) == expected


def test_no_peak_and_no_mfu_on_cpu():
    assert peak_flops("cpu") is None
    assert mfu(1e9, 1e4, None) is None
    # 6 GFLOP/token at 50k tokens/s on a 989 TFLOP/s card: 30.3 %
    assert mfu(6e9, 5e4, 989e12) == pytest.approx(6e9 * 5e4 / 989e12)


def test_measured_matmul_peak_is_the_rate_of_a_timed_gemm(monkeypatch):
    # The measured CPU peak is the denominator of every CPU MFU the suite prints. Timing it against a second
    # timing on a shared 2-core machine only tests the machine's load; instead give every product a known
    # duration on a fake clock: the peak must then be exactly 2 n^3 FLOPs per 1 ms.
    import ant.perf

    clock = {"t": 0.0}
    real_mm = torch.mm

    def timed_mm(*args, **kwargs):
        clock["t"] += 1e-3
        return real_mm(*args, **kwargs)

    monkeypatch.setattr(ant.perf.time, "perf_counter", lambda: clock["t"])
    monkeypatch.setattr(ant.perf.torch, "mm", timed_mm)
    n = 64
    assert measure_matmul_peak("cpu", n=n, seconds=0.03) == pytest.approx(2 * n**3 / 1e-3, rel=1e-9)
    monkeypatch.undo()
    real = measure_matmul_peak("cpu", n=256, seconds=0.15)
    assert 1e8 < real < 1e13  # between a slow 2005 core and a whole modern socket


def test_eager_counter_sees_every_scalar_multiply_but_no_views():
    x = torch.randn(4, 8)

    def fn():
        y = (x * 2.0).view(8, 4).t()  # one pointwise op; view and t launch nothing
        z = y * 3.0 + 1.0  # two more pointwise ops
        return z.sum()  # one reduction

    assert count_eager_ops(fn) == {"ops": 4, "pointwise": 3}


def test_compiled_counter_shows_scalar_multiplies_fused_into_one_kernel():
    x = torch.randn(64, 32)

    def fn(x):
        return torch.nn.functional.normalize(x * 0.5, dim=-1) * 3.74 + 1.0

    torch._dynamo.reset()
    with count_compiled_kernels() as c:
        out = torch.compile(fn)(x)
    torch.testing.assert_close(out, fn(x))
    assert c["graphs"] == 1 and c["graph_breaks"] == 0 and c["extern_calls"] == 0
    # eager: mul, norm (several ops), div, mul, add; inductor: one kernel (reduction + pointwise epilogue)
    assert c["kernels"] == 1
    assert count_eager_ops(lambda: fn(x))["pointwise"] >= 3


def test_compiled_projection_equals_the_models_own_projection():
    from ant.models import build_model
    from ant.perf import compiled_projection

    for arch in ("angpt", "ngpt"):  # clip (rows <= 1) and renormalisation (rows = 1)
        torch.manual_seed(0)
        model = build_model(arch, "tiny1", vocab_size=64)
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(torch.rand_like(p) * 2)  # rows of every length, some inside the unit ball
        start = {k: v.clone() for k, v in model.state_dict().items()}
        model.project_weights()
        expected = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(start)
        compiled_projection(model)()
        for k, v in model.state_dict().items():
            torch.testing.assert_close(v, expected[k], rtol=0, atol=1e-6, msg=f"{arch} {k}")
    gpt = build_model("gptplus", "tiny1", vocab_size=64)
    compiled_projection(gpt)()  # no constraints: nothing to compile, nothing changes
