"""The status a run folder's summary.json records, one enum for every reader and writer.

A `StrEnum`: members are the very strings on disk (`RunStatus.COMPLETED == "completed"`, `json.dumps` writes
"completed"), so run folders written before this enum read the same. yaml.safe_dump does not know str
subclasses: write `str(status)` there.
"""

from __future__ import annotations

import enum


class RunStatus(enum.StrEnum):
    COMPLETED = "completed"  # trained the whole token budget
    DIVERGED = "diverged"  # stopped by the divergence guard: a result, not an error
    FAILED = "failed"  # an exception; summary.json holds its text
    RUNNING = "running"  # being trained, or checkpointed and stopped on request (`interrupted: true`)


# States a re-run leaves alone (train() returns the summary, the sweep skips the run).
FINISHED = (RunStatus.COMPLETED, RunStatus.DIVERGED)
