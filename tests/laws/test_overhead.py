"""Table 2 from the benchmark JSON: ratios vs GPT+, tolerant reader, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ant.errors import ConfigError
from ant.laws.overhead import overhead_table


def test_ratios_from_the_bench_format(tmp_path):
    p = tmp_path / "b.json"
    p.write_text(json.dumps({"device": "cpu", "results": [
        {"arch": "gptplus", "step_time_ms": 100.0, "tokens_per_s": 1000.0, "mfu": None},
        {"arch": "angpt", "step_time_ms": 102.75, "tokens_per_s": 973.0, "mfu": 0.1, "extra": 1},
        {"arch": "ngpt", "step_time_ms": 109.6, "tokens_per_s": 912.0},
    ]}))  # fmt: skip
    t = overhead_table(p).set_index("arch")
    assert t.attrs["device"] == "cpu"
    assert t.loc["gptplus", "rel_increase_pct"] == pytest.approx(0.0)
    assert t.loc["angpt", "rel_increase_pct"] == pytest.approx(2.75)
    assert t.loc["ngpt", "rel_increase_pct"] == pytest.approx(9.6)
    assert t.loc["angpt", "paper_rel_increase_pct"] == pytest.approx(2.75, abs=0.01)
    assert np.isnan(t.loc["gptplus", "mfu"])


def test_tolerant_reader_variants():
    rows = [{"model": "gptplus", "step_time_s": 0.2}, {"name": "angpt", "step_time_s": 0.21},
            {"model": "angpt", "step_time_s": 0.23}]  # fmt: skip
    t = overhead_table(rows).set_index("arch")  # a bare list, seconds, repeated rows averaged
    assert t.loc["angpt", "step_time_ms"] == pytest.approx(220.0)
    assert t.loc["angpt", "rel_increase_pct"] == pytest.approx(10.0)
    no_ref = overhead_table({"results": [{"arch": "angpt", "step_time_ms": 1.0}]})
    assert np.isnan(no_ref["rel_increase_pct"].iloc[0])


@pytest.mark.parametrize("src, msg", [({"results": []}, "no results"), ([{"t": 1}], "names its architecture")])
def test_bad_input_is_a_config_error(src, msg):
    with pytest.raises(ConfigError, match=msg):
        overhead_table(src)


def test_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        overhead_table(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(ConfigError, match="not valid JSON"):
        overhead_table(tmp_path / "bad.json")
