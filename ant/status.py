"""The status a run folder's summary.json records: RunStatus and FINISHED, which live with the rest of the run
folder's format in ant.runfolder; kept as a name for the modules and tests that import them from here."""

from __future__ import annotations

from ant.runfolder import FINISHED, RunStatus

__all__ = ["FINISHED", "RunStatus"]
