"""Recoveries that must not be silent, and disks that must not decide a run's fate (issue 14, item 7):
- a truncated newest checkpoint is skipped *by name and reason* (stderr and summary.json), and the run resumes
  from the older one;
- a disk that is full from the start leaves summary.json saying "failed" with the reason, never "running";
- checkpoints are staged beside their target: a system temp dir that cannot take a file does not fail the run.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile

import pytest

from ant.train import io, train
from tests.train.conftest import tiny_cfg
from tests.train.test_resume import stop_at

SHORT = {"tokens": 40 * 8 * 64, "ckpt_interval": 10, "eval_interval": 20, "diag_interval": 20}


def test_truncated_newest_checkpoint_is_named_and_the_older_one_used(tmp_path, byte_tokens, monkeypatch, capsys):
    stop_at(monkeypatch, 25)
    stopped = train(tiny_cfg(tmp_path, train=SHORT), progress=False)
    assert [s for s, _ in io.list_checkpoints(stopped.run_dir / "checkpoints")] == [25, 20]
    monkeypatch.undo()
    newest = io.ckpt_path(stopped.run_dir / "checkpoints", 25)
    with open(newest, "r+b") as f:  # a disk error or a non-atomic copy cut it short
        f.truncate(newest.stat().st_size // 2)
    capsys.readouterr()
    resumed = train(tiny_cfg(tmp_path, train=SHORT), progress=False)
    err = capsys.readouterr().err
    assert f"checkpoint {newest} skipped: its " in err and "do not match its .sha256 (truncated or corrupt)" in err
    s = resumed.summary
    assert s["status"] == "completed" and s["resumed_from_step"] == 20
    assert len(s["skipped_checkpoints"]) == 1 and str(newest) in s["skipped_checkpoints"][0]


def test_checkpoints_do_not_go_through_the_system_temp_dir(tmp_path, byte_tokens, monkeypatch):
    """Lightning's default stages every checkpoint in tempfile.gettempdir() and copies it over; with that dir
    unusable (full, or gone) the run failed although its own disk had room."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-such-tmp"))
    r = train(tiny_cfg(tmp_path / "runs", train=SHORT), progress=False)
    assert r.status == "completed"
    ckpts = io.list_checkpoints(r.run_dir / "checkpoints")
    assert ckpts and all(io.is_valid(p) for _, p in ckpts)
    assert not (tmp_path / "no-such-tmp").exists()


@contextlib.contextmanager
def small_tmpfs(path, size_kb: int):
    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {r.stderr.decode().strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="a real full disk needs a mount (root)")
def test_disk_full_from_the_start_leaves_status_failed_not_running(tmp_path, byte_tokens):
    """A 256 kB file system with 12 kB left: config.yaml and the first summary fit, the first metrics.parquet (at
    the step-0 evaluation) does not, nor does a second copy of the summary carrying the traceback. The summary must
    still end "failed", with the reason."""
    with small_tmpfs(tmp_path / "disk", 256) as disk:
        with open(disk / "filler", "wb") as f:
            f.write(b"\0" * (244 * 1024))
        with pytest.raises(OSError):
            train(tiny_cfg(disk / "runs", train=SHORT), progress=False)
        (run_dir,) = (disk / "runs").iterdir()
        s = io.read_json(run_dir / "summary.json")
        assert s is not None and s["status"] == "failed", s
        assert "OSError" in s["error"] and "No space left on device" in s["error"], s["error"]
