"""notebooks/loss_curves.ipynb runs headless against a results folder (with runs, and empty)."""

from __future__ import annotations

import nbformat
from nbclient import NotebookClient

from tests.train.conftest import REPO

NOTEBOOK = REPO / "notebooks" / "loss_curves.ipynb"


def execute(results, monkeypatch) -> str:
    monkeypatch.setenv("ANT_RESULTS", str(results))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(REPO)}}).execute()
    texts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            texts.append(out.get("text", "") + str(out.get("data", {}).get("text/plain", "")))
            assert out.get("output_type") != "error", out
    images = sum("image/png" in out.get("data", {}) for c in nb.cells for out in c.get("outputs", []))
    return "\n".join(texts), images


def test_notebook_plots_the_runs(learned_runs, monkeypatch):
    results, runs = learned_runs
    text, images = execute(results, monkeypatch)
    assert "2 run folders, 2 with metrics" in text
    assert images >= 2  # per-architecture panels, per-size panels
    for r in runs.values():
        assert r.run_dir.name in text  # the run table
    assert "angpt" in text and "gptplus" in text


def test_notebook_survives_junk_and_no_finished_runs(tmp_path, monkeypatch):
    # a folder without summary, a half-written summary, a failed run without metrics
    (tmp_path / "runs" / "not-a-run").mkdir(parents=True)
    (tmp_path / "runs" / "half").mkdir()
    (tmp_path / "runs" / "half" / "summary.json").write_text('{"run_id": "ha')
    (tmp_path / "runs" / "nometrics").mkdir()
    (tmp_path / "runs" / "nometrics" / "summary.json").write_text(
        '{"run_id": "nometrics", "arch": "angpt", "size": "tiny1", "status": "failed", "final_val_loss": null}'
    )
    text, _ = execute(tmp_path, monkeypatch)
    assert "1 run folders, 0 with metrics" in text
    assert "no completed runs yet" in text
