"""How long a run will take: the FLOP/s the planner divides a run's FLOPs by (measured runs, then `ant bench`
files, then a device table; ant.sweep.plan's docstring gives the order) and the per-run costs a benchmarked step
time leaves out (start-up, validation). Pure bookkeeping: no torch, no run folder reads (the planner passes the
summaries it scanned)."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from ant.config import RunConfig
from ant.models.counts import flops_per_token as count_flops_per_token  # closed form, no torch

# Achieved training FLOP/s guesses: peak dense bf16 x ~35 % MFU on GPUs. cpu: a whole 2-core machine in fp32 at
# tiny sizes: two tiny3 runs in parallel measured 4.7 GFLOP/s each on a loaded 2-core box (2026-11-28), so 1e10.
DEVICE_FLOPS = {
    "cpu": 1e10,
    "cuda": 0.35 * 989e12,
    "h100": 0.35 * 989e12,
    "h200": 0.35 * 989e12,
    "a100": 0.35 * 312e12,
    "a100-40gb": 0.35 * 312e12,
    "v100": 0.35 * 125e12,
}


def flops_per_token(cfg: RunConfig) -> float:
    """Training FLOPs/token of the run's model, in closed form (ant.models.counts: no model is built)."""
    m = cfg.model
    return count_flops_per_token(m.arch, m.size, m.vocab_size, cfg.data.seq_len, m.options)


def bench_rows(bench_dir: Path) -> list[dict[str, Any]]:
    """Every dict with `tokens_per_s` found anywhere in results/bench/*.json (the format is ant.bench's)."""
    found: list[dict[str, Any]] = []

    def walk(x: Any, device: str = "cpu", config: dict | None = None) -> None:
        # rows inherit the file's top-level "device" and "config" (size, batch, seq_len, vocab_size, ...)
        if isinstance(x, dict):
            device = str(x.get("device", device))
            config = x["config"] if isinstance(x.get("config"), dict) else config
            if "tokens_per_s" in x:
                found.append({**x, "device": device, "config": config or {}})
            for k, v in x.items():
                if k != "config":
                    walk(v, device, config)
        elif isinstance(x, list):
            for v in x:
                walk(v, device, config)

    # calibration/: step times of the CPU study's shapes (docs/study.md), kept out of Table 2's folder
    for p in sorted([*bench_dir.glob("*.json"), *bench_dir.glob("calibration/*.json")]):
        try:
            walk(json.loads(p.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return found


def device_kind(device: str | None) -> str:
    d = (device or "cpu").lower()
    for k in ("h200", "h100", "a100", "v100"):
        if k in d:
            return k
    return "cuda" if "cuda" in d or "nvidia" in d else "cpu"


class Throughput:
    """FLOP/s for a run: measured runs, then bench files, then the device table. `source` names which."""

    def __init__(
        self,
        summaries: list[dict[str, Any]],  # the finished runs' summary.json (ant.sweep.plan.FolderScan reads them)
        bench_dir: Path = Path("results/bench"),
        estimate: dict | None = None,
    ):
        self.estimate = estimate or {}
        # (packed?, device) -> FLOP/s; (packed?, device, arch, size, batch, seq_len) -> tokens/s. A packed run's
        # wall_time_s is its worker's (K runs trained in that time): its share of the worker is wall / K, and
        # its rate predicts only runs that will train packed too (ant.sweep.packing)
        self.measured: dict[tuple, list[float]] = {}
        self.same_shape: dict[tuple, list[float]] = {}
        for s in summaries:
            if s.get("status") == "completed" and s.get("flops") and s.get("wall_time_s"):
                kind = device_kind(s.get("device"))
                k = len(s.get("packed_with") or []) or 1
                per_device = s["wall_time_s"] * (s.get("world_size") or 1) / k  # rates are per device
                self.measured.setdefault((k > 1, kind), []).append(s["flops"] / per_device)
                key = (k > 1, kind, s.get("arch"), s.get("size"), s.get("batch_size"), s.get("seq_len"))
                self.same_shape.setdefault(key, []).append(s["tokens"] / per_device)
        self.bench = bench_rows(bench_dir) if bench_dir.is_dir() else []
        self.sources: set[str] = set()
        self.last_measured = False  # whether the last figure already includes pool contention
        self.last_exact_bench = False  # whether the last figure is a bench step time of the run's own shape
        self._memo: dict[tuple, tuple[float, bool, bool]] = {}

    def exact_bench(self, cfg: RunConfig) -> dict[str, Any] | None:
        """A bench row of this run's own (device kind, arch, size, batch, seq_len, vocab), single-threaded on CPU
        (how the local executor runs tiny models), or None."""
        kind = device_kind(cfg.train.device)
        for b in self.bench:
            c = b["config"]
            if (
                device_kind(b["device"]) == kind
                and b.get("arch") == cfg.model.arch
                and c.get("size") == cfg.model.size
                and c.get("batch") == cfg.train.batch_size
                and c.get("seq_len") == cfg.data.seq_len
                and c.get("vocab_size") == cfg.model.vocab_size
                and (kind != "cpu" or "(1 threads)" in b["device"])
            ):
                return b
        return None

    def flops_per_s(self, cfg: RunConfig, packed: bool = False) -> float:
        # the figure depends on the run's shape only: a 10,000-run grid has a few dozen (each lookup scans every
        # bench row); `sources` was filled the first time, the two flags are restored
        m = cfg.model
        shape = (cfg.train.device, m.arch, m.size, m.vocab_size, repr(sorted(m.options.items())),
                 cfg.train.batch_size, cfg.data.seq_len, packed)  # fmt: skip
        if shape not in self._memo:
            rate = self._flops_per_s(cfg, packed)
            self._memo[shape] = (rate, self.last_measured, self.last_exact_bench)
        rate, self.last_measured, self.last_exact_bench = self._memo[shape]
        return rate

    def _flops_per_s(self, cfg: RunConfig, packed: bool = False) -> float:
        self.last_measured = self.last_exact_bench = False
        if "flops_per_s" in self.estimate:
            self.sources.add("grid file estimate.flops_per_s")
            return float(self.estimate["flops_per_s"])
        kind = device_kind(self.estimate.get("device", cfg.train.device))
        key = (kind, cfg.model.arch, cfg.model.size, cfg.train.batch_size, cfg.data.seq_len)
        if packed:  # a run that will train packed: packed runs of its shape, then packed runs of any shape
            if self.same_shape.get((True, *key)):
                self.sources.add(f"tokens/s of finished packed {kind} runs of the same arch, size and batch")
                self.last_measured = True
                return statistics.median(self.same_shape[(True, *key)]) * flops_per_token(cfg)
            if self.measured.get((True, kind)):
                self.sources.add(f"median of {len(self.measured[(True, kind)])} finished packed {kind} run(s)")
                self.last_measured = True
                return statistics.median(self.measured[(True, kind)])
        if self.same_shape.get((False, *key)):  # small models are overhead-bound: same-shape runs predict best
            self.sources.add(f"tokens/s of finished {kind} runs of the same arch, size and batch")
            self.last_measured = True
            return statistics.median(self.same_shape[(False, *key)]) * flops_per_token(cfg)
        # a step time of this very shape beats the average rate of other shapes (tiny models are overhead-bound)
        exact = self.exact_bench(cfg) if "device" not in self.estimate else None
        if exact is not None:
            self.sources.add(f"results/bench step times of the same arch, size and batch ({kind})")
            self.last_exact_bench = True
            ms = exact.get("lightning_step_time_ms") or exact["step_time_ms"]
            return cfg.train.batch_size * cfg.data.seq_len / (ms / 1e3) * flops_per_token(cfg)
        if self.measured.get((False, kind)):
            self.sources.add(f"median of {len(self.measured[(False, kind)])} finished {kind} run(s)")
            self.last_measured = True
            return statistics.median(self.measured[(False, kind)])
        bench = [b for b in self.bench if device_kind(str(b.get("device", "cpu"))) == kind and b.get("tokens_per_s")]
        if bench:
            same = [b for b in bench if b.get("arch") == cfg.model.arch] or bench
            fpt = [b["flops_per_token"] for b in same if b.get("flops_per_token")]
            tps = statistics.median(b["tokens_per_s"] for b in same)
            self.sources.add(f"results/bench ({kind})")
            return tps * (statistics.median(fpt) if fpt else flops_per_token(cfg))
        self.sources.add(f"device table ({kind}: {DEVICE_FLOPS[kind]:.3g} FLOP/s)")
        return DEVICE_FLOPS[kind]


# Per-run costs a benchmarked step time leaves out, measured for the CPU study (docs/study.md): building the
# model, data and Trainer, checkpoints and the final summary (START_S), and the forward passes of validation
# (ant.train.evaluation: a subset at the intermediate steps, every window at the end), which cost EVAL_FRACTION of
# a training step's time per token at the training batch (forward only, no optimizer). Evaluating at a larger
# batch than the training one is cheaper per token, by about (train batch / eval batch)^0.5 at one CPU thread
# (tiny0-tiny2, batch 1 and 4 against 16: 0.18-0.54, measured for issue 23).
START_S = 2.5
EVAL_FRACTION = 0.4


def overheads_s(cfg: RunConfig, train_s: float, start_step: int = 0) -> float:
    """Start-up plus validation time of a run whose training steps from `start_step` on take `train_s` in all."""
    from ant.train.evaluation import eval_batch_size, evaluated_tokens  # torch and ant.data, no Lightning

    steps = max(1, cfg.steps - start_step)
    per_token = train_s / (steps * cfg.train.batch_size * cfg.data.seq_len)
    gain = min(1.0, cfg.train.batch_size / eval_batch_size(cfg.train)) ** 0.5
    return START_S + evaluated_tokens(cfg, start_step) * per_token * EVAL_FRACTION * gain
