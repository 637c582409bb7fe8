"""How far each run of a sweep has got, read from its run folder while it trains: the columns `ant sweep --status`
adds (step, last val loss, tokens/s, age of the newest metric, the code's commit) and the sweep-level line the
local executor prints (runs done/running/failed, tokens done, ETA).

Sources, cheapest first. A finished run's summary.json (already read by FolderScan) has its step, final val loss
and tokens/s. A run that is not finished rewrites metrics.parquet at every evaluation (ant.train), so its newest
row is read from there, three columns only, and the file's mtime is the age of its newest metric: a run whose age
keeps growing is stalled. Without a readable metrics.parquet, the summary a checkpoint wrote ("running") is used.
Only unfinished runs open a parquet file, so a 10,000-run sweep that is mostly done stays cheap. The commit is the
last entry of env.json (a list, one entry per start of the run; ant.train writes it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ant import runfolder
from ant.sweep.fmt import fmt_num, fmt_time

LIVE_COLUMNS = ("step", "tokens", "val_loss", "tokens_per_s")


@dataclass
class Live:
    step: int | None = None
    tokens: int | None = None
    val_loss: float | None = None
    tokens_per_s: float | None = None
    age_s: float | None = None  # seconds since the newest metric was written
    commit: str | None = None  # git commit of the project at the run's last start; "+" when the tree was dirty


def last_metrics(run_dir: Path, now: float | None = None) -> Live | None:
    """The newest step, tokens and tokens/s and the newest measured val loss in metrics.parquet, or None when
    there is no readable file (not written yet, or not a parquet file)."""
    import pyarrow.parquet as pq

    path = run_dir / runfolder.METRICS
    try:
        mtime = os.stat(path).st_mtime
        f = pq.ParquetFile(path)
        cols = [c for c in LIVE_COLUMNS if c in f.schema_arrow.names]
        table = f.read(columns=cols)
    except (OSError, ValueError):  # pyarrow's ArrowInvalid is a ValueError
        return None
    if table.num_rows == 0:
        return None
    data = {c: table.column(c).to_pylist() for c in cols}

    def newest(col: str) -> Any:
        return next((v for v in reversed(data.get(col, [])) if v is not None and v == v), None)  # v == v: not NaN

    return Live(newest("step"), newest("tokens"), newest("val_loss"), newest("tokens_per_s"), _age(now, mtime))


def _age(now: float | None, written: float) -> float:
    # A file written after the scan took its `now` (a run writing while --status reads) is fresh, not from the
    # future: age 0, never negative.
    return max(0.0, (now or time.time()) - written)


def from_summary(summary: dict[str, Any], now: float | None = None, mtime: float | None = None) -> Live:
    """The same figures from summary.json: finished runs, or the checkpoint-time summary of an unfinished one."""
    age = None
    finished = summary.get("finished_at")
    if isinstance(finished, str):
        try:
            age = _age(now, dt.datetime.fromisoformat(finished).timestamp())
        except ValueError:
            age = None
    if age is None and mtime is not None:
        age = _age(now, mtime)
    return Live(summary.get("steps"), summary.get("tokens"), summary.get("final_val_loss"),
                summary.get("tokens_per_s"), age)  # fmt: skip


def env_commit(run_dir: Path) -> str | None:
    """The commit of the run's last start (env.json's last entry), "+" appended for a dirty tree; None without."""
    try:
        entries = json.loads((run_dir / runfolder.ENV).read_bytes())
    except (OSError, ValueError):
        return None
    last = entries[-1] if isinstance(entries, list) and entries else None
    commit = last.get("git_commit") if isinstance(last, dict) else None
    if not isinstance(commit, str) or not commit:
        return None
    return commit[:10] + ("+" if last.get("git_dirty") else "")


def live(run_dir: Path, summary: dict[str, Any] | None, finished: bool, now: float | None = None) -> Live:
    """What --status shows for one run folder (see the module docstring for the order of sources)."""
    now = now or time.time()
    out = None
    if not finished:
        out = last_metrics(run_dir, now)
    if out is None and summary:
        mtime = None
        if not finished:
            try:
                mtime = os.stat(run_dir / runfolder.SUMMARY).st_mtime
            except OSError:
                mtime = None
        out = from_summary(summary, now, mtime)
    out = out or Live()
    out.commit = env_commit(run_dir)
    return out


# ---------------------------------------------------------------------- the sweep-level line
def sweep_line(done: int, running: int, failed: int, total: int, tokens_done: float, tokens_total: float,
               rate: float | None) -> str:  # fmt: skip
    """`12/24 done, 2 running, 0 failed | 1.2M of 8.1M tokens (15%) | 2.0k tok/s | ETA 57m`"""
    share = f" ({tokens_done / tokens_total:.0%})" if tokens_total else ""
    left = max(0.0, tokens_total - tokens_done)
    eta = fmt_time(left / rate) if rate else "?"
    speed = f"{fmt_num(rate)} tok/s" if rate else "tok/s ?"
    return (f"{done}/{total} done, {running} running, {failed} failed | {fmt_num(tokens_done)} of "
            f"{fmt_num(tokens_total)} tokens{share} | {speed} | ETA {eta}")  # fmt: skip


class SweepMonitor:
    """The local executor's sweep-level line. On a terminal it is one line redrawn every `interval` seconds
    (cleared before each finished run's own line); otherwise (a log file, a pipe) it is printed as a plain line
    after each finished run and every `plain_every` seconds in between. Tokens done are the finished runs' tokens
    plus the running runs' newest metrics.parquet row; the rate counts only tokens trained since this sweep
    started (a resumed run's earlier tokens are not this sweep's throughput)."""

    def __init__(self, cfgs: list, workers: int, write=None, tty: bool | None = None, interval: float = 1.0,
                 plain_every: float = 60.0):  # fmt: skip
        import sys

        self.dirs = {c.run_id(): c.run_dir() for c in cfgs}
        self.budget = {c.run_id(): c.train.tokens for c in cfgs}
        self.workers = workers
        self.stream = sys.stdout
        self.write = write or self.stream.write
        self.tty = self.stream.isatty() if tty is None else tty
        self.interval = interval if self.tty else min(interval * 5, plain_every)
        self.plain_every = plain_every
        self.done: dict[str, dict[str, Any]] = {}  # run_id -> its result (status, tokens)
        self.start_tokens = sum(self._metric_tokens(r) for r in self.dirs)
        self.t0 = self.last_plain = time.time()
        self.drawn = False

    def _metric_tokens(self, run_id: str) -> int:
        got = last_metrics(self.dirs[run_id]) if self.dirs[run_id].is_dir() else None
        return int(got.tokens or 0) if got else 0

    def finished(self, result: dict[str, Any]) -> None:
        self.done[result.get("run_id", "?")] = result

    def line(self, running: list[str]) -> str:
        tokens = sum(int(r.get("tokens") or 0) for r in self.done.values())
        tokens += sum(self._metric_tokens(r) for r in running if r in self.dirs and r not in self.done)
        elapsed = time.time() - self.t0
        trained = tokens - self.start_tokens
        rate = trained / elapsed if elapsed > 0 and trained > 0 else None
        failed = sum(r.get("status") == "failed" for r in self.done.values())
        ok = len(self.done) - failed
        return sweep_line(ok, min(len(running), self.workers), failed, len(self.dirs), tokens,
                          sum(self.budget.values()), rate)  # fmt: skip

    def clear(self) -> None:
        """Before another line is printed: a terminal's status line is wiped, so the two do not mix."""
        if self.tty and self.drawn:
            self.write("\r\x1b[K")
            self.drawn = False

    def tick(self, running: list[str], force: bool = False) -> None:
        if self.tty:
            self.write("\r\x1b[K" + "sweep: " + self.line(running))
            self.stream.flush()
            self.drawn = True
        elif force or time.time() - self.last_plain >= self.plain_every:
            self.write("sweep: " + self.line(running) + "\n")
            self.stream.flush()
            self.last_plain = time.time()
