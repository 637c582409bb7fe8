"""Layers point one way (docs/design.md, "Layers"): a module imports its own layer and lower ones, never a higher
one nor a sibling of its own rank (models, data and laws know nothing of each other); no import circles among
ant modules; and a function-level `from ant ...` import says on its line (or the line above) why it is not at
the top of the file. The third-party rules stay: models and data know nothing of Lightning, optuna or submitit,
laws read run folders (no torch, no Lightning), train knows nothing of optuna or submitit.

Read from the source (every import, lazy ones inside functions included, so a late import cannot hide), plus
what importing each low package actually loads in a fresh interpreter (an import through a shared module counts).
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

# Low -> high. Each rank holds one or more groups (tuples of module prefixes); a group may import itself and any
# group of a lower rank, but no higher rank and no other group of its own rank.
RANKS: list[list[tuple[str, ...]]] = [
    # `ant`: the package's __init__ (version); archs and schedules: the registries the config's vocabularies read
    [("ant", "ant.errors", "ant.decode", "ant.fsio", "ant.status", "ant.archs", "ant.schedules")],
    [("ant.config",)],
    [("ant.models",), ("ant.data",), ("ant.laws",), ("ant.optimizers",)],
    [("ant.perf",), ("ant.recipe",)],
    [("ant.train",)],
    [("ant.bench", "ant.bench_lightning", "ant.bench_report")],
    [("ant.sweep",)],
    [("ant.analysis",)],
    [("ant.cli", "ant.__main__")],
]

# Upward imports that stay, each with its reason. Everything else here is a violation.
ALLOWED_UPWARD: set[tuple[str, str]] = set()

# Known violations in files other helpers of issue 12 are rewriting right now; the integrator empties this list
# once their work has landed (each entry: importing module -> imported module).
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()

# Function-level `from ant ...` imports without a comment saying why, in files other helpers of issue 12 were
# rewriting (analysis, data, perf, sweep cli/executors/plan/tune, train): (path, imported module). The integrator
# empties this list: move each import to the top of its file, or say on its line why it must stay late.
KNOWN_UNEXPLAINED: set[tuple[str, str]] = set()

THIRD_PARTY_FORBIDDEN = {
    "models": ("lightning", "optuna", "submitit"),
    "data": ("lightning", "optuna", "submitit"),
    "train": ("optuna", "submitit"),
    "laws": ("torch", "lightning"),
}


# ---------------------------------------------------------------------- reading imports
def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(ANT.rglob("*.py"))}


def imports(path: Path, source: str | None = None) -> list[tuple[int, str, bool, bool]]:
    """(line, absolute module name, inside a function, explained by a comment) of every import in a file under
    ROOT; relative ones resolved against its package; `source` replaces the file's text. Imports under
    `if TYPE_CHECKING:` are left out (they never run)."""
    text = path.read_text() if source is None else source
    lines = text.splitlines()
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                continue
            nested = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                if isinstance(child, ast.Import):
                    mods = [a.name for a in child.names]
                else:
                    mod = child.module or ""
                    if child.level:
                        base = package.split(".")[: len(package.split(".")) - child.level + 1]
                        mod = ".".join(base + ([child.module] if child.module else []))
                    # `from pkg import sub` imports pkg.sub; `from mod import name` imports mod
                    subs = [f"{mod}.{a.name}" for a in child.names]
                    mods = [s if s in MODULES else mod for s in subs] if mod.startswith("ant") else [mod, *subs]
                above = lines[child.lineno - 2].strip() if child.lineno > 1 else ""
                said = [above] if above.startswith("#") else []  # a comment line right above, or one on the import
                said += [s.split("#", 1)[1] for s in lines[child.lineno - 1 : child.end_lineno] if "#" in s]
                explained = any(s.strip("# ") and not s.strip("# ").startswith("noqa") for s in said)
                out.extend((child.lineno, m, in_function, explained) for m in mods)
            visit(child, nested)

    visit(ast.parse(text, str(path)), False)
    return out


def resolve(module: str) -> str | None:
    """The ant module (file) an imported name lives in: `ant.train.io` -> itself, `ant.train.train` -> ant.train."""
    while module and module not in MODULES:
        module = module.rpartition(".")[0]
    return module or None


def place(module: str) -> tuple[int, int]:
    """(rank, group) of an ant module: the longest matching prefix wins."""
    best = (-1, 0, 0)
    for r, groups in enumerate(RANKS):
        for g, prefixes in enumerate(groups):
            for p in prefixes:
                if (module == p or module.startswith(p + ".")) and len(p) > best[0]:
                    best = (len(p), r, g)
    assert best[0] >= 0, f"{module} is in no layer: add it to RANKS (and docs/design.md)"
    return best[1], best[2]


def edges() -> list[tuple[str, str, Path, int, bool, bool]]:
    """(importer, imported ant module, file, line, in a function, explained) of every import between modules."""
    out = []
    for name, path in MODULES.items():
        for line, m, in_function, explained in imports(path):
            target = resolve(m) if m == "ant" or m.startswith("ant.") else None
            if target and target != name:
                out.append((name, target, path, line, in_function, explained))
    return out


def upward(src: str, dst: str) -> bool:
    (rs, gs), (rd, gd) = place(src), place(dst)
    return rd > rs or (rd == rs and gd != gs)


# ---------------------------------------------------------------------- the checks
def test_the_import_reader_sees_lazy_relative_and_explained_imports():
    src = "import os\nfrom . import sizes\nfrom ..data import tokens\ndef f():\n    from ant import train\n"
    src += "    # why: heavy\n    import lightning.pytorch as pl\n    from ant import sweep  # noqa: F401\n"
    found = {m: (lazy, said) for _, m, lazy, said in imports(ANT / "models" / "probe.py", source=src)}
    assert {"ant.models.sizes", "ant.data.tokens", "ant.train", "lightning.pytorch"} <= set(found), found
    assert found["ant.data.tokens"] == (False, False) and found["ant.train"] == (True, False)
    assert found["lightning.pytorch"] == (True, True) and found["ant.sweep"] == (True, False)  # noqa is no reason
    assert upward("ant.models.gpt", "ant.data.tokens") and upward("ant.config", "ant.models")
    assert not upward("ant.train.run", "ant.models.gpt") and not upward("ant.data.cli", "ant.data.tokens")


def test_every_module_has_a_layer():
    for name in MODULES:
        place(name)


def test_no_module_imports_a_higher_layer_or_a_sibling():
    found = {(s, d): f"{p.relative_to(ROOT)}:{line} imports {d}" for s, d, p, line, _, _ in edges() if upward(s, d)}
    stale = sorted(k for k in ALLOWED_UPWARD | KNOWN_VIOLATIONS if k not in found)
    assert not stale, f"listed as exceptions but no longer imported (remove them): {stale}"
    bad = [msg for k, msg in sorted(found.items()) if k not in ALLOWED_UPWARD | KNOWN_VIOLATIONS]
    assert not bad, "\n".join(bad)


def test_no_import_circles():
    """Module-level imports only (function-level ones run after every module has loaded)."""
    graph: dict[str, set[str]] = {}
    for s, d, _, _, in_function, _ in edges():
        if not in_function:
            graph.setdefault(s, set()).add(d)
    circles = [c for c in _strongly_connected(graph) if len(c) > 1]
    assert not circles, circles


def test_function_level_ant_imports_say_why():
    found = {
        (str(p.relative_to(ROOT)), d): f"{p.relative_to(ROOT)}:{line} imports {d} inside a function, no comment"
        for _, d, p, line, in_function, explained in edges()
        if in_function and not explained
    }
    bad = [msg for k, msg in sorted(found.items()) if k not in KNOWN_UNEXPLAINED]
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("package", sorted(THIRD_PARTY_FORBIDDEN))
def test_no_file_imports_a_forbidden_library(package):
    forbidden = THIRD_PARTY_FORBIDDEN[package]
    bad = [f"{p.relative_to(ROOT)}:{line} imports {m}"
           for p in sorted((ANT / package).rglob("*.py")) for line, m, _, _ in imports(p)
           if any(m == f or m.startswith(f + ".") for f in forbidden)]  # fmt: skip
    assert not bad, "\n".join(bad)


def test_nothing_outside_ant_is_imported_by_it():
    bad = [f"{p.relative_to(ROOT)}:{line}" for p in MODULES.values() for line, m, _, _ in imports(p)
           if m.split(".")[0] in ("analysis", "notebooks", "tests")]  # fmt: skip
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
    # train is left out: Lightning is its job, and the source checks above cover it
    r = subprocess.run([sys.executable, "-c", _LOADED.format(pkg=package)], cwd=ROOT, capture_output=True,
                       text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout.strip().splitlines()[-1])
    mine = f"ant.{package}"
    bad = [m for m in loaded if (m == "ant" or m.startswith("ant.")) and resolve(m) and upward(mine, resolve(m))]
    bad += [m for m in loaded if any(m == f or m.startswith(f + ".") for f in THIRD_PARTY_FORBIDDEN[package])]
    assert not bad, f"importing ant.{package} loads {bad}"


def _strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative enough for a few hundred modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_config_imports_without_torch():
    """Anything may read a config (litgpt's rule): ant.config loads no torch and no ant module above the primitives."""
    code = "import json, sys, ant.config; print(json.dumps(sorted(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout.strip().splitlines()[-1])
    bad = [m for m in loaded if m.split(".")[0] in ("torch", "lightning", "numpy", "pandas")]
    bad += [m for m in loaded if m.startswith("ant.") and place(resolve(m))[0] > place("ant.config")[0]]
    assert not bad, f"importing ant.config loads {bad}"


@pytest.mark.parametrize("module", ["ant.train", "ant.train.branches", "ant.sweep.plan", "ant.bench"])
def test_planning_and_benching_do_not_load_lightning(module):
    """Lightning (~4 s to import on these machines) loads only when a run starts: the sweep planner, --status and
    the bench import ant.train without paying for it (ant/train/__init__.py, run.py's late imports)."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    loaded = json.loads(r.stdout.strip().splitlines()[-1])
    assert not [m for m in loaded if m.split(".")[0] == "lightning"], f"importing {module} loads Lightning"
