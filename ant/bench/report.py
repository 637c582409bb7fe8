"""The reporting stage of `ant bench`: frozen measurements (ant/bench/measure.py's BenchResults) -> the JSON
document (figures per architecture, overhead vs the first, the partial flag) and the printed table."""

from __future__ import annotations

import datetime as _dt
from typing import Any

import torch

from ant.bench.measure import BenchResults
from ant.perf import device_name, measure_matmul_peak, mfu, peak_flops, quantiles


def summarize(res: BenchResults) -> dict[str, Any]:
    cfg = res.config
    dev = torch.device(cfg.device)
    peak = peak_flops(dev)
    # No datasheet peak on a CPU: MFU there is measured against this process's own fp32 GEMM rate (same threads).
    measured_peak = measure_matmul_peak(dev) if dev.type == "cpu" else None
    tokens = cfg.batch * cfg.seq_len
    results = []
    for a in res.archs:
        q1, med, q3 = quantiles(list(a.times_s))
        tps = tokens / med
        r: dict[str, Any] = {
            "arch": a.arch,
            "num_params": a.num_params,
            "flops_per_token": a.flops_per_token,
            "step_time_ms": 1e3 * med,
            "step_time_iqr_ms": 1e3 * (q3 - q1),
            "tokens_per_s": tps,
            "mfu": mfu(a.flops_per_token, tps, peak),
            "mfu_vs_measured_matmul": mfu(a.flops_per_token, tps, measured_peak),
            "peak_mem_mb": (a.static_bytes + a.peak_extra_bytes) / 2**20 if dev.type == "cuda" else None,
            "step_time_min_ms": 1e3 * min(a.times_s),  # robust to other tenants on a shared CPU
            "n_steps": len(a.times_s),
            "warmup_s": a.warmup_s,
            **a.kernels,
        }
        if a.lightning_times_s:
            lq1, lmed, lq3 = quantiles(list(a.lightning_times_s))
            r["lightning_step_time_ms"] = 1e3 * lmed
            r["lightning_step_time_iqr_ms"] = 1e3 * (lq3 - lq1)
            r["lightning_overhead"] = lmed / med - 1.0
        results.append(r)
    first = results[0]["step_time_ms"]
    for r in results:
        r["overhead_vs_first"] = r["step_time_ms"] / first
    return {
        "partial": res.partial,  # stopped early (SIGTERM)
        "device": device_name(dev),
        "torch": torch.__version__,
        "date": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "peak_flops": peak,
        "measured_matmul_peak_flops": measured_peak,  # CPU only: fp32 [512, 512] GEMM, this process's threads
        "config": cfg.to_dict(),
        "results": results,
    }


def format_table(report: dict[str, Any]) -> str:
    cfg = report["config"]
    head = (
        f"{report['device']} | torch {report['torch']} | size {cfg['size']} seq {cfg['seq_len']} batch "
        f"{cfg['batch']} | {cfg['dtype']} | compile={cfg['compile']}"
        + (" | PARTIAL (stopped early)" if report.get("partial") else "")
    )
    cols = f"{'arch':<8} {'step ms':>9} {'iqr ms':>8} {'tok/s':>10} {'MFU':>6} {'mem MB':>8} {'vs first':>9}"
    light = any("lightning_step_time_ms" in r for r in report["results"])
    if light:
        cols += f" {'L ms':>9} {'L ovh':>7}"
    if report.get("measured_matmul_peak_flops"):
        head += f" | MFU vs measured fp32 GEMM {report['measured_matmul_peak_flops'] / 1e9:.1f} GFLOP/s"
    lines = [head, cols]
    for r in report["results"]:
        m = r["mfu"] if r["mfu"] is not None else r.get("mfu_vs_measured_matmul")
        mfu_s = f"{100 * m:.1f}%" if m is not None else "-"
        mem = f"{r['peak_mem_mb']:.0f}" if r["peak_mem_mb"] is not None else "-"
        line = (
            f"{r['arch']:<8} {r['step_time_ms']:>9.2f} {r['step_time_iqr_ms']:>8.2f} {r['tokens_per_s']:>10.0f} "
            f"{mfu_s:>6} {mem:>8} {100 * (r['overhead_vs_first'] - 1):>+8.1f}%"
        )
        if light and "lightning_step_time_ms" in r:
            line += f" {r['lightning_step_time_ms']:>9.2f} {100 * r['lightning_overhead']:>+6.1f}%"
        lines.append(line)
    return "\n".join(lines)
