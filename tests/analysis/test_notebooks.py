"""Every notebook in notebooks/ runs headlessly (nbclient) against a synthetic results folder given by the
environment variable ANT_RESULTS, which the notebooks read."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path, synth_results, monkeypatch):
    monkeypatch.setenv("ANT_RESULTS", str(synth_results))
    monkeypatch.setenv("ANT_NB_BOOT", "5")  # keep the reference bootstrap short in tests
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors


def test_scaling_laws_notebook_exists():
    assert (ROOT / "notebooks" / "scaling_laws.ipynb") in NOTEBOOKS
