"""Layers point one way (docs/design.md, "Layers"): a module imports its own layer and lower ones, never a higher
one nor a sibling of its own rank (models, data and laws know nothing of each other), late imports included; no
import circles among ant modules, counting function-level and TYPE_CHECKING imports too (a late import only
hides a circle: whoever reads or moves the code still meets it); and a function-level `from ant ...` import says
on its line (or the line above) why it is not at the top of the file. The third-party rules stay: models and data
know nothing of Lightning, optuna or submitit, laws read run folders (no torch, no Lightning), train knows nothing
of optuna or submitit; and `ant sweep --dry-run` of the paper's grid loads no torch.

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
    # (schedules: pure functions of the step that train, the recipe and laws read); runfolder: the run folder's
    # format; identity: what a run id hashes
    [
        (
            "ant",
            "ant.errors",
            "ant.decode",
            "ant.fsio",
            "ant.status",
            "ant.archs",
            "ant.schedules",
            "ant.identity",
            "ant.runfolder",
        )
    ],
    [("ant.config",)],
    [("ant.models",), ("ant.data",), ("ant.laws",), ("ant.optimizers",)],
    [("ant.perf",), ("ant.recipe",)],
    [("ant.train",)],
    [("ant.bench",)],
    [("ant.sweep",)],
    [("ant.analysis",)],
    [("ant.cli", "ant.__main__")],
]

# Upward imports that stay, each with its reason. Everything else here is a violation.
ALLOWED_UPWARD: set[tuple[str, str]] = set()

# Known violations in files other helpers of issue 12 are rewriting right now; the integrator empties this list
# once their work has landed (each entry: importing module -> imported module).
KNOWN_VIOLATIONS: set[tuple[str, str]] = set()

# Edges of import circles that stay for now, each with its reason (importing module, imported module). The circle
# test leaves them out and fails when one is no longer imported (remove it then).
KNOWN_CIRCLE_EDGES: set[tuple[str, str]] = set()

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


def imports(path: Path, source: str | None = None, typing: bool = False) -> list[tuple[int, str, bool, bool]]:
    """(line, absolute module name, inside a function, explained by a comment) of every import in a file under
    ROOT; relative ones resolved against its package; `source` replaces the file's text. Imports under
    `if TYPE_CHECKING:` are left out (they never run) unless `typing`."""
    text = path.read_text() if source is None else source
    lines = text.splitlines()
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if not typing and isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
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


def edges(sources: dict[str, str] | None = None, typing: bool = False) -> list[tuple[str, str, Path, int, bool, bool]]:
    """(importer, imported ant module, file, line, in a function, explained) of every import between modules;
    `sources` replaces the text of the modules it names, `typing` counts TYPE_CHECKING imports too."""
    out = []
    for name, path in MODULES.items():
        for line, m, in_function, explained in imports(path, (sources or {}).get(name), typing):
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


def test_every_layer_names_modules_that_exist():
    """A prefix that matches no module (a file renamed or merged) would let a new file of that name in unchecked."""
    prefixes = [p for groups in RANKS for g in groups for p in g]
    named = [a for pair in ALLOWED_UPWARD | KNOWN_VIOLATIONS | KNOWN_CIRCLE_EDGES for a in pair]
    missing = [p for p in prefixes + named if not any(m == p or m.startswith(p + ".") for m in MODULES)]
    assert not missing, f"no module under ant/ is named {missing}: remove or rename them here"


def test_no_module_imports_a_higher_layer_or_a_sibling():
    found = {(s, d): f"{p.relative_to(ROOT)}:{line} imports {d}" for s, d, p, line, _, _ in edges() if upward(s, d)}
    stale = sorted(k for k in ALLOWED_UPWARD | KNOWN_VIOLATIONS if k not in found)
    assert not stale, f"listed as exceptions but no longer imported (remove them): {stale}"
    bad = [msg for k, msg in sorted(found.items()) if k not in ALLOWED_UPWARD | KNOWN_VIOLATIONS]
    assert not bad, "\n".join(bad)


def import_graph(sources: dict[str, str] | None = None) -> dict[str, set[str]]:
    """Module -> the ant modules it imports anywhere (top, function level, TYPE_CHECKING), KNOWN_CIRCLE_EDGES out."""
    graph: dict[str, set[str]] = {}
    for s, d, _, _, _, _ in edges(sources, typing=True):
        if (s, d) not in KNOWN_CIRCLE_EDGES:
            graph.setdefault(s, set()).add(d)
    return graph


def circles(graph: dict[str, set[str]]) -> list[str]:
    """One line per import circle: its modules and the imports that close it (file:line, late ones marked)."""
    where: dict[tuple[str, str], list[str]] = {}
    for s, d, p, line, in_function, _ in edges(typing=True):
        where.setdefault((s, d), []).append(f"{p.relative_to(ROOT)}:{line}" + (" (late)" if in_function else ""))
    out = []
    for c in (c for c in _strongly_connected(graph) if len(c) > 1):
        inside = [f"{s} -> {d} ({', '.join(sorted(set(where.get((s, d), ['changed source']))))})"
                  for s in c for d in sorted(graph.get(s, ())) if d in c]  # fmt: skip
        out.append(f"circle {c}: " + "; ".join(inside))
    return out


def test_no_import_circles_counting_late_imports():
    """A function-level import runs after every module has loaded, so Python never trips on the circle it closes,
    but the modules still cannot be understood, tested or moved apart: circles count every import."""
    every = {(s, d) for s, d, *_ in edges(typing=True)}
    stale = sorted(KNOWN_CIRCLE_EDGES - every)
    assert not stale, f"listed in KNOWN_CIRCLE_EDGES but no longer imported (remove them): {stale}"
    found = circles(import_graph())
    assert not found, "\n".join(found)


def test_a_late_import_that_closes_a_circle_is_caught():
    """The check above can fail: give ant.train.branches back the late import of ant.train.run it had."""
    text = MODULES["ant.train.branches"].read_text() + "\n\ndef _f():\n    from ant.train.run import train  # late\n"
    found = circles(import_graph({"ant.train.branches": text}))
    assert any("ant.train.branches -> ant.train.run" in c for c in found), found


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


# Modules (prefixes) that still import torch during the paper grid's dry run, each with the change that removes it.
# Any other module that does fails the test below, and so does an entry no module matches any more (remove it).
DRY_RUN_TORCH_PENDING: dict[str, str] = {}

_DRY_RUN = """
import builtins, contextlib, io, json, sys
real, importers = builtins.__import__, set()
def hook(name, globals=None, locals=None, fromlist=(), level=0):
    caller = (globals or {}).get("__name__") or ""
    if (name == "torch" or name.startswith("torch.")) and caller.split(".")[0] == "ant":
        importers.add(caller)
    return real(name, globals, locals, fromlist, level)
builtins.__import__ = hook
from ant.cli import main
with contextlib.redirect_stdout(io.StringIO()):
    rc = main(["sweep", "sweeps/paper.yaml", "--dry-run"])
print(json.dumps({"rc": rc, "importers": sorted(importers), "torch": "torch" in sys.modules}))
"""


def test_a_dry_run_of_the_paper_grid_imports_no_torch():
    """Planning 528 runs is config arithmetic: torch (~1-5 s to import here) loads only when a run trains."""
    r = subprocess.run([sys.executable, "-c", _DRY_RUN], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout.strip().splitlines()[-1])
    assert doc["rc"] == 0, r.stderr
    pending = [m for m in doc["importers"] if any(m == p or m.startswith(p + ".") for p in DRY_RUN_TORCH_PENDING)]
    bad = sorted(set(doc["importers"]) - set(pending))
    assert not bad, f"`ant sweep sweeps/paper.yaml --dry-run` imports torch in {bad}"
    stale = [p for p in DRY_RUN_TORCH_PENDING if not any(m == p or m.startswith(p + ".") for m in pending)]
    assert not stale, f"these no longer import torch in a dry run: remove them from DRY_RUN_TORCH_PENDING: {stale}"
    assert doc["torch"] == bool(pending), "torch was loaded, but by no ant module's import statement"
