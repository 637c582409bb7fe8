"""C4 with the LR tuned per point (ant.analysis.study_v2_scan, part v2-isoflop-scan): the committed grid is the
batch-per-budget points on one head-dim family at three LRs each, a point reads as its best LR with edges flagged,
and on CONSTRUCTED runs whose LR optimum moves from point to point the scan recovers the exponent that a single LR
per point hides."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ant.analysis import study_v2, study_v2_c4
from ant.analysis import study_v2_scan as scan
from ant.analysis.study_v2_headdim import TWINS
from tests.analysis.test_study_v2_claims import ALPHA, BETA, _row, budget_table, study

ROOT = Path(__file__).resolve().parents[2]


def test_the_scan_grid_is_the_budget_points_on_one_head_dim_family_at_three_lrs():
    """sweeps/study2/isoflop_scan.yaml as committed is what scan_grid_text writes from the committed runs; the
    head-dim-8 rungs' middle LR is v2-isoflop-budget's seed-0 run (the same run id: trained once, reused)."""
    from ant.sweep.grid import expand, load_grid

    runs = pd.read_parquet(ROOT / study_v2.V2 / "runs.parquet")
    text = scan.scan_grid_text(runs)
    assert (ROOT / scan.SCAN_GRID).read_text() == text
    doc = yaml.safe_load(text)
    assert doc["executor"]["pack"] == 3 and len(doc["grids"]) == 40
    budget = {(q["arch"], TWINS.get(q["size"], q["size"]), q["tokens"]): q
              for q in study_v2.isoflop_budget_points(runs)}  # fmt: skip
    for g in doc["grids"]:
        q = budget[g["arch"][0], g["size"][0], g["tokens"][0]]
        assert g["size"][0] not in TWINS and g["batch_size"] == [q["batch_size"]] and g["seed"] == [0]
        assert g["lr"] == pytest.approx([q["lr"] / 2, q["lr"], 2 * q["lr"]], rel=5e-3)  # 3 significant digits
    ids = {c.run_id() for c in expand(load_grid(ROOT / scan.SCAN_GRID))}
    budget_ids = {c.run_id() for c in expand(load_grid(ROOT / study_v2.ISOFLOP_BUDGET_GRID)) if c.train.seed == 0}
    assert len(ids) == 120 and len(ids & budget_ids) == 20  # the d-rungs' 20 points (both archs)


def scan_table(shift: dict | None = None, noise: float = 0.0, spread: float = 0.45, curve: float = 0.03, seed: int = 0):
    """The batch-per-budget design's surface (budget_table) on the scan points: each point's loss is the surface's
    plus `curve` per octave squared of LR away from the point's own optimum, which sits up to `spread` octaves from
    the rule's LR (`shift`: (arch, size, tokens) -> octaves, to put one far off; under half an octave the best of
    the three LRs is the middle one)."""
    runs, pts, bpts = budget_table()
    surface = {(x.arch, x.size, x.tokens): (x.num_params, x.final_val_loss)
               for x in runs[runs["batch_size"].eq(8)].itertuples()}  # fmt: skip
    rng = np.random.default_rng(seed)
    rows = []
    for q in scan.scan_points(bpts):
        rung = {v: k for k, v in TWINS.items()}.get(q["size"], q["size"])
        n, loss = surface[q["arch"], rung, q["tokens"]]
        u = (shift or {}).get((q["arch"], q["size"], q["tokens"]), rng.uniform(-spread, spread))
        for lr in q["lrs"]:
            off = np.log2(lr / q["lr"]) - u
            rows.append(_row(q["arch"], q["size"], n, q["tokens"], lr, q["batch_size"], 0,
                             loss + curve * off**2 + noise * rng.standard_normal()))  # fmt: skip
    return runs, pts, bpts, pd.DataFrame(rows)


def test_a_point_reads_as_its_best_lr_and_an_edge_optimum_is_named():
    _, _, bpts, rows = scan_table()
    pts = scan.scan_points(bpts)
    far = (pts[3]["arch"], pts[3]["size"], pts[3]["tokens"])
    _, _, _, rows = scan_table(shift={far: -3.0})
    r, notes = scan.scan_ladder(rows, pts)
    assert len(r) == 40 and r["seed"].eq(0).all() and r["lrs_tried"].eq(3).all()
    best = rows.groupby(["arch", "size", "tokens"])["final_val_loss"].min()
    assert np.allclose(r.set_index(["arch", "size", "tokens"])["final_val_loss"].loc[best.index], best)
    edge = r[r["lr_edge"]]
    # the other points' optima lie within half an octave of their middle LR: interior
    assert [(x.arch, x.size, x.tokens) for x in edge.itertuples()] == [far]
    assert "at 1 of 40 points" in notes[-1] and far[1] in notes[-1]
    # a level with a point that has not finished its three LRs is not read yet, and the note says so
    lv = pts[3]["level"]
    gone = rows.index[(rows["arch"] == far[0]) & (rows["size"] == far[1]) & (rows["tokens"] == far[2])][0]
    part, notes = scan.scan_ladder(rows.drop(index=gone), pts)
    assert lv not in set(part["level"]) and len(part) == 40 - sum(p["level"] == lv for p in pts)
    assert f"{lv:.3g}" in notes[0]
    assert scan.scan_ladder(rows.iloc[:0], pts)[0].empty


def test_c4_headline_reads_the_scan_and_it_recovers_what_one_lr_per_point_hides(tmp_path, monkeypatch):
    """Each point's LR optimum sits up to 1.4 octaves from the rule's LR: the rule's LR alone (the middle of each
    scan) is off by up to 0.05 * 1.4^2 = 0.1 in loss, point to point; the best of three LRs by 0.05 * 0.5^2 or less,
    and the exponent is recovered within its interval."""
    monkeypatch.setattr(study_v2_c4, "A3_BOOT", 5)
    runs, pts, bpts, rows = scan_table(noise=0.002, spread=1.4, curve=0.05)
    c = study_v2_c4.c4_v2(study(tmp_path, pd.concat([runs, rows], ignore_index=True)), pts, bpts)
    assert c.numbers["design"] == scan.DESIGN and scan.DESIGN in c.scale
    truth = BETA / (ALPHA + BETA)
    mid = rows[np.isclose(rows["lr"], [q["lr"] for q in scan.scan_points(bpts) for _ in scan.FACTORS])]
    _, one_lr = study_v2_c4.isoflop_both(scan.scan_ladder(mid.assign(status="completed"), [
        q | {"lrs": [q["lr"]]} for q in scan.scan_points(bpts)])[0])  # fmt: skip
    for arch in ("gptplus", "angpt"):
        iso = c.numbers["per_arch"][arch]["isoflop"]
        assert iso["determined"], iso["reasons"]
        assert iso["ci"][0] <= truth <= iso["ci"][1]
    assert iso["lack_of_fit_sd"] < one_lr["lack_of_fit_sd"]
    text = "\n".join(c.section)
    assert f"| {scan.DESIGN} | GPT+ |" in text and "the best LR is an edge" in text and "fourth IsoFLOP design" in text
    assert "head-dim offset removed" not in text  # no twins in this table: no offset, and none for the scan design


def test_the_tuned_design_never_takes_the_scans_runs_for_its_own(tmp_path):
    """The scan's runs at the head-dim-8 rungs sit at v2-isoflop's points at other (batch, LR) cells: the tuned design
    must not read them as its runs or fallbacks (it did, for one report: anGPT d24L2's diverged points)."""
    runs, pts, bpts, rows = scan_table()
    tuned_rows = runs[runs["batch_size"].eq(8)]
    r = study_v2_c4.tuned_design_runs(study(tmp_path, pd.concat([runs, rows], ignore_index=True)), pts, bpts)
    assert len(r) == len(tuned_rows) and r["batch_size"].eq(8).all()


def tilt(rows: pd.DataFrame, arch: str, level_tokens: dict, slope: float, bend: float = 0.0) -> pd.DataFrame:
    """The rows of `arch` at one level (`level_tokens`: size -> tokens) moved by slope * log N + bend * log N ** 2
    (every LR alike: the LR curve keeps its shape), so that the level's profile has a chosen form."""
    rows = rows.copy()
    at = rows["arch"].eq(arch) & pd.Series(
        [level_tokens.get(s) == t for s, t in zip(rows["size"], rows["tokens"])], index=rows.index
    )
    x = np.log(rows.loc[at, "num_params"].astype(float) / 5e4)
    rows.loc[at, "final_val_loss"] += slope * x + bend * x**2
    return rows


def test_a_level_without_an_interior_vertex_gets_the_familys_next_size_beyond_the_right_end():
    _, _, bpts, rows = scan_table()
    laws = {a: (lambda n: 8.0, lambda n: 0.01) for a in ("gptplus", "angpt")}
    pts = scan.scan_points(bpts)
    assert scan.size_extension_points(rows, pts, laws) == []  # the surface's own profiles: every vertex inside
    levels = sorted({q["level"] for q in pts})
    at = {lv: {q["size"]: q["tokens"] for q in pts if q["level"] == lv and q["arch"] == "gptplus"} for lv in levels}
    # GPT+: rising steeply at the 4th level (the vertex below its smallest size), falling at the 5th (above the
    # largest); anGPT: a downward parabola at the 1st level whose lower end is the smallest size
    tilted = tilt(tilt(rows, "gptplus", at[levels[3]], 0.5), "gptplus", at[levels[4]], -0.5)
    tilted = tilt(tilted, "angpt", at[levels[0]], 0.05, bend=-0.5)
    added = {(q["arch"], q["level"]): q for q in scan.size_extension_points(tilted, pts, laws)}
    assert set(added) == {("gptplus", levels[3]), ("gptplus", levels[4]), ("angpt", levels[0])}
    ladder = scan.FAMILY_LADDER

    def beyond(lv, low):
        sizes = sorted(at[lv], key=ladder.index)
        return ladder[ladder.index(sizes[0 if low else -1]) + (-1 if low else 1)]

    assert added["gptplus", levels[3]]["size"] == beyond(levels[3], True)
    assert added["gptplus", levels[4]]["size"] == beyond(levels[4], False)
    assert added["angpt", levels[0]]["size"] == "d16L1"  # tiny0h8 is that level's smallest
    q = added["gptplus", levels[4]]
    assert q["batch_size"] == 8 and q["lrs"] == [0.005, 0.01, 0.02] and q["level"] == levels[4]
    from ant.models.counts import flops_per_token

    assert q["tokens"] == round(levels[4] / flops_per_token("gptplus", q["size"], 256, study_v2.SEQ_LEN))


def test_the_committed_sizes_grid_is_what_the_rule_writes_from_the_committed_runs():
    runs = pd.read_parquet(ROOT / study_v2.V2 / "runs.parquet")
    assert (ROOT / scan.SIZES_GRID).read_text() == scan.sizes_grid_text(runs)


def parabola_level(rows: pd.DataFrame, arch: str, tokens: dict, vertex: float) -> pd.DataFrame:
    """`rows` with one (arch, level)'s points (`tokens`: size -> requested tokens) moved so that each point's best
    LR lies on 1.8 + 0.05 (log N - log vertex)^2: a profile whose vertex is exactly `vertex`."""
    rows = rows.copy()
    for size, t in tokens.items():
        at = rows["arch"].eq(arch) & rows["size"].eq(size) & rows["tokens"].eq(t)
        n = float(rows.loc[at, "num_params"].iloc[0])
        rows.loc[at, "final_val_loss"] += 1.8 + 0.05 * np.log(n / vertex) ** 2 - rows.loc[at, "final_val_loss"].min()
    return rows


def test_a_vertex_with_one_size_on_a_side_gets_the_familys_next_size_there():
    """bracket_points: a level whose vertex has < 2 of its sizes on one side gets the next size beyond that end,
    a level with two a side gets nothing; the new point is the batch-per-budget design's at the level."""
    _, _, bpts, rows = scan_table()
    laws = {a: (lambda n: 8.0, lambda n: 0.01) for a in ("gptplus", "angpt")}
    pts = scan.scan_points(bpts)
    levels = sorted({q["level"] for q in pts})
    at = {(a, lv): {q["size"]: q["tokens"] for q in pts if q["level"] == lv and q["arch"] == a}
          for a in ("gptplus", "angpt") for lv in levels}  # fmt: skip
    n = {s: float(rows.loc[rows["size"].eq(s), "num_params"].iloc[0]) for s in rows["size"].unique()}

    def between(a, lv, i):  # a vertex between the level's i-th and (i+1)-th smallest sizes
        s = sorted(at[a, lv], key=n.get)
        return float(np.sqrt(n[s[i]] * n[s[i + 1]])), s

    moved, want = rows, {}
    for a in ("gptplus", "angpt"):
        for k, lv in enumerate(levels):
            i = (0, 1, 2)[k % 3] if len(at[a, lv]) == 4 else 1  # one below, two a side, one above
            v, s = between(a, lv, i)
            moved = parabola_level(moved, a, at[a, lv], v)
            ladder = scan.FAMILY_LADDER
            if i == 0 and ladder.index(s[0]) > 0:
                want[a, lv] = ladder[ladder.index(s[0]) - 1]
            elif i == len(s) - 2 and ladder.index(s[-1]) < len(ladder) - 1:
                want[a, lv] = ladder[ladder.index(s[-1]) + 1]
    assert scan.size_extension_points(moved, pts, laws) == []  # every vertex inside: the first rule adds nothing
    added = {(q["arch"], q["level"]): q for q in scan.design_stages(moved, bpts, laws)["bracket"]}
    assert {k: q["size"] for k, q in added.items()} == want and len(want) >= 4
    q = next(iter(added.values()))
    assert q["batch_size"] == 8 and q["lrs"] == [0.005, 0.01, 0.02]
    from ant.models.counts import flops_per_token

    assert q["tokens"] == round(q["level"] / flops_per_token("gptplus", q["size"], 256, study_v2.SEQ_LEN))


def test_the_committed_bracket_grid_is_what_the_rule_writes_from_the_committed_runs():
    runs = pd.read_parquet(ROOT / study_v2.V2 / "runs.parquet")
    assert (ROOT / scan.BRACKET_GRID).read_text() == scan.bracket_grid_text(runs)


def test_angpt_gets_its_highest_levels_sizes_one_level_up():
    """up_points: for anGPT only, the sizes of its highest scanned level at UP_LEVEL, at the batch-per-budget HPs of
    the laws and the scan's three LRs; the committed grid is what the rule writes."""
    _, _, bpts, rows = scan_table()
    laws = {a: (lambda n: 8.0, lambda n: 0.01) for a in ("gptplus", "angpt")}
    pts = scan.scan_points(bpts)
    top = max(q["level"] for q in pts)
    want = sorted((q["size"] for q in pts if q["arch"] == "angpt" and q["level"] == top), key=scan.FAMILY_LADDER.index)
    up = scan.design_stages(rows, bpts, laws)["up"]
    assert [q["size"] for q in up] == want and {q["arch"] for q in up} == {"angpt"}
    assert all(q["level"] == scan.UP_LEVEL > top and q["lrs"] == [0.005, 0.01, 0.02] for q in up)
    runs = pd.read_parquet(ROOT / study_v2.V2 / "runs.parquet")
    assert (ROOT / scan.UP_GRID).read_text() == scan.up_grid_text(runs)
