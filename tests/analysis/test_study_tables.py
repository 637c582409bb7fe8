"""A study group's curves as append-only shards (ant.analysis.study_tables): reading gives the table one file used
to hold, a later shard's curve of a run replaces the earlier one, and writing never touches what is committed."""

from __future__ import annotations

import pandas as pd

from ant.analysis.study_tables import BASE, read_curves, shard_paths, write_shard


def curve(run_id: str, loss: float, steps=(0, 10, 20)) -> pd.DataFrame:
    return pd.DataFrame(
        {"run_id": run_id, "step": list(steps), "val_loss": [loss + 0.1 * i for i in range(len(steps))]}
    )


def test_base_then_shards_in_order_and_the_latest_curve_of_a_run_wins(tmp_path, monkeypatch):
    pd.concat([curve("a", 3.0), curve("b", 2.0)], ignore_index=True).to_parquet(tmp_path / BASE, index=False)
    base_bytes = (tmp_path / BASE).read_bytes()
    times = iter(["20261207-210000", "20261207-220000"])
    monkeypatch.setattr("ant.analysis.study_tables.time.strftime", lambda fmt, t=None: next(times))
    first = write_shard(tmp_path, curve("c", 1.0))
    second = write_shard(tmp_path, pd.concat([curve("b", 5.0, steps=(0, 5)), curve("d", 0.5)], ignore_index=True))
    assert shard_paths(tmp_path) == [first, second] and (tmp_path / BASE).read_bytes() == base_bytes
    got = read_curves(tmp_path)
    assert list(dict.fromkeys(got["run_id"])) == ["a", "c", "b", "d"]  # b retrained: its old rows are gone
    b = got[got["run_id"] == "b"]
    assert b["step"].tolist() == [0, 5] and b["val_loss"].iloc[0] == 5.0
    assert got.index.tolist() == list(range(len(got)))
    assert write_shard(tmp_path, curve("e", 1.0).iloc[:0]) is None and len(shard_paths(tmp_path)) == 2


def test_shards_only_and_nothing_at_all(tmp_path):
    assert read_curves(tmp_path).empty
    write_shard(tmp_path, curve("x", 1.0))
    pd.testing.assert_frame_equal(read_curves(tmp_path), curve("x", 1.0))
