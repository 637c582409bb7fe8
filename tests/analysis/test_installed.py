"""The analysis ships with the package (issue 13): a plain, non-editable `pip install .` into a fresh virtualenv,
then `ant fit`, `ant figures` and `ant report` from an unrelated folder on a small results folder.

Nothing is downloaded: the fresh venv has no pip of its own and sees this project's .venv site-packages through a
.pth line (the dependencies and pip/setuptools, already installed there), and pip runs with --no-index and
--no-build-isolation. The .pth line appends that folder after the fresh venv's own site-packages, and a .pth line
does not run the .pth files inside the folder it names (the editable install's finder), so `ant` imports from
the fresh venv's copy, which the test checks.
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    # without PYTHONPATH: a checkout on it would be imported instead of the installed copy
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, f"{' '.join(cmd)}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.mark.slow
def test_pip_install_then_fit_figures_report_from_anywhere(synth_results, tmp_path):
    # the source as a checkout holds it, without this tree's build leftovers (egg-info, caches)
    src = tmp_path / "src"
    shutil.copytree(ROOT / "ant", src / "ant", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)

    env_dir = tmp_path / "fresh"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    fresh_site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                           tmp_path).stdout.strip())  # fmt: skip
    (fresh_site / "ant-deps.pth").write_text(f"{site.getsitepackages()[0]}\n")
    _run([str(py), "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-build-isolation", str(src)],
         tmp_path)  # fmt: skip
    shutil.rmtree(src)  # the installed copy must not need the source tree

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = _run([str(py), "-c", "import ant.analysis, ant.laws.reference as r; print(ant.analysis.__file__)"],
                 elsewhere).stdout.strip()  # fmt: skip
    assert Path(where).is_relative_to(fresh_site), where  # not this checkout through the editable finder

    results = tmp_path / "results"
    shutil.copytree(synth_results, results)
    ant = str(env_dir / "bin" / "ant")
    assert _run([ant, "--version"], elsewhere).stdout.startswith("ant ")
    fit = _run([ant, "fit", "--results", str(results), "--boot", "2", "--workers", "1"], elsewhere).stdout
    # the reference fit reads Epoch's Chinchilla points from the package data (ant/laws/assets)
    assert "reference Chinchilla fit skipped" not in fit
    _run([ant, "figures", "--results", str(results), "--boot", "2"], elsewhere)
    _run([ant, "report", "--results", str(results)], elsewhere)
    _run([str(py), "-m", "ant.analysis.fig3_speedup", "--results", str(results)], elsewhere)
    assert (results / "fits" / "chinchilla.json").is_file()
    assert (results / "REPORT.md").read_text().startswith("#")
    assert {p.suffix for p in (results / "figures").iterdir()} >= {".png", ".pdf"}
    assert list(elsewhere.iterdir()) == []  # nothing written where it ran


def test_no_sys_path_insertions_or_late_imports():
    """Everything imports as the installed package does: no file puts a folder on sys.path or needs an import
    after code (E402) for it."""
    needles = ("sys.path." + "insert", "sys.path." + "append", "noqa: " + "E402")
    files = [p for d in ("ant", "tests", "scripts", "notebooks") for p in sorted((ROOT / d).rglob("*"))
             if p.suffix in (".py", ".ipynb", ".sh") and "__pycache__" not in p.parts]  # fmt: skip
    bad = [f"{p.relative_to(ROOT)}: {n}" for p in files for n in needles if n in p.read_text(errors="ignore")]
    assert not bad, bad
