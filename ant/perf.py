"""Peak FLOP/s per device and model-FLOPs utilisation (MFU).

MFU = achieved training FLOP/s / the device's dense bf16 tensor-core peak. The peak is always the DENSE figure
(H100 SXM 989 TFLOP/s, not the 1979 "with sparsity" datasheet number; anchors A11), and always bf16, whatever
precision the run used, so that MFU values are comparable across runs. CPUs have no meaningful peak here: None.

    from ant.perf import peak_flops, mfu
    peak = peak_flops(torch.device("cuda"))          # 989e12 on an H100 SXM, None on CPU or an unknown card
    mfu(model.flops_per_token(seq_len), tokens_per_s, peak)   # None when peak is None
"""

from __future__ import annotations

import contextlib
import re
import statistics
import time
from collections.abc import Callable, Iterator
from typing import Any
from unittest import mock

import torch

from ant.models.constraints import project_

# (substring of torch.cuda.get_device_name(), dense bf16 FLOP/s). First match wins, so the more specific
# names come first (an "H100 PCIe" must not match the SXM entry). Sources: NVIDIA datasheets, dense figures.
PEAK_BF16_FLOPS: list[tuple[str, float]] = [
    ("GH200", 989e12),
    ("H200", 989e12),
    ("H100 PCIe", 756e12),
    ("H100 NVL", 835e12),
    ("H100", 989e12),  # SXM ("NVIDIA H100 80GB HBM3")
    ("H800", 989e12),
    ("B200", 2250e12),
    ("A100", 312e12),
    ("A800", 312e12),
    ("L40S", 362e12),
    ("L40", 181e12),
    ("L4", 121e12),
    ("A10G", 70e12),
    ("A10", 125e12),
    ("A30", 165e12),
    ("A40", 150e12),
    ("RTX 6000 Ada", 364e12),
    ("RTX 4090", 165e12),
    ("RTX 3090", 71e12),
]


def peak_flops_by_name(name: str) -> float | None:
    """Dense bf16 peak FLOP/s for a CUDA device name, or None if the card is not in the table."""
    for key, flops in PEAK_BF16_FLOPS:
        if key.lower() in name.lower():
            return flops
    return None


def device_name(device: torch.device | str) -> str:
    """A human-readable device name: the CUDA card's name, or 'cpu (<n> threads)'."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def peak_flops(device: torch.device | str) -> float | None:
    """Dense bf16 peak FLOP/s of `device`; None on CPU or an unknown card (MFU is then not reported)."""
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return peak_flops_by_name(torch.cuda.get_device_name(device))


def mfu(flops_per_token: float, tokens_per_s: float, peak: float | None) -> float | None:
    """Model-FLOPs utilisation in [0, 1] (None without a peak)."""
    if peak is None or peak <= 0:
        return None
    return flops_per_token * tokens_per_s / peak


def measure_matmul_peak(
    device: torch.device | str = "cpu", *, n: int = 512, dtype: torch.dtype = torch.float32, seconds: float = 0.3
) -> float:
    """Achievable dense matmul FLOP/s of `device` with this process's torch threads: the best of three timed
    loops of [n, n] @ [n, n] products (2 n^3 FLOPs each), after a warm-up.

    CPUs have no datasheet peak comparable to a GPU's tensor-core figure, so CPU MFU is reported against this
    measured ceiling instead: "how much of what one GEMM gets does a training step get". n = 512 fp32 is large
    enough for the BLAS kernel to reach its steady state on one core (measured: n = 1024 gives the same rate
    within a few percent) and small enough to take well under a second."""
    device = torch.device(device)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    out = torch.empty(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        torch.mm(a, b, out=out)
    sync()
    best = 0.0
    for _ in range(3):
        iters, t0 = 0, time.perf_counter()
        while True:
            torch.mm(a, b, out=out)
            iters += 1
            if iters % 4 == 0:
                sync()
                dt = time.perf_counter() - t0
                if dt >= seconds / 3:
                    break
        best = max(best, 2.0 * n**3 * iters / dt)
    return best


# ---------------------------------------------------------------------------------------------- kernel counts
def count_eager_ops(fn: Callable[[], Any]) -> dict[str, int]:
    """Run `fn` once in eager mode and count the ATen ops it dispatches (each is one kernel launch on GPU).

    `ops` excludes views (free: no kernel); `pointwise` counts element-wise ops, where anGPT's extra scalar
    multiplies would show up: in eager mode every `x * nu` is its own pass over the activations."""
    from torch.utils._python_dispatch import TorchDispatchMode

    counts = {"ops": 0, "pointwise": 0}

    class Counter(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if not func.is_view:
                counts["ops"] += 1
                if torch.Tag.pointwise in func.tags:
                    counts["pointwise"] += 1
            return func(*args, **(kwargs or {}))

    with Counter():
        fn()
    return counts


@contextlib.contextmanager
def count_compiled_kernels() -> Iterator[dict[str, int]]:
    """Count what torch.compile generates inside the block: `kernels` (fused kernels Inductor writes, Triton on
    GPU or C++ on CPU; matmuls and attention are library calls, counted as `extern_calls`), `graphs` (forward and
    backward graphs lowered) and `graph_breaks` (Dynamo's).

    The FX graph and AOT-autograd caches are off inside the block: a cache hit generates (and shows) nothing."""
    import torch._dynamo.utils as dynamo_utils
    import torch._functorch.config as functorch_config
    import torch._inductor.config as inductor_config
    from torch._inductor.graph import GraphLowering

    codes: list[str] = []
    out: dict[str, int] = {}
    before_breaks = sum(dynamo_utils.counters["graph_break"].values())
    inductor_off = {k: False for k in ("fx_graph_cache", "autotune_local_cache") if hasattr(inductor_config, k)}
    aot_off = {k: False for k in ("enable_autograd_cache",) if hasattr(functorch_config, k)}
    # save_output_code is Inductor's hook for the generated module (what run_and_get_code uses); should a torch
    # version lack it, the kernel counts are simply missing, the benchmark still runs.
    capture = hasattr(GraphLowering, "save_output_code")
    hook = mock.patch.object(GraphLowering, "save_output_code", staticmethod(codes.append))
    with (
        inductor_config.patch(inductor_off),
        functorch_config.patch(aot_off),
        hook if capture else contextlib.nullcontext(),
    ):
        yield out
    if not capture:
        return
    out["kernels"] = sum(len(_KERNEL_DEF.findall(c)) for c in codes)
    out["extern_calls"] = sum(len(_EXTERN_CALL.findall(c)) for c in codes)
    out["graphs"] = len(codes)
    out["graph_breaks"] = int(sum(dynamo_utils.counters["graph_break"].values()) - before_breaks)


# One definition per fused kernel in Inductor's output code (Triton on GPU, C++ on CPU), and library calls.
_KERNEL_DEF = re.compile(r"async_compile\.(?:triton|cpp_pybinding|cpp)\(")
_EXTERN_CALL = re.compile(r"extern_kernels\.\w+\(")


# ---------------------------------------------------------------------------------------------- projection
def compiled_projection(model: torch.nn.Module) -> Callable[[], None]:
    """model.project_weights() as one compiled function: the same per-row clip/renormalisation of every
    constrained matrix (ant.models.constraints), but one graph instead of a Python loop launching ~4 kernels per
    matrix (a 0.5B model has 98 of them). On CPU Inductor fuses all of them into a single kernel. gpt/gptplus
    have no constraints: a no-op."""
    cons = [(c.param, c.param_dim, c.mode) for c in model.constraints()]
    if not cons:
        return lambda: None

    @torch.no_grad()
    def project() -> None:
        for p, dim, mode in cons:
            project_(p, dim, mode)

    return torch.compile(project)


# ---------------------------------------------------------------------------------------------- timing
class StepTimer:
    """Marks step starts; elapsed() gives the intervals between consecutive marks, in seconds.
    CUDA events are recorded on the stream and read after one synchronise at the end of the block."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.marks: list[Any] = []

    def mark(self) -> None:
        if self.cuda:
            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            self.marks.append(ev)
        else:
            self.marks.append(time.perf_counter())

    def elapsed(self) -> list[float]:
        if self.cuda:
            torch.cuda.synchronize()
            return [a.elapsed_time(b) / 1e3 for a, b in zip(self.marks, self.marks[1:])]
        return [b - a for a, b in zip(self.marks, self.marks[1:])]


class StopAfterBlock:
    """SIGTERM handling for a benchmark under a time limit (`timeout`, a SLURM time limit, a device lease):
    before measuring starts there is nothing to keep, so the process exits at once (status 128 + signal); once
    `measuring` is set, the signal only sets `requested`, the current interleaved block finishes, and the caller
    reports what was measured, marked partial."""

    def __init__(self) -> None:
        self.measuring = False
        self.requested = False

    def __call__(self, signum: int, frame: Any) -> None:
        if not self.measuring:
            raise SystemExit(128 + signum)
        self.requested = True
        print("SIGTERM: finishing this block, then reporting what was measured (partial)", flush=True)


def quantiles(xs: list[float]) -> tuple[float, float, float]:
    q = statistics.quantiles(xs, n=4, method="inclusive") if len(xs) > 1 else [xs[0]] * 3
    return q[0], statistics.median(xs), q[2]
