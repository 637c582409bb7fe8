"""A study group's committed learning curves as append-only shards, so that a data commit adds only its own runs'
curves instead of rewriting the group's whole table (results/study/v2/curves.parquet had grown to 7.6 MB, and each
part's commit rewrote all of it into git's history).

    results/study/<group>/curves.parquet             the curves committed before shards (read as the first shard)
    results/study/<group>/curves/<time>-<hash>.parquet   one per merge: the curves of the runs that merge collected

`read_curves` returns the same table one file used to hold: the base, then every shard in name order (the name
starts with the merge's UTC time), where a run's curve in a later shard replaces its earlier rows (a run folder
retrained after its curve was committed). `write_shard` writes a merge's new curves and nothing else; the name ends
with a hash of the bytes, so two branches that merge different runs never write the same file.

`measured_summaries` reads a committed runs table back as the planner's measurements (the run folders are gone on a
fresh clone).
"""

from __future__ import annotations

import hashlib
import io
import time
from pathlib import Path

import pandas as pd

from ant.fsio import atomic_write_bytes

BASE = "curves.parquet"
SHARDS = "curves"


def shard_paths(group_dir: Path) -> list[Path]:
    d = Path(group_dir) / SHARDS
    return sorted(d.glob("*.parquet")) if d.is_dir() else []


def read_curves(group_dir: Path) -> pd.DataFrame:
    """The group's curves: the base file, then the shards; a run's latest curve wins."""
    base = Path(group_dir) / BASE
    parts = [pd.read_parquet(base)] if base.is_file() else []
    for p in shard_paths(group_dir):
        new = pd.read_parquet(p)
        parts = [x[~x["run_id"].isin(new["run_id"])] for x in parts] + [new]
    parts = [x for x in parts if len(x)]
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0].reset_index(drop=True)


def write_shard(group_dir: Path, curves: pd.DataFrame) -> Path | None:
    """Write `curves` (one merge's runs) as a new shard; None when there is nothing to write."""
    if curves.empty:
        return None
    buf = io.BytesIO()
    curves.reset_index(drop=True).to_parquet(buf, index=False, compression="zstd")
    data = buf.getvalue()
    name = f"{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{hashlib.sha256(data).hexdigest()[:10]}.parquet"
    path = Path(group_dir) / SHARDS / name
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return path


def measured_summaries(runs: pd.DataFrame) -> list[dict]:
    """The committed runs table's finished runs as the summaries the planner's rates read (ant.sweep.throughput):
    on a fresh clone the run folders are gone, and without these the planner falls back to bench step times of
    other shapes, eager and alone (v2-isoflop-scan: 86.8 min planned, 35.7 measured). A packed run's wall time is
    its worker's, so its worker's runs are found again as those finishing at the same time at the same tokens/s
    (one worker's runs share both), and `packed_with` lists them."""
    cols = ["run_id", "status", "flops", "wall_time_s", "tokens", "arch", "size", "batch_size", "seq_len", "device",
            "world_size", "finished_at", "tokens_per_s"]  # fmt: skip
    if runs.empty or not set(cols) <= set(runs.columns):
        return []
    r = runs.loc[runs["status"].eq("completed") & runs["wall_time_s"].notna() & runs["finished_at"].notna(), cols]
    worker = ["arch", "size", "batch_size", "seq_len", "finished_at", "tokens_per_s"]
    ids = r.groupby(worker, dropna=False)["run_id"].transform(lambda x: [list(x)] * len(x))
    out = []
    for row, group in zip(r.drop(columns=["finished_at", "tokens_per_s"]).to_dict("records"), ids):
        out.append({**row, "packed_with": group if len(group) > 1 else None})
    return out
