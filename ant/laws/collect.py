"""Run folders -> two tidy tables: one row per run, and the training curves of all runs.

A run folder (the ant.train contract, docs/design.md) holds config.yaml (RunConfig.to_yaml()), summary.json and
metrics.parquet. `collect` reads only those files, so it works on runs from any machine or SLURM array. A folder
that is unreadable is reported and skipped, never fatal: one broken run must not hide a sweep's results.

Incremental: when it writes results/runs.parquet and curves.parquet, collect also writes collect_manifest.json
beside them: per run folder the (mtime, size, inode) of its three files, its row and the shape of its curve. The
next collect re-reads only folders whose files changed (or are new), takes every other row from the manifest and
every other curve from curves.parquet, and returns the same tables a full read would (tests/laws/test_collect.py
checks it). Anything that does not match (the parquet files rewritten by someone else, a curve whose columns or
dtypes no other run had) falls back to reading what is needed; `collect(..., full=True)` or
`python -m ant.laws.collect RESULTS --full` ignores the manifest.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ant import fsio, runfolder
from ant.config import RunConfig
from ant.errors import ConfigError
from ant.laws.collect_curves import (  # noqa: F401 (CURVE_KEYS: public here)
    CURVE_KEYS,
    Pieces,
    curves_table,
    frame_schema,
    probe,
    read_curve,
)
from ant.status import RunStatus

# summary.json keys (design.md) copied into the runs table as they are.
SUMMARY_KEYS = (
    "run_id", "arch", "size", "num_params", "tokens", "steps", "batch_size", "seq_len", "lr", "seed", "status",
    "final_val_loss", "final_train_loss", "diverged_step", "flops", "wall_time_s", "tokens_per_s", "device",
    "torch_version", "finished_at", "error", "git_commit", "git_dirty",
)  # fmt: skip


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
    row = _read_row(run_dir)
    curve, warning = read_curve(run_dir, row)
    if warning:
        warnings.warn(warning, stacklevel=2)
    return row, curve


# The C parser when PyYAML has it: the same values (the constructor is the same Python code), ~10x faster, which
# is most of reading a run. Anything it rejects goes through RunConfig.from_yaml for the usual error.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _load_config(path: Path) -> RunConfig:
    try:
        d = yaml.load(path.read_text(), Loader=_LOADER)
    except yaml.YAMLError:
        return RunConfig.from_yaml(path)  # raises the ConfigError a user would see
    if d is not None and not isinstance(d, dict):
        return RunConfig.from_yaml(path)
    return RunConfig.from_dict(d)


def _read_row(run_dir: Path) -> dict:
    cfg_path = run_dir / runfolder.CONFIG
    if not cfg_path.is_file():
        raise ValueError("no config.yaml")
    try:
        cfg = _load_config(cfg_path)
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
    summary_path = run_dir / runfolder.SUMMARY
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ValueError(f"summary.json is not valid JSON: {e}") from None
        _check_summary(summary)
        # every scalar the summary holds (the contract's keys and any extras such as flops_per_token)
        row.update({k: v for k, v in summary.items() if v is None or isinstance(v, (str, int, float, bool))})
        row["run_id"] = run_dir.name  # the folder name is the identity, whatever the summary says
    row.update(_env_commit(run_dir))
    for k in SUMMARY_KEYS:
        row.setdefault(k, math.nan)
    if row.get("num_params") and row.get("tokens"):
        row["tokens_per_param"] = row["tokens"] / row["num_params"]
    if _missing(row.get("flops")) and row.get("num_params") and row.get("tokens"):
        row["flops"] = 6.0 * row["num_params"] * row["tokens"]  # fallback: the 6ND convention
    return row


# summary.json keys that must hold numbers (or null): a hand-edited "abc" would break the parquet table or a fit
NUMERIC_KEYS = ("num_params", "tokens", "steps", "batch_size", "seq_len", "lr", "seed", "final_val_loss",
                "final_train_loss", "diverged_step", "flops", "wall_time_s", "tokens_per_s")  # fmt: skip


def _check_summary(summary) -> None:
    """A summary.json a run could have written, or ValueError saying what is wrong (the folder is skipped)."""
    if not isinstance(summary, dict):
        raise ValueError(f"summary.json holds a {type(summary).__name__}, not a mapping")
    for k in NUMERIC_KEYS:
        v = summary.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ValueError(f"summary.json: {k} is {str(v)[:40]!r}, not a number")
        if isinstance(v, int) and abs(v) > 2**63 - 1:
            raise ValueError(f"summary.json: {k} is out of range")
    for k in ("status", "run_id", "arch", "size"):
        if summary.get(k) is not None and not isinstance(summary[k], str):
            raise ValueError(f"summary.json: {k} is {str(summary[k])[:40]!r}, not text")


def _env_commit(run_dir: Path) -> dict:
    """git_commit and git_dirty of the run's last start: env.json is a list with one entry per start (ant.train)."""
    try:
        entries = json.loads((run_dir / runfolder.ENV).read_bytes())
    except (OSError, ValueError):
        return {}
    last = entries[-1] if isinstance(entries, list) and entries and isinstance(entries[-1], dict) else {}
    return {k: last[k] for k in ("git_commit", "git_dirty") if isinstance(last.get(k), (str, bool))}


def _missing(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


MANIFEST = "collect_manifest.json"  # beside runs.parquet: what the last collect read (module docstring)
MANIFEST_VERSION = 3  # 2: env.json joined the run files whose signatures are kept; 3: curves' lr is the scheduled LR
RUN_FILES = runfolder.FILES
CHUNK_ROWS = 250_000  # curves.parquet is written this many rows at a time (atomic_parquet)


def collect(
    results_dir: str | Path = "results", *, write: bool = True, full: bool = False, check=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """All run folders under `results_dir` -> (runs, curves). Writes results/runs.parquet and
    results/curves.parquet atomically when `write` (and there is at least one run), and the manifest that lets
    the next call re-read only the folders that changed; `full` ignores that manifest and reads every folder.
    `check(runs)`, when given, may raise before anything is written (ant.laws.comparable)."""
    results_dir = Path(results_dir)
    rdir = runs_dir(results_dir)
    # Dot-folders are bookkeeping (the sweep's .locks), not runs.
    names = sorted(e.name for e in _scandir(rdir) if not e.name.startswith(".") and e.is_dir())
    cache = None if full else _load_manifest(results_dir, rdir)
    old = cache["folders"] if cache else {}
    entries: dict[str, dict[str, Any]] = {}
    pieces = Pieces()  # curves read now that can be concatenated the fast way (Arrow), in folder order
    fresh: dict[str, pd.DataFrame] = {}  # curves read now the exact way (read_curve)
    read_now: set[str] = set()
    for name in names:
        sig = _signature(rdir / name)
        if name in old and old[name]["sig"] == sig:
            entries[name] = old[name]
            continue
        entry: dict[str, Any] = {"sig": sig, "row": None, "skip": None, "warn": None, "cols": None, "n": 0}
        try:
            entry["row"] = _read_row(rdir / name)
        except ValueError as e:
            entry["skip"] = str(e)
        else:
            table, curve, entry["cols"], entry["warn"] = probe(rdir / name, entry["row"])
            if table is not None:
                pieces.add(name, table)
                entry["n"] = table.num_rows
            elif curve is not None and len(curve):
                fresh[name], entry["n"] = curve, len(curve)
            read_now.add(name)
        entries[name] = entry
    for name in names:  # in folder order, as a full read reports them
        if entries[name]["warn"]:
            warnings.warn(entries[name]["warn"], stacklevel=2)
    skipped = [f"{n}: {entries[n]['skip']}" for n in names if entries[n]["skip"] is not None]
    if skipped:
        warnings.warn(f"skipped {len(skipped)} run folder(s): " + "; ".join(skipped), stacklevel=2)
    runs = _runs_table([entries[n]["row"] for n in names if entries[n]["row"] is not None])
    if check is not None:
        check(runs)
    with_curve = [n for n in names if entries[n]["n"]]
    curves_df, curves_file = curves_table(results_dir, rdir, with_curve, entries, pieces, fresh, read_now, cache)
    if write and len(runs):
        atomic_parquet(runs, results_dir / "runs.parquet")
        if curves_file is not None:  # made from the previous file's rows: the frame is this file read back
            fsio.atomic_write_bytes(results_dir / "curves.parquet", curves_file)
        else:
            atomic_parquet(curves_df, results_dir / "curves.parquet", chunk_rows=CHUNK_ROWS)
        _write_manifest(results_dir, rdir, entries, curves_df)
    return runs, curves_df


def _runs_table(rows: list[dict]) -> pd.DataFrame:
    runs = pd.DataFrame(rows)
    for c in [c for c in runs.columns if pd.api.types.is_object_dtype(runs[c])]:  # text here, a number there
        kinds = {type(v) for v in runs[c] if v is not None and not (isinstance(v, float) and math.isnan(v))}
        if len(kinds) > 1 and not kinds <= {int, float}:
            runs[c] = runs[c].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    if len(runs):
        lead = ["run_id", *[k for k in SUMMARY_KEYS if k != "run_id"], "tokens_per_param"]
        runs = runs[[c for c in lead if c in runs] + sorted(c for c in runs if c not in lead)]
        runs = runs.sort_values(["arch", "num_params", "tokens", "batch_size", "lr", "seed"], kind="stable")
        runs = runs.reset_index(drop=True)
    return runs


def _signature(run: Path) -> list[list[int] | None]:
    """(mtime, size, inode) of each run file: an atomic rewrite (temp + rename) always changes the inode."""
    sig: list[list[int] | None] = []
    for f in RUN_FILES:
        try:
            st = os.stat(run / f)
        except OSError:
            sig.append(None)
            continue
        sig.append([st.st_mtime_ns, st.st_size, st.st_ino])
    return sig


def _file_sig(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino]


def _load_manifest(results_dir: Path, rdir: Path) -> dict[str, Any] | None:
    """The previous collect's manifest, if it describes these run folders and the parquet files on disk now."""
    try:
        m = json.loads((results_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    ok = (
        isinstance(m, dict)
        and m.get("version") == MANIFEST_VERSION
        and m.get("runs_dir") == str(rdir.resolve())
        and m.get("runs.parquet") == _file_sig(results_dir / "runs.parquet")
        and m.get("curves.parquet") == _file_sig(results_dir / "curves.parquet")
    )
    return m if ok else None


def _write_manifest(results_dir: Path, rdir: Path, entries: dict[str, dict[str, Any]], curves: pd.DataFrame) -> None:
    doc = {
        "version": MANIFEST_VERSION,
        "runs_dir": str(rdir.resolve()),
        "runs.parquet": _file_sig(results_dir / "runs.parquet"),
        "curves.parquet": _file_sig(results_dir / "curves.parquet"),
        "curves_dtypes": dict(frame_schema(curves)),
        "folders": entries,
    }
    # NaN and inf stay NaN and inf (Python's json reads back what it writes); written last, so a crash before
    # leaves a manifest that no longer matches the parquet files, and the next collect reads everything
    fsio.atomic_write_text(results_dir / MANIFEST, json.dumps(doc, separators=(",", ":")))


def _scandir(path: Path) -> list[os.DirEntry]:
    try:
        with os.scandir(path) as it:
            return list(it)
    except (FileNotFoundError, NotADirectoryError):
        return []


def load(results_dir: str | Path = "results", check=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Fresh tables from the run folders when there are any, else the saved parquet files (e.g. a results/
    folder shipped without its runs). `check`: as in collect."""
    results_dir = Path(results_dir)
    rdir = runs_dir(results_dir)
    if rdir.is_dir() and any((p / runfolder.CONFIG).is_file() for p in rdir.iterdir()):
        return collect(results_dir, check=check)
    rp, cp = results_dir / "runs.parquet", results_dir / "curves.parquet"
    runs = pd.read_parquet(rp) if rp.is_file() else pd.DataFrame()
    curves = pd.read_parquet(cp) if cp.is_file() else pd.DataFrame()
    return runs, curves


def completed(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs with a usable final loss (completed, finite)."""
    if runs.empty or "status" not in runs:
        return runs.iloc[0:0]
    ok = (runs["status"] == RunStatus.COMPLETED) & runs["final_val_loss"].astype(float).notna()
    return runs[ok].copy()


def atomic_parquet(df: pd.DataFrame, path: Path, chunk_rows: int | None = None) -> None:
    """df.to_parquet(path, index=False), atomically. `chunk_rows`: convert and write that many rows at a time
    (the same file content for pandas, without a second copy of a large table in memory); only for frames
    without object columns or attrs, whose pandas metadata does not depend on which rows a chunk holds."""
    chunked = chunk_rows and len(df) > chunk_rows and not df.attrs
    chunked = chunked and not any(pd.api.types.is_object_dtype(t) for t in df.dtypes)
    if chunked:
        fsio.atomic_write_with(path, lambda tmp: _write_chunks(df, str(tmp), chunk_rows))
    else:
        fsio.atomic_write_with(path, lambda tmp: df.to_parquet(tmp, index=False))


def _write_chunks(df: pd.DataFrame, path: str, rows: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    first = pa.Table.from_pandas(df.iloc[:rows], preserve_index=False)
    with pq.ParquetWriter(path, first.schema, compression="snappy") as writer:  # to_parquet's codec
        writer.write_table(first)
        for at in range(rows, len(df), rows):
            writer.write_table(pa.Table.from_pandas(df.iloc[at : at + rows], preserve_index=False, schema=first.schema))


# ---------------------------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ant.laws.collect", description="run folders -> runs/curves.parquet")
    ap.add_argument("results", nargs="?", default="results", help="folder holding runs/ (or a folder of runs)")
    ap.add_argument("--full", action="store_true", help="read every run folder (ignore collect_manifest.json)")
    args = ap.parse_args(argv)
    if not Path(args.results).is_dir():
        print(f"collect: error: results: no such folder: {args.results}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    runs, curves = collect(args.results, full=args.full)
    where = f" -> {args.results}/runs.parquet, curves.parquet" if len(runs) else ""
    print(f"collected {len(runs)} runs, {len(curves)} curve rows from {runs_dir(args.results)} in "
          f"{time.perf_counter() - t0:.1f} s{where}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
