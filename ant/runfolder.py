"""The run folder's format in one place (no torch): its file names, the summary, checkpoints with checksums.

    results/runs/<run_id>/
        config.yaml        CONFIG        the resolved RunConfig (written once, before training)
        summary.json       SUMMARY       status, final numbers, hashes (Summary reads it back, typed)
        metrics.parquet    METRICS       one row per logged step (ant.train.callbacks.MetricsTable)
        env.json           ENV           one entry per start of the run (ant.train.env)
        weights.pt         WEIGHTS       a finished run's final state dict
        checkpoints/       CHECKPOINTS   step-XXXXXXXX.ckpt + .sha256 (keep/: a wsd trunk's branch points)
        logs/              LOGS          the train.loggers' own files
        branch.json        BRANCH        a wsd branch: the trunk and step it was seeded from
        branch_points.json BRANCH_POINTS a wsd trunk: the steps whose checkpoints are kept

Every name above is spelled here only; readers and writers anywhere (train, sweep, laws, analysis) import it.
JSON is written NaN-safe (`jsonable`: NaN/inf -> null, numpy/pandas scalars -> Python) and atomically
(ant.fsio), so a reader sees the old file or the new one. A checkpoint `checkpoints/step-00000120.ckpt` counts
only when `step-00000120.ckpt.sha256` exists and matches its bytes; the checksum is written after the checkpoint
has been moved into place, so a process killed at any moment leaves either a valid pair or something
`newest_valid_checkpoint()` skips (a missing or wrong checksum, a truncated file, a leftover `.tmp`).

A primitive beside fsio: it imports nothing of ant above it, and neither torch nor numpy (numpy and pandas values
are cleaned when those modules are already loaded, which is the only way such a value can exist).
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ant import fsio
from ant.fsio import atomic_write_bytes, atomic_write_json, atomic_write_text, atomic_write_with

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_with"]  # run-folder writers use these

CONFIG, SUMMARY, METRICS, ENV, WEIGHTS = "config.yaml", "summary.json", "metrics.parquet", "env.json", "weights.pt"
CHECKPOINTS, LOGS, BRANCH, BRANCH_POINTS = "checkpoints", "logs", "branch.json", "branch_points.json"
FILES = (CONFIG, SUMMARY, METRICS, ENV)  # what a finished run's row is read from (ant.laws.collect)
CKPT_RE = re.compile(r"^step-(\d{8})\.ckpt$")


class RunStatus(enum.StrEnum):
    """summary.json's status. A `StrEnum`: members are the very strings on disk (`RunStatus.COMPLETED ==
    "completed"`, json.dumps writes "completed"), so folders written before the enum read the same. yaml.safe_dump
    does not know str subclasses: write `str(status)` there."""

    COMPLETED = "completed"  # trained the whole token budget
    DIVERGED = "diverged"  # stopped by the divergence guard: a result, not an error
    FAILED = "failed"  # an exception; summary.json holds its text
    RUNNING = "running"  # being trained, or checkpointed and stopped on request (`interrupted: true`)


# States a re-run leaves alone (train() returns the summary, the sweep skips the run).
FINISHED = (RunStatus.COMPLETED, RunStatus.DIVERGED)


# ---------------------------------------------------------------------- JSON
def jsonable(o: Any) -> Any:
    """What json.dumps(allow_nan=False) takes: NaN and inf -> None (JSON has no NaN: a loss that is not a number
    is written as null), numpy and pandas scalars and arrays -> Python, tuples -> lists, keys -> str."""
    if isinstance(o, dict):
        return {k if isinstance(k, str) else str(k): jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [jsonable(v) for v in o]
    if isinstance(o, float):  # numpy's float64 is one too: made a plain float, as yaml.safe_dump needs
        return float(o) if math.isfinite(o) else None
    if isinstance(o, (bool, str, type(None))):  # a StrEnum stays itself: json writes its value
        return o
    if isinstance(o, int):
        return int(o)
    np = sys.modules.get("numpy")
    if np is not None:
        if isinstance(o, np.ndarray):
            return jsonable(o.tolist())
        if isinstance(o, np.bool_):
            return bool(o)
        if isinstance(o, np.integer):
            return int(o)
        if isinstance(o, np.floating):
            return float(o) if math.isfinite(o) else None
    pd = sys.modules.get("pandas")
    if pd is not None and (o is pd.NA or o is pd.NaT):
        return None
    return o


def write_json(path: Path, obj: dict[str, Any]) -> None:
    atomic_write_json(path, jsonable(obj), indent=2)


def write_json_in_place(path: Path, obj: dict[str, Any]) -> None:
    """Last resort when write_json fails for lack of space: truncating the file frees its blocks before the new
    bytes need them, where a temp file needs room for both. Not atomic: a crash mid-write leaves a file read_json
    treats as absent, which is still better than a summary that says "running" for a run that failed."""
    with open(path, "w") as f:
        f.write(json.dumps(jsonable(obj), indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_json(path: Path) -> dict[str, Any] | None:
    """A run folder's JSON file, or None when it is missing or cut short."""
    return fsio.read_json(path, default=None)


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    """sha256 of a file's bytes, read in chunks (checkpoints, weights, token files, downloads)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


# ---------------------------------------------------------------------- summary.json
def read_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's summary.json as written, or None when it is missing or cut short."""
    return read_json(Path(run_dir) / SUMMARY)


def write_summary(run_dir: str | Path, summary: dict[str, Any], *, in_place: bool = False) -> None:
    """Atomically (or, on a full disk, `in_place`: see write_json_in_place)."""
    (write_json_in_place if in_place else write_json)(Path(run_dir) / SUMMARY, summary)


@dataclass(frozen=True)
class Summary:
    """summary.json read back with typed accessors for the keys readers share; `raw` holds every key (run.py and
    packed_run.py write them; README "One run" lists them)."""

    raw: dict[str, Any]

    @classmethod
    def read(cls, run_dir: str | Path) -> Summary | None:
        raw = read_summary(run_dir)
        return None if not isinstance(raw, dict) else cls(raw)

    @property
    def status(self) -> RunStatus | None:
        """None for a status this version does not know (a damaged or foreign file)."""
        try:
            return RunStatus(self.raw.get("status"))
        except ValueError:
            return None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def final_val_loss(self) -> float | None:
        v = self.raw.get("final_val_loss")
        return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    def text(self, key: str) -> str | None:
        """A string-valued key (run_id, weights_sha256, data_fingerprint, data_sha256, ...), None if absent."""
        v = self.raw.get(key)
        return v if isinstance(v, str) else None

    @property
    def skipped_checkpoints(self) -> list[str]:
        return [str(s) for s in self.raw.get("skipped_checkpoints") or []]


# ---------------------------------------------------------------------- checkpoints
def ckpt_path(ckpt_dir: Path, step: int) -> Path:
    return Path(ckpt_dir) / f"step-{step:08d}.ckpt"


def checksum_path(ckpt: Path) -> Path:
    return ckpt.with_name(ckpt.name + ".sha256")


def write_checksum(ckpt: Path) -> None:
    atomic_write_text(checksum_path(ckpt), f"{sha256_file(ckpt)}  {ckpt.name}\n")


def why_invalid(ckpt: Path) -> str | None:
    """None for a checkpoint whose checksum matches its bytes, else the reason it cannot be used."""
    try:
        expected = checksum_path(ckpt).read_text().split()[0]
    except FileNotFoundError:
        return "no .sha256 beside it (the writer was stopped before it finished)"
    except IndexError:
        return "its .sha256 is empty"
    if not ckpt.is_file():
        return "not a file"
    if sha256_file(ckpt) != expected:
        return f"its {ckpt.stat().st_size:,} bytes do not match its .sha256 (truncated or corrupt)"
    return None


def is_valid(ckpt: Path) -> bool:
    return why_invalid(ckpt) is None


def list_checkpoints(ckpt_dir: Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint file, newest first, valid or not."""
    d = Path(ckpt_dir)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := CKPT_RE.match(p.name))]
    return sorted(found, reverse=True)


def newest_valid_checkpoint(
    ckpt_dir: Path, *, remove_invalid: bool = True, skipped: list[str] | None = None
) -> tuple[int, Path] | None:
    """The newest checkpoint whose checksum matches. Invalid newer ones are removed (with their checksum) so that
    pruning by step never keeps a broken file in place of a good one; each one skipped is said on stderr (and
    appended to `skipped`): a resume from an older step than expected must never be silent."""
    for step, p in list_checkpoints(ckpt_dir):
        reason = why_invalid(p)
        if reason is None:
            return step, p
        msg = f"checkpoint {p} skipped: {reason}" + ("; removed" if remove_invalid else "")
        print(f"[ant train] {msg}", file=sys.stderr, flush=True)
        if skipped is not None:
            skipped.append(msg)
        if remove_invalid:
            p.unlink(missing_ok=True)
            checksum_path(p).unlink(missing_ok=True)
    return None


def prune_checkpoints(ckpt_dir: Path, keep: int = 2) -> None:
    for _, p in list_checkpoints(ckpt_dir)[keep:]:
        p.unlink(missing_ok=True)
        checksum_path(p).unlink(missing_ok=True)
    remove_dead_tmp(Path(ckpt_dir))


def remove_dead_tmp(folder: Path) -> None:
    """Remove the `.<name>.<random>.<pid>.tmp` files (ant.fsio's atomic writes) of processes that are gone: a
    killed writer leaves one, and a completed run folder must not keep it."""
    for tmp in Path(folder).glob(".*.tmp"):  # left by a process killed while writing
        if not _pid_alive(tmp):
            tmp.unlink(missing_ok=True)


def _pid_alive(tmp: Path) -> bool:
    try:
        pid = int(tmp.name.rsplit(".", 2)[-2])
    except (ValueError, IndexError):
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True
