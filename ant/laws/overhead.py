"""Runtime overhead per architecture (paper Table 2) from the benchmark's JSON.

Expected input (ant.bench writes it): {"device": ..., "results": [{"arch": ..., "step_time_ms": ...,
"tokens_per_s": ..., "mfu": ...}, ...]}. The reader is tolerant: a bare list of results, "model"/"name" for the
arch, "step_time_s" or "step_time" (seconds) for the step time, several rows per arch (averaged), extra keys.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ant.errors import ConfigError, read_user_file
from ant.laws.reference import PAPER_STEP_TIME_S

ARCH_KEYS = ("arch", "model", "name", "architecture")


def _step_ms(r: dict) -> float:
    for k, scale in (("step_time_ms", 1.0), ("step_ms", 1.0), ("step_time_s", 1e3), ("step_time", 1e3)):
        if r.get(k) is not None:
            return float(r[k]) * scale
    if r.get("tokens_per_s") and r.get("tokens_per_step"):
        return 1e3 * float(r["tokens_per_step"]) / float(r["tokens_per_s"])
    return math.nan


def read_bench(bench_json: str | Path | dict | list) -> tuple[str, pd.DataFrame]:
    """-> (device, one row per result with arch, step_time_ms, tokens_per_s, mfu)."""
    src = bench_json
    if isinstance(bench_json, (str, Path)):
        src = read_user_file(bench_json, "bench_json", "json")
    device = src.get("device", "unknown") if isinstance(src, dict) else "unknown"
    results = src.get("results", src.get("runs", [])) if isinstance(src, dict) else src
    if not isinstance(results, list) or not results:
        raise ConfigError("bench_json", "no results list found", "{'device': ..., 'results': [{'arch': ...}]}")
    rows = []
    for r in results:
        if not isinstance(r, dict):
            continue
        arch = next((r[k] for k in ARCH_KEYS if k in r), None)
        if arch is None:
            continue
        rows.append(
            {
                "arch": str(arch),
                "step_time_ms": _step_ms(r),
                "tokens_per_s": float(r.get("tokens_per_s", math.nan) or math.nan),
                "mfu": float(r.get("mfu", math.nan) or math.nan),
                # spread and best-of-N step time, when the benchmark reports them (robust on a shared CPU)
                "step_time_iqr_ms": float(r.get("step_time_iqr_ms", math.nan) or math.nan),
                "step_time_min_ms": float(r.get("step_time_min_ms", math.nan) or math.nan),
            }
        )
    if not rows:
        raise ConfigError("bench_json", "no result names its architecture", ARCH_KEYS)
    return str(device), pd.DataFrame(rows)


def overhead_table(bench_json: str | Path | dict | list, reference: str = "gptplus") -> pd.DataFrame:
    """One row per arch: mean step time, its increase over `reference` in % (NaN without a reference row), and
    the paper's Table 2 value next to it. `df.attrs["device"]` holds the benchmark's device."""
    device, rows = read_bench(bench_json)
    t = rows.groupby("arch", sort=False).mean(numeric_only=True).reset_index()
    ref = t.loc[t["arch"] == reference, "step_time_ms"]
    ref_ms = float(ref.iloc[0]) if len(ref) else math.nan
    t["rel_increase_pct"] = 100 * (t["step_time_ms"] / ref_ms - 1)
    p_ref = PAPER_STEP_TIME_S.get(reference, math.nan)
    t["paper_rel_increase_pct"] = [100 * (PAPER_STEP_TIME_S.get(a, math.nan) / p_ref - 1) for a in t["arch"]]
    t.attrs["device"] = device
    t.attrs["reference"] = reference
    return t
