"""Lower layers never import higher ones (README, Layout; docs/design.md): models know nothing of Lightning or
the config glue; data knows nothing of models; train knows nothing of sweeps; laws read run folders, not live
objects (no torch, no models); ant.analysis (figures, fits, the study) may import laws and sweep, and nothing
below it imports ant.analysis (the `ant` command names it only as a sub-command).

Two checks: every import statement in each package's files, lazy ones inside functions included (read from the
source, so a late import cannot hide), and what importing every module of a package actually loads, in a fresh
interpreter (so an import through a shared module such as ant.config counts too).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ANT = ROOT / "ant"

# package -> module prefixes it must never import
FORBIDDEN = {
    "models": (
        "ant.analysis",
        "ant.config",
        "ant.data",
        "ant.train",
        "ant.sweep",
        "ant.laws",
        "lightning",
        "optuna",
        "submitit",
    ),
    "data": ("ant.analysis", "ant.models", "ant.train", "ant.sweep", "ant.laws", "lightning", "optuna", "submitit"),
    "train": ("ant.analysis", "ant.sweep", "ant.laws", "optuna", "submitit"),
    "sweep": ("ant.analysis",),
    "laws": ("ant.analysis", "ant.models", "ant.data", "ant.train", "ant.sweep", "torch", "lightning"),
}


def imports(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in a file under ROOT, relative ones resolved against its
    package; `source` replaces the file's text."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out += [(node.lineno, mod)] + [(node.lineno, f"{mod}.{a.name}") for a in node.names if mod == "ant"]
    return out


def hits(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_import_reader_sees_lazy_and_relative_imports():
    src = "import os\nfrom . import sizes\nfrom ..data import tokens\ndef f():\n    from ant import train\n"
    src += "    import lightning.pytorch as pl\n"
    found = {m for _, m in imports(ANT / "models" / "probe.py", source=src)}
    assert {"ant.models", "ant.data", "ant.train", "lightning.pytorch"} <= found, found
    assert hits("lightning.pytorch", FORBIDDEN["models"]) and not hits("ant.modelsx", ("ant.models",))


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_file_imports_a_higher_layer(package):
    bad = [f"{p.relative_to(ROOT)}:{line} imports {m}"
           for p in sorted((ANT / package).rglob("*.py")) for line, m in imports(p)
           if hits(m, FORBIDDEN[package])]  # fmt: skip
    assert not bad, "\n".join(bad)


def test_nothing_below_the_analysis_imports_it():
    below = [p for p in sorted(ANT.rglob("*.py")) if "analysis" not in p.relative_to(ANT).parts]
    bad = [f"{p.relative_to(ROOT)}:{line}" for p in below for line, m in imports(p)
           if hits(m, ("ant.analysis", "analysis", "notebooks", "tests"))]  # fmt: skip
    assert not bad, bad


_LOADED = """
import importlib, json, pkgutil, sys
import ant.{pkg} as p
for m in pkgutil.walk_packages(p.__path__, "ant.{pkg}."):
    importlib.import_module(m.name)
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize("package", ["models", "data", "laws"])
def test_importing_a_package_loads_no_higher_layer(package):
    # train is left out: Lightning is its job, and the file check above covers its sweep/laws imports
    r = subprocess.run([sys.executable, "-c", _LOADED.format(pkg=package)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout.strip().splitlines()[-1])
    bad = [m for m in loaded if hits(m, FORBIDDEN[package])]
    assert not bad, f"importing ant.{package} loads {bad}"
