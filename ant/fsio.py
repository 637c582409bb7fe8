"""The one home of file primitives every layer shares: atomic writes, JSON reading, exclusive file locks.

Atomic write: the bytes go to a temp file in the target's folder (same file system, so the rename is atomic),
are fsynced, and `os.replace` moves them into place; a reader sees the old file or the new one, never half of
one, and a crash leaves at most a `.<name>.<random>.<pid>.tmp` that `ant.train.io.prune_checkpoints` recognises
by its pid. Argument order is always (path, data).

Locks are flock locks (the `filelock` package): the kernel drops them when the holder dies, so a killed or
requeued job never leaves a stale lock, and the lock file itself stays in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

MISSING: Any = object()  # read_json's "no default": raise instead


class LockBusy(RuntimeError):
    """A non-blocking `file_lock` found the lock held by another process (or another lock object)."""


def atomic_write_with(path: str | Path, write: Callable[[Path], None]) -> None:
    """Let `write(tmp_path)` produce the file (writers that want a path: parquet, torch.save), then fsync it and
    move it into place. The temp file is removed whatever happens."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the pid goes last so that a cleaner can tell a live writer's temp file from a dead one's
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".{os.getpid()}.tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it private; run folders and reports are for everyone to read
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    """torch.save(obj) atomically, through an open file: torch names the zip's root folder after a path it is given
    (the random temp name here), so bit-identical tensors hashed differently; through a file it is "archive"."""
    import torch

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(obj, f)

    atomic_write_with(path, write)


def check_out_dir(field: str, path: str | Path) -> None:
    """An output folder that can be made and written, checked before any process starts: `--out-dir /etc/passwd`
    was an exit 1 from a worker, after the plan had begun. A ConfigError (exit 2) naming `field` otherwise."""
    from ant.errors import ConfigError  # a sibling primitive: only this check needs it, not every atomic write

    p = Path(path)
    probe = p
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        what = "is a file" if probe == p else f"is below the file {probe}"
        raise ConfigError(field, f"{p} {what}, not a folder", "a folder that exists or can be made")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise ConfigError(field, f"{p}: {probe} is not writable", "a folder that exists or can be made")


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    atomic_write_with(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any, **json_kwargs: Any) -> None:
    """`json.dumps(obj, **json_kwargs)` plus a final newline, written atomically."""
    atomic_write_text(path, json.dumps(obj, **json_kwargs) + "\n")


def read_json(path: str | Path, default: Any = MISSING) -> Any:
    """The parsed JSON file. With a `default`, a missing or malformed file (a writer killed before the atomic
    writes existed, a file cut by a full disk) gives the default instead of raising."""
    try:
        return json.loads(Path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        if default is MISSING:
            raise
        return default


@contextlib.contextmanager
def file_lock(path: str | Path, *, blocking: bool = True) -> Iterator[None]:
    """Hold an exclusive flock on `path` (created with its folder if missing) for the `with` block. Blocking by
    default; with blocking=False a lock held elsewhere raises LockBusy at once. Two lock objects conflict even
    within one process, so one process cannot train the same run twice either."""
    import filelock  # ~35 ms to import: only the writers that lock pay for it, not `ant params`

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(path, timeout=-1 if blocking else 0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise LockBusy(f"{path} is held by another process") from None
    try:
        yield
    finally:
        lock.release()
