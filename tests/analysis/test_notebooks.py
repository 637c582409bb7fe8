"""Both notebooks run headlessly (nbclient); scaling_laws.ipynb shows exactly the numbers that `ant fit` writes
to results/fits/ (which REPORT.md is built from) and uses synthetic data only when asked for.

Where the results are: each notebook's own `resolve_results` (taken from the notebook, not copied) is unit-tested
with the kernel's directory in the repository root and in notebooks/, ANT_RESULTS absolute and relative: all four
give one folder. Each notebook is then executed once per distinct folder, from notebooks/ with a relative
ANT_RESULTS (the case that once fell back to synthetic data silently), not once per way of naming it."""

from __future__ import annotations

import ast
import json
import math
import os
import shutil
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from ant.analysis.sections import FITTED
from tests.analysis.conftest import ANALYSIS_GROUP, FIT_ARGS

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
# small Chinchilla bootstraps, no fit on the published points: the same settings for fit_laws.py and the notebook
NB_ENV = {"ANT_NB_BOOT": FIT_ARGS[1], "ANT_NB_WORKERS": "1", "ANT_NB_REFERENCE": "0", "MPLBACKEND": "Agg"}
pytestmark = ANALYSIS_GROUP  # one worker builds the shared fitted folder
CWDS = {"root": ROOT, "notebooks": NOTEBOOKS}


@pytest.fixture
def fitted(fitted_results) -> Path:
    """A results folder after `make fit-laws figures report` (fits/*.json, REPORT.md), shared per session."""
    return fitted_results


@pytest.fixture(scope="module")
def few_runs(synth_results, tmp_path_factory) -> Path:
    """A results folder with every 20th synthetic run: loss_curves.ipynb draws every run, and path handling is what
    its tests check."""
    res = tmp_path_factory.mktemp("nb_few") / "results"
    for run in sorted((synth_results / "runs").iterdir())[::20]:
        shutil.copytree(run, res / "runs" / run.name)
    return res


def execute(name: str, cwd: Path, results: str | None, monkeypatch, until: str | None = None) -> nbformat.NotebookNode:
    """Run notebooks/<name> in a kernel started in `cwd` with ANT_RESULTS=`results` (unset: None); with `until`,
    only the cells up to the first code cell that contains it."""
    for k, v in NB_ENV.items():
        monkeypatch.setenv(k, v)
    if results is None:
        monkeypatch.delenv("ANT_RESULTS", raising=False)
    else:
        monkeypatch.setenv("ANT_RESULTS", results)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    if until is not None:
        last = next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and until in c.source)
        nb.cells = nb.cells[: last + 1]
    NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(cwd)}}).execute()
    return nb  # a failing cell raises CellExecutionError with its traceback


def text(nb) -> str:
    return "".join(o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "stream")


def shown_numbers(nb) -> dict[str, dict]:
    """name -> the JSON document a notebook displayed with IPython.display.JSON(numbers, root=name)."""
    out = {}
    for c in nb.cells:
        for o in c.get("outputs", []):
            if o.output_type == "display_data" and "application/json" in o.data:
                out[o.metadata["application/json"]["root"]] = o.data["application/json"]
    return out


def same(a, b, path: str = "") -> list[str]:
    """Where two JSON documents differ (floats to 1e-9 relative); empty when equal."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} vs {sorted(b)}"]
        return [d for k in a for d in same(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in same(x, y, f"{path}[{i}]")]
    numbers = (int, float)
    if isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and not isinstance(b, bool):
        return [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else [f"{path}: {a} vs {b}"]
    return [] if a == b else [f"{path}: {a!r} vs {b!r}"]


def results_arg(results: Path, cwd: Path, how: str) -> str:
    if how == "absolute":
        return str(results)
    rel = os.path.relpath(results, ROOT)  # relative to the repository root
    if cwd != ROOT:  # from notebooks/ that path does not exist: the notebook must fall back to the root
        assert not (cwd / rel).exists()
    return rel


def resolver(name: str):
    """The notebook's own `resolve_results(value) -> Path` (scaling_laws: with its repo_root(cwd) as the root):
    the functions are taken from the notebook's code cell that assigns its results folder."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    src = next(c.source for c in nb.cells if c.cell_type == "code" and "def resolve_results" in c.source)
    tree = ast.parse("\n".join(ln for ln in src.splitlines() if not ln.startswith("%")))
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ("resolve_results", "repo_root")]
    ns: dict = {"Path": Path}
    exec(compile(ast.Module(body=defs, type_ignores=[]), name, "exec"), ns)  # noqa: S102 - the notebook's code
    if "repo_root" in ns:
        return lambda value: ns["resolve_results"](value, ns["repo_root"](Path.cwd().resolve()))
    return ns["resolve_results"]


@pytest.mark.parametrize("name", ["scaling_laws.ipynb", "loss_curves.ipynb"])
@pytest.mark.parametrize("where", CWDS)
@pytest.mark.parametrize("how", ["absolute", "relative"])
def test_results_folder_is_the_same_from_every_start(name, where, how, tmp_path, monkeypatch):
    results = ROOT / "tests" / ".nb-resolve-probe" / "results" if how == "relative" else tmp_path / "results"
    cwd = CWDS[where]
    monkeypatch.chdir(cwd)
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    assert any("= resolve_results(" in c.source for c in nb.cells), name  # the folder the notebook reads
    value = str(results) if how == "absolute" else results_arg(results, cwd, how)
    assert resolver(name)(value) == results.resolve()
    assert resolver(name)("results") == (ROOT / "results").resolve()  # the default, from either folder


def test_scaling_laws_shows_the_numbers_of_fits_and_report(fitted, monkeypatch):
    # from notebooks/, ANT_RESULTS relative to the root: the case that used to fall back to synthetic data
    nb = execute("scaling_laws.ipynb", NOTEBOOKS, results_arg(fitted, NOTEBOOKS, "relative"), monkeypatch)
    out = text(nb)
    assert f"results folder: {fitted.resolve()}" in out
    assert "SYNTHETIC demo" not in out
    n_runs = sum(1 for p in (fitted / "runs").iterdir() if p.is_dir())
    assert f"{n_runs} runs" in out
    shown = shown_numbers(nb)
    assert set(shown) >= {s.name for s in FITTED}
    for name, numbers in shown.items():
        diff = same(numbers, json.loads((fitted / "fits" / f"{name}.json").read_text()))
        assert not diff, (name, diff[:5])
    assert out.count("same numbers as fits/") == len(shown) and "DIFFERS" not in out
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= sum(s.plot is not None for s in FITTED)  # every fitted section's figure, shown inline
    # REPORT.md prints those same numbers, e.g. Table 2's overhead of anGPT (+3.00 % in the synthetic bench)
    rows = {r["arch"]: r for r in next(iter(shown["table2_overhead"]["per_file"].values()))["rows"]}
    assert f"{rows['angpt']['rel_increase_pct']:+.2f}%" in (fitted / "REPORT.md").read_text()


def test_loss_curves_finds_the_runs(few_runs, monkeypatch):
    nb = execute("loss_curves.ipynb", NOTEBOOKS, results_arg(few_runs, NOTEBOOKS, "relative"), monkeypatch)
    out = text(nb)
    n_runs = sum(1 for p in (few_runs / "runs").iterdir() if p.is_dir())
    assert n_runs >= 5
    assert f"run folders from {few_runs.resolve() / 'runs'}" in out
    assert f"{n_runs} run folders, {n_runs} with metrics" in out


def test_no_runs_gives_a_message_not_synthetic_numbers(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-results"
    nb = execute("scaling_laws.ipynb", NOTEBOOKS, str(missing), monkeypatch)
    out = text(nb)
    assert f"No runs in {missing}" in out and "make sweep-small" in out
    assert "SYNTHETIC demo" not in out
    shown = shown_numbers(nb)
    assert shown and all(not v for d in shown.values() for k, v in d.items() if k.startswith("per_"))
    assert not missing.exists()  # nothing written where there were no runs
    out = text(execute("loss_curves.ipynb", NOTEBOOKS, str(missing), monkeypatch))
    assert f"no run folders in {missing / 'runs'}" in out and "make sweep-small" in out


@pytest.mark.slow
def test_synthetic_data_only_when_asked(monkeypatch):
    # where the data comes from is decided in the first cells; the fits after them are test_scaling_laws_...'s
    out = text(execute("scaling_laws.ipynb", ROOT, "synthetic", monkeypatch, until="runs, done = ctx.runs"))
    assert "SYNTHETIC demo data (asked for)" in out
    assert " — SYNTHETIC" in out  # the run count line names the data too
