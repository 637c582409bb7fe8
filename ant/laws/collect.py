"""Run folders -> two tidy tables: one row per run, and the training curves of all runs.

A run folder (the ant.train contract, docs/design.md) holds config.yaml (RunConfig.to_yaml()), summary.json and
metrics.parquet. `collect` reads only those files, so it works on runs from any machine or SLURM array. A folder
that is unreadable is reported and skipped, never fatal: one broken run must not hide a sweep's results.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import warnings
from pathlib import Path

import pandas as pd

from ant.config import RunConfig
from ant.errors import ConfigError

# summary.json keys (design.md) copied into the runs table as they are.
SUMMARY_KEYS = (
    "run_id", "arch", "size", "num_params", "tokens", "steps", "batch_size", "seq_len", "lr", "seed", "status",
    "final_val_loss", "final_train_loss", "diverged_step", "flops", "wall_time_s", "tokens_per_s", "device",
    "torch_version", "finished_at", "error",
)  # fmt: skip
# Columns the curves table carries from its run, so a curve can be grouped without a join.
CURVE_KEYS = ("run_id", "arch", "size", "num_params", "batch_size", "lr", "seed", "status")


def runs_dir(results_dir: str | Path) -> Path:
    """`results/` holds `runs/`; a folder of run folders is accepted as well."""
    p = Path(results_dir)
    return p / "runs" if (p / "runs").is_dir() else p


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k != "options":
            out.update(_flatten(v, f"{key}."))
        else:
            out[key] = json.dumps(v, sort_keys=True) if isinstance(v, dict) else v
    return out


def read_run(run_dir: Path) -> tuple[dict, pd.DataFrame | None]:
    """One run folder -> (row, curve). Raises ValueError with the reason when the folder is unusable."""
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.is_file():
        raise ValueError("no config.yaml")
    try:
        cfg = RunConfig.from_yaml(cfg_path)
    except ConfigError as e:
        raise ValueError(f"config.yaml: {e}") from None
    row = {f"cfg.{k}": v for k, v in _flatten(cfg.to_dict()).items()}
    # Defaults from the config, overridden by the summary (which is what actually ran).
    m, t = cfg.model, cfg.train
    row.update(
        run_id=run_dir.name,
        arch=m.arch,
        size=m.size,
        num_params=cfg.num_params,
        tokens=t.tokens,
        steps=cfg.steps,
        batch_size=t.batch_size,
        seq_len=cfg.data.seq_len,
        lr=cfg.optim.lr,
        seed=t.seed,
        status="missing_summary",
    )
    summary_path = run_dir / "summary.json"
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"summary.json is not valid JSON: {e}") from None
        # every scalar the summary holds (the contract's keys and any extras such as flops_per_token)
        row.update({k: v for k, v in summary.items() if v is None or isinstance(v, (str, int, float, bool))})
        row["run_id"] = run_dir.name  # the folder name is the identity, whatever the summary says
    for k in SUMMARY_KEYS:
        row.setdefault(k, math.nan)
    if row.get("num_params") and row.get("tokens"):
        row["tokens_per_param"] = row["tokens"] / row["num_params"]
    if _missing(row.get("flops")) and row.get("num_params") and row.get("tokens"):
        row["flops"] = 6.0 * row["num_params"] * row["tokens"]  # fallback: the 6ND convention
    curve = None
    metrics_path = run_dir / "metrics.parquet"
    if metrics_path.is_file():
        try:
            curve = pd.read_parquet(metrics_path)
        except Exception as e:  # pyarrow raises several types for truncated files
            warnings.warn(f"{run_dir.name}: metrics.parquet unreadable ({e}); run kept without curve", stacklevel=2)
        if curve is not None and len(curve):
            for k in CURVE_KEYS:
                curve[k] = row.get(k)
            # FLOPs so far: the run's own FLOPs/token (summary) times tokens seen.
            fpt = row["flops"] / row["tokens"] if row.get("tokens") else math.nan
            if "tokens" in curve:
                curve["flops"] = curve["tokens"].astype(float) * fpt
    return row, curve


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def collect(results_dir: str | Path = "results", *, write: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All run folders under `results_dir` -> (runs, curves). Writes results/runs.parquet and
    results/curves.parquet atomically when `write` (and there is at least one run)."""
    rdir = runs_dir(results_dir)
    rows, curves, skipped = [], [], []
    # Dot-folders are bookkeeping (the sweep's .locks), not runs.
    folders = sorted(p for p in rdir.iterdir() if p.is_dir() and not p.name.startswith(".")) if rdir.is_dir() else []
    for run in folders:
        try:
            row, curve = read_run(run)
        except ValueError as e:
            skipped.append(f"{run.name}: {e}")
            continue
        rows.append(row)
        if curve is not None and len(curve):
            curves.append(curve)
    if skipped:
        warnings.warn(f"skipped {len(skipped)} run folder(s): " + "; ".join(skipped), stacklevel=2)
    runs = pd.DataFrame(rows)
    if len(runs):
        lead = ["run_id", *[k for k in SUMMARY_KEYS if k != "run_id"], "tokens_per_param"]
        runs = runs[[c for c in lead if c in runs] + sorted(c for c in runs if c not in lead)]
        runs = runs.sort_values(["arch", "num_params", "tokens", "batch_size", "lr", "seed"], kind="stable")
        runs = runs.reset_index(drop=True)
    curves_df = pd.concat(curves, ignore_index=True) if curves else pd.DataFrame(columns=[*CURVE_KEYS, "step"])
    if write and len(runs):
        out = Path(results_dir)
        atomic_parquet(runs, out / "runs.parquet")
        atomic_parquet(curves_df, out / "curves.parquet")
    return runs, curves_df


def load(results_dir: str | Path = "results") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fresh tables from the run folders when there are any, else the saved parquet files (e.g. a results/
    folder shipped without its runs)."""
    results_dir = Path(results_dir)
    rdir = runs_dir(results_dir)
    if rdir.is_dir() and any((p / "config.yaml").is_file() for p in rdir.iterdir()):
        return collect(results_dir)
    rp, cp = results_dir / "runs.parquet", results_dir / "curves.parquet"
    runs = pd.read_parquet(rp) if rp.is_file() else pd.DataFrame()
    curves = pd.read_parquet(cp) if cp.is_file() else pd.DataFrame()
    return runs, curves


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs with a usable final loss (completed, finite)."""
    if runs.empty or "status" not in runs:
        return runs.iloc[0:0]
    ok = (runs["status"] == "completed") & runs["final_val_loss"].astype(float).notna()
    return runs[ok].copy()


def atomic_write_text(text: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
