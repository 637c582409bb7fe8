"""ant.fsio: atomic writes leave the old file or the new one, never a temp file; locks exclude other processes
and die with their holder."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ant import fsio
from ant.status import FINISHED, RunStatus


def test_atomic_writes_replace_whole_files_and_leave_no_temp(tmp_path):
    p = tmp_path / "sub" / "a.json"  # the folder is made
    fsio.atomic_write_json(p, {"x": 1}, indent=2)
    assert p.read_text() == '{\n  "x": 1\n}\n'
    assert oct(p.stat().st_mode & 0o777) == "0o644"  # readable by everyone, unlike mkstemp's 0o600
    fsio.atomic_write_text(p, "short")
    assert p.read_text() == "short"

    def fail(tmp):
        tmp.write_bytes(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        fsio.atomic_write_with(p, fail)
    assert p.read_text() == "short"  # the old file is untouched
    assert sorted(x.name for x in p.parent.iterdir()) == ["a.json"]


def test_read_json_raises_without_a_default(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"cut": ')
    assert fsio.read_json(bad, default=None) is None
    assert fsio.read_json(tmp_path / "absent.json", default={}) == {}
    with pytest.raises(json.JSONDecodeError):
        fsio.read_json(bad)
    with pytest.raises(FileNotFoundError):
        fsio.read_json(tmp_path / "absent.json")


def test_lock_excludes_another_process_and_is_freed_when_it_dies(tmp_path):
    lock = tmp_path / "x.lock"
    code = f"from ant import fsio; import sys; l = fsio.file_lock({str(lock)!r}); l.__enter__(); print('held'); "
    code += "sys.stdout.flush(); sys.stdin.read()"
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(fsio.LockBusy, match="x.lock"), fsio.file_lock(lock, blocking=False):
            pass
    finally:
        holder.kill()  # no release: the kernel drops the lock with the process
        holder.wait()
    first, second = fsio.file_lock(lock, blocking=False), fsio.file_lock(lock, blocking=False)
    with first, pytest.raises(fsio.LockBusy), second:  # a second lock object in this process conflicts too
        pass
    assert lock.exists() and os.path.getsize(lock) == 0


def test_status_strings_are_the_ones_on_disk():
    assert json.dumps([RunStatus.COMPLETED, RunStatus.FAILED]) == '["completed", "failed"]'
    assert "diverged" in FINISHED and "running" not in FINISHED
