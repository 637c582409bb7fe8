"""Grids with `schedule: wsd` and `budgets:` (issue 11, C6): each point of the other axes becomes one wsd family
that shares its warm-up and evaluation steps, the dry run shows the families and what they cost, and the local
executor trains each family as one unit (trunk first, then branches that train only their decay)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ant.cli import main
from ant.errors import ConfigError
from ant.sweep.executors import work_units
from ant.sweep.grid import Grid
from ant.train.branches import find_families
from tests.sweep.conftest import write_grid

ROOT = Path(__file__).resolve().parents[2]
BUDGETS = [4096, 8192, 16384]  # 16, 32 and 64 steps of 8 x 32 tokens


def wsd_grid(tmp_path, corpus, tokens: bool = False, **over) -> Path:
    """write_grid's tiny grid with `schedule: wsd` and `budgets:` in place of its tokens axis."""
    g = write_grid(tmp_path / "g.yaml", corpus, tmp_path, **{"schedule": "wsd", "budgets": BUDGETS, **over})
    if not tokens:
        d = yaml.safe_load(g.read_text())
        d["grid"].pop("tokens")
        g.write_text(yaml.safe_dump(d))
    return g


def load(path: Path) -> Grid:
    return Grid.from_yaml(path)


def test_budgets_make_one_family_per_point(tmp_path, corpus):
    runs = load(wsd_grid(tmp_path, corpus)).expand()
    assert len(runs) == 6 and {r.optim.schedule for r in runs} == {"wsd"}
    families = find_families(runs)
    assert [[r.steps for r in f] for f in families] == [[64, 32, 16], [64, 32, 16]]  # trunk first
    for fam in families:
        arch = fam[0].model.arch
        # warm-up in steps from the smallest budget (GPT+ 10 % of 16; anGPT none), intervals shared
        assert {r.optim.warmup_steps for r in fam} == {2 if arch == "gptplus" else 0}
        assert len({(r.train.eval_interval, r.train.diag_interval, r.train.log_interval) for r in fam}) == 1
    # a cosine axis next to wsd: the cosine runs are ordinary separate runs at the same budgets
    mixed = load(wsd_grid(tmp_path, corpus, schedule=["cosine", "wsd"])).expand()
    assert len(mixed) == 12
    assert sorted(len(f) for f in find_families(mixed)) == [1] * 6 + [3, 3]


def test_budgets_need_wsd_and_exclude_tokens(tmp_path, corpus):
    with pytest.raises(ConfigError, match=r"^grid.budgets: .*no run of this product has schedule wsd"):
        load(wsd_grid(tmp_path, corpus, schedule="cosine")).expand()
    with pytest.raises(ConfigError, match="grid.tokens: give exactly one of tokens, tokens_per_param and budgets"):
        Grid.from_yaml(wsd_grid(tmp_path, corpus, tokens=True))


def test_dry_run_shows_families_and_their_cost(tmp_path, corpus, capsys):
    g = wsd_grid(tmp_path, corpus, arch=["angpt"])
    assert main(["sweep", str(g), "--dry-run"]) == 0
    out = capsys.readouterr().out
    head = next(ln for ln in out.splitlines() if ln.startswith("run_id"))
    assert "family" in head.split()
    rows = [ln.split() for ln in out.splitlines() if ln.startswith("angpt-")]
    fam_col = head.split().index("family")
    # 64 steps: the trunk; 32 and 16 steps (decays of 6 and 3 steps) branch at steps 26 and 13
    assert sorted(r[fam_col] for r in rows) == ["F1", "F1", "F1"] and "trunk" in out and "@26" in out and "@13" in out
    # trained: 64 + 6 + 3 = 73 steps' FLOPs instead of 64 + 32 + 16 = 112
    assert "wsd families: 1, 3 runs" in out and f"({73 / 112:.2f}x)" in out
    assert not (tmp_path / "runs").exists()


def test_work_units_keep_a_finished_trunk_with_its_branches(tmp_path, corpus):
    runs = load(wsd_grid(tmp_path, corpus, arch=["angpt"])).expand()
    trunk, mid, short = find_families(runs)[0]
    units = work_units([short], runs)  # the trunk and mid are done: the unit still starts from the trunk
    assert [[c.run_id() for c in u] for u in units] == [[trunk.run_id(), short.run_id()]]


@pytest.mark.slow
def test_local_sweep_trains_each_family_once_trunk_first(tmp_path, corpus):
    g = wsd_grid(tmp_path, corpus, arch=["angpt"])
    p = subprocess.run([sys.executable, "-m", "ant.cli", "sweep", str(g)], cwd=ROOT, capture_output=True, text=True,
                       timeout=600)  # fmt: skip
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    assert "3 completed" in p.stdout and "1 wsd families" in p.stdout
    trunk, mid, short = find_families(load(g).expand())[0]
    summaries = {c.run_id(): json.loads((c.run_dir() / "summary.json").read_text()) for c in (trunk, mid, short)}
    assert summaries[trunk.run_id()]["trained_steps"] == 64 and summaries[trunk.run_id()]["branched_from"] is None
    for c, start in ((mid, 26), (short, 13)):
        s = summaries[c.run_id()]
        assert s["status"] == "completed" and s["branched_from"] == trunk.run_id() and s["branch_step"] == start
        assert s["trained_steps"] == c.steps - start
    again = subprocess.run([sys.executable, "-m", "ant.cli", "sweep", str(g)], cwd=ROOT, capture_output=True,
                           text=True, timeout=300)  # fmt: skip
    assert again.returncode == 0 and "0 to run, 3 done" in again.stdout, again.stdout
