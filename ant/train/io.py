"""Crash-safe files of a run folder: atomic writes, checkpoints with sha256 checksums, the summary.

A checkpoint `checkpoints/step-00000120.ckpt` counts only when `step-00000120.ckpt.sha256` exists and matches
its bytes. The checksum is written after the checkpoint has been moved into place, so a process killed at any
moment leaves either a valid pair or something `valid_checkpoints()` ignores (a missing or wrong checksum, a
truncated file, a leftover `.tmp`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from ant import fsio
from ant.fsio import atomic_write_bytes, atomic_write_json, atomic_write_text, atomic_write_with

# Re-exported: run-folder code (run, callbacks, branches, the sweep) writes through io.atomic_write_*.
__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_with"]

CKPT_RE = re.compile(r"^step-(\d{8})\.ckpt$")


def _jsonable(v: Any) -> Any:
    # JSON has no NaN/inf: a loss that is not a number is written as null.
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


def write_json(path: Path, obj: dict[str, Any]) -> None:
    atomic_write_json(path, _jsonable(obj), indent=2)


def write_json_in_place(path: Path, obj: dict[str, Any]) -> None:
    """Last resort when write_json fails for lack of space: truncating the file frees its blocks before the new
    bytes need them, where a temp file needs room for both. Not atomic: a crash mid-write leaves a file read_json
    treats as absent, which is still better than a summary that says "running" for a run that failed."""
    with open(path, "w") as f:
        f.write(json.dumps(_jsonable(obj), indent=1) + "\n")
        f.flush()
        os.fsync(f.fileno())


def read_json(path: Path) -> dict[str, Any] | None:
    """A run folder's JSON file, or None when it is missing or cut short."""
    return fsio.read_json(path, default=None)


# ---------------------------------------------------------------------- checkpoints
def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


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
