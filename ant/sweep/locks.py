"""Run locks and the attempt log: what keeps two sweeps from training the same run twice.

Every run has a lock file `<out_dir>/.locks/<run_id>.lock`. A worker takes it (`ant.fsio.file_lock`, non-blocking)
before it trains and holds it until the run returns. flock (not an O_EXCL marker file) because the kernel drops
the lock when the holder dies: a killed or requeued SLURM job never leaves a stale lock behind, and the next
attempt resumes the run from its checkpoints.

Next to it, `<run_id>.attempts` gets one JSON line per attempt that actually started training (pid, host, job id,
start, end, outcome). It is the audit trail that the duplicate-run test reads, and where a run that failed before
train() could write its own summary gets its error recorded.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from pathlib import Path
from typing import Any

from ant.fsio import LockBusy, file_lock

LOCK_DIR = ".locks"


def lock_dir(out_dir: str | Path) -> Path:
    return Path(out_dir) / LOCK_DIR


class RunLock:
    """Non-blocking exclusive lock on one run: `with RunLock(dir, run_id) as ok: if ok: ...`."""

    def __init__(self, directory: str | Path, run_id: str):
        self.path = Path(directory) / f"{run_id}.lock"
        self._held: contextlib.ExitStack | None = None

    def acquire(self) -> bool:
        held = contextlib.ExitStack()
        try:
            held.enter_context(file_lock(self.path, blocking=False))
        except LockBusy:
            return False
        self.path.write_text(f"{socket.gethostname()} {os.getpid()}\n")  # who holds it, for a person looking
        self._held = held
        return True

    def release(self) -> None:
        if self._held is not None:
            self._held.close()
            self._held = None

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def is_locked(directory: str | Path, run_id: str) -> bool:
    """True while some process holds the run's lock (i.e. the run is being trained right now)."""
    path = Path(directory) / f"{run_id}.lock"
    if not path.exists():
        return False
    try:
        with file_lock(path, blocking=False):
            return False
    except LockBusy:
        return True


def record_attempt(directory: str | Path, run_id: str, **fields: Any) -> None:
    """Append one JSON line. O_APPEND writes of one short line are atomic on local file systems."""
    path = Path(directory) / f"{run_id}.attempts"
    path.parent.mkdir(parents=True, exist_ok=True)
    row = {"time": time.time(), "host": socket.gethostname(), "pid": os.getpid(), **fields}
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(row, default=str) + "\n").encode())
    finally:
        os.close(fd)


def read_attempts(directory: str | Path, run_id: str) -> list[dict[str, Any]]:
    path = Path(directory) / f"{run_id}.attempts"
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short by a crash: skip it, keep the rest
            continue
    return rows
