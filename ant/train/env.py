"""`env.json` in a run folder: what code and environment produced it, one entry per start of the run.

A JSON list: the first start, then one entry per resume (appended, never overwritten), each with started_at (ISO
UTC), git_commit and git_dirty of the checkout `ant` is imported from (null outside a git checkout, e.g. a pip
install), argv, hostname, device and the versions of python, torch, lightning, ant, numpy and CUDA.
"""

from __future__ import annotations

import datetime as _dt
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

import ant
from ant import fsio, runfolder

ENV_FILE = runfolder.ENV


def _git(*args: str) -> str | None:
    root = Path(ant.__file__).resolve().parents[1]
    try:
        r = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def environment(device: str) -> dict[str, Any]:
    import lightning

    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain", "--untracked-files=no") if commit else None
    return {
        "started_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": commit,
        "git_dirty": bool(status) if status is not None else None,
        "argv": list(sys.argv),
        "hostname": socket.gethostname(),
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "lightning": lightning.__version__,
            "ant": ant.__version__,
            "numpy": np.__version__,
            "cuda": torch.version.cuda,
        },  # fmt: skip
    }


def record_start(run_dir: Path, device: str) -> list[dict[str, Any]]:
    """Append this start to the run folder's env.json (atomically) and return the whole list."""
    path = Path(run_dir) / ENV_FILE
    entries = fsio.read_json(path, default=[])
    entries = [*(entries if isinstance(entries, list) else []), environment(device)]
    fsio.atomic_write_json(path, entries, indent=1)
    return entries
