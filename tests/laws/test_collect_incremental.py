"""Incremental collect: only changed or new run folders are read again, and the tables equal a full read's.

The reference is the definition: read_run on every folder, rows into a frame, curves concatenated one by one
(what collect did before it had a manifest or a fast path). Every comparison is exact (check_exact, dtypes)."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from ant.laws.collect_curves import frame_schema, probe, read_curve
from ant.laws.synthetic import SynthLaw, write_run

C = importlib.import_module("ant.laws.collect")  # the module (ant.laws re-exports the function as `collect`)


def reference(results):
    rdir = C.runs_dir(results)
    rows, curves = [], []
    for p in sorted(p for p in rdir.iterdir() if p.is_dir() and not p.name.startswith(".")):
        try:
            row, curve = C.read_run(p)
        except ValueError:
            continue
        rows.append(row)
        if curve is not None and len(curve):
            curves.append(curve)
    return C._runs_table(rows), pd.concat(curves, ignore_index=True)


def same(got, want):
    pd.testing.assert_frame_equal(got[0], want[0], check_exact=True)
    pd.testing.assert_frame_equal(got[1], want[1], check_exact=True)


@pytest.fixture
def results(tmp_path):
    law = SynthLaw()
    root = tmp_path / "runs"
    for arch in ("angpt", "gptplus"):
        for seed in (0, 1, 2):
            write_run(root, law, arch=arch, size="tiny3", num_params=2_000_000, tokens=40_000_000, batch_size=8,
                      lr=3e-3, seed=seed)  # fmt: skip
    # a run without a summary yet, and one whose curve has a column no other run has
    p = write_run(root, law, arch="angpt", size="tiny4", num_params=4_000_000, tokens=8e7, batch_size=16, lr=1e-3)
    (p / "summary.json").unlink()
    p = write_run(root, law, arch="ngpt", size="tiny4", num_params=4_000_000, tokens=8e7, batch_size=16, lr=1e-3)
    m = pd.read_parquet(p / "metrics.parquet")
    m["noise_scale"] = np.arange(len(m), dtype=np.int64)
    m.to_parquet(p / "metrics.parquet", index=False)
    return tmp_path


@pytest.fixture
def reused(monkeypatch):
    """Whether each collect made curves.parquet from the previous one (ant.laws.collect_curves.reuse_file)."""
    import ant.laws.collect_curves as CC

    seen: list[bool] = []
    real = CC.reuse_file

    def spy(*a):
        data = real(*a)
        seen.append(data is not None)
        return data

    monkeypatch.setattr(CC, "reuse_file", spy)
    return seen


@pytest.fixture
def reads(monkeypatch):
    """The run folders collect reads (a wrapper around the real reader, which still does the work)."""
    seen: list[str] = []
    real = C._read_row

    def spy(run_dir):
        seen.append(run_dir.name)
        return real(run_dir)

    monkeypatch.setattr(C, "_read_row", spy)
    return seen


def touch_summary(run, **changes):
    s = json.loads((run / "summary.json").read_text())
    s.update(changes)
    tmp = run / ".summary.tmp"
    tmp.write_text(json.dumps(s))
    os.replace(tmp, run / "summary.json")  # as ant.train writes it: temp + rename


def test_full_collect_equals_the_per_run_definition(results):
    same(C.collect(results, full=True), reference(results))
    assert (results / C.MANIFEST).is_file()


def test_unchanged_tree_reads_nothing_and_gives_the_same_tables(results, reads):
    first = C.collect(results)
    n = len(reads)
    again = C.collect(results)
    assert len(reads) == n == 8  # the second call read no folder
    same(again, first)
    same(again, reference(results))


def test_changed_and_new_runs_are_read_and_the_rest_are_not(results, reads, reused):
    C.collect(results)
    reads.clear()
    runs = results / "runs"
    changed = next(runs.glob("angpt-tiny3-*-s1"))
    touch_summary(changed, final_val_loss=1.234)
    new = write_run(runs, SynthLaw(), arch="gptplus", size="tiny2", num_params=1e6, tokens=2e7, batch_size=4, lr=2e-3)
    (runs / "junk").mkdir()  # a broken folder is reported, as in a full read
    with pytest.warns(UserWarning, match="skipped 1 run folder"):
        got = C.collect(results)
    assert sorted(reads) == sorted([changed.name, new.name, "junk"])
    assert reused == [False, True]  # the first collect had no manifest; the second reused the old rows
    assert got[0].set_index("run_id").loc[changed.name, "final_val_loss"] == 1.234
    same(got, reference(results))  # the reference skips the broken folder as well
    # what it wrote reads back as a full rebuild's tables
    pd.testing.assert_frame_equal(pd.read_parquet(results / "curves.parquet"), got[1])


def test_removed_and_rewritten_curves(results, reads, reused):
    C.collect(results)
    runs = results / "runs"
    import shutil

    shutil.rmtree(next(runs.glob("gptplus-tiny3-*-s2")))
    run = next(runs.glob("angpt-tiny3-*-s0"))
    m = pd.read_parquet(run / "metrics.parquet").iloc[:5]
    m.to_parquet(run / "metrics.parquet", index=False)  # a run that restarted and has fewer rows now
    reads.clear()
    got = C.collect(results)
    assert reads == [run.name] and reused[-1]
    same(got, reference(results))


def test_manifest_not_used_when_the_tables_were_rewritten(results, reads):
    runs, _ = C.collect(results)
    C.atomic_parquet(runs.iloc[:2], results / "runs.parquet")  # someone else wrote the table
    reads.clear()
    got = C.collect(results)
    assert len(reads) == 8
    same(got, reference(results))


def test_new_curve_schema_falls_back_to_reading_the_curves(results, reads, reused):
    """A run whose curve has a column of another dtype changes the concatenation's dtypes: the old table cannot
    be reused, the curves are read again (the rows still come from the manifest)."""
    C.collect(results)
    run = next((results / "runs").glob("angpt-tiny3-*-s0"))
    m = pd.read_parquet(run / "metrics.parquet")
    m["flag"] = True  # a bool column: object once other runs lack it
    m.to_parquet(run / "metrics.parquet", index=False)
    reads.clear()
    got = C.collect(results)
    assert reads == [run.name] and not reused[-1]
    same(got, reference(results))


def test_fast_schema_equals_the_frame_schema(results):
    for run in sorted((results / "runs").iterdir()):
        row = C._read_row(run)
        table, curve, cols, _ = probe(run, row)
        exact, _ = read_curve(run, row)
        assert cols == frame_schema(exact), run.name
        assert (table is not None) != (curve is not None)


def test_write_false_writes_nothing(results):
    C.collect(results, write=False)
    assert not (results / C.MANIFEST).exists() and not (results / "runs.parquet").exists()


def test_command_line(results, capsys):
    assert C.main([str(results), "--full"]) == 0
    assert "collected 8 runs" in capsys.readouterr().out
    mtime = (results / "runs.parquet").stat().st_mtime_ns
    time.sleep(0.01)
    assert C.main([str(results)]) == 0
    assert (results / "runs.parquet").stat().st_mtime_ns != mtime  # rewritten from the manifest
    missing = results / "nope"
    assert C.main([str(missing)]) == 2
    assert "results: no such folder" in capsys.readouterr().err
    assert not missing.exists()


def test_collect_does_not_import_lightning_or_torch(results):
    code = (f"import sys; from ant.laws.collect import collect; collect({str(results)!r}); "
            "print(sorted(m for m in ('lightning', 'torch') if m in sys.modules))")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_fast_path_is_taken_and_the_chunked_file_reads_back(results, monkeypatch):
    import pyarrow.parquet as pq

    import ant.laws.collect_curves as CC

    taken = []
    real = CC.fast_concat
    monkeypatch.setattr(CC, "fast_concat", lambda *a: taken.append(1) or real(*a))
    monkeypatch.setattr(C, "CHUNK_ROWS", 7)
    monkeypatch.setattr(CC.Pieces, "COMPACT", 3)  # several compacted batches of differing columns
    _, curves = C.collect(results, full=True)
    same((_, curves), reference(results))
    assert taken and len(curves) > 3 * 7
    pd.testing.assert_frame_equal(pd.read_parquet(results / "curves.parquet"), curves, check_exact=True)
    assert pq.ParquetFile(results / "curves.parquet").metadata.num_row_groups > 1


def test_a_key_of_another_type_takes_the_exact_path(results):
    touch_summary(next((results / "runs").glob("gptplus-tiny3-*-s1")), num_params=2e6)  # a float among ints
    got = C.collect(results, full=True)
    assert got[1]["num_params"].dtype == "float64"
    same(got, reference(results))
