"""The study-mix benchmark's arithmetic (ant.bench.study_mix.summarize) on constructed wall times: the mix
speed-up weights per-size ratios by the study's time shares, and a packed variant's unpackable share counts at
its unpacked twin's ratio."""

import pytest

from ant.bench.study_mix import MIXES, Mix, summarize, unpacked


def _walls(per_run: dict[str, float], sizes, runs: int = 2) -> dict:
    return {name: {s: [t] * runs for s in sizes} for name, t in per_run.items()}


def test_mix_shares_sum_to_one_and_name_sizes_it_times():
    for name, m in MIXES.items():
        assert sum(m.time_shares.values()) + sum(m.unpackable.values()) == pytest.approx(1, abs=2e-3), name
        assert set(m.unpackable) <= set(m.time_shares) == set(m.batch) == set(m.cut), name


def test_packed_variant_counts_unpackable_share_at_its_unpacked_twin():
    mix = Mix(32, 20, {"a": 4, "b": 8}, {"a": 0.3, "b": 0.5}, {"a": 1, "b": 1}, {"b": 0.2})
    walls = _walls({"current": 10.0, "cheap-eval": 8.0, "cheap-eval+packed": 4.0}, ["a", "b"])
    res = summarize(walls, {n: {} for n in walls}, 2, mix)
    by = {v["name"]: v for v in res["variants"]}
    assert by["current"]["speedup_mix"] == pytest.approx(1.0)
    assert by["cheap-eval"]["speedup_mix"] == pytest.approx(1.25, abs=1e-3)
    # packed: 80 % of the time at 2.5x, the unpackable 20 % at cheap-eval's 1.25x
    assert by["cheap-eval+packed"]["speedup_mix"] == pytest.approx(1 / (0.8 / 2.5 + 0.2 / 1.25), abs=1e-3)
    assert unpacked("cheap-eval+packed") == "cheap-eval"
    # without its exact twin in the set, the nearest variant with fewer pieces (conservative), not itself
    assert unpacked("cheap-eval+packed+compile", ["current", "cheap-eval"]) == "cheap-eval"
    assert unpacked("cheap-eval+packed+compile", ["cheap-eval", "cheap-eval+compile"]) == "cheap-eval+compile"


def test_per_size_ratios_are_weighted_by_time_share_not_averaged():
    mix = MIXES["v1"]
    sizes = list(mix.time_shares)
    walls = {"current": {s: [10.0] for s in sizes}, "x": {s: [5.0 if s == "tiny0" else 10.0] for s in sizes}}
    res = summarize(walls, {"current": {}, "x": {}}, 1, mix)
    x = res["variants"][1]
    assert x["ratio_by_size"]["tiny0"] == pytest.approx(2.0)
    # tiny0 holds 3 % of the study's time: halving it gains 1.5 %, not the 1.25x a plain mean of ratios would say
    assert x["speedup_mix"] == pytest.approx(1 / (0.97 + 0.03 / 2), abs=1e-3)


def test_warm_up_is_charged_once_per_shape_at_both_lengths():
    """A compiled variant's warm-up is paid once per shape by its runs: it weighs at the bench's cut length and
    fades at the study's length, where the runs are `cut` times longer and the warm-up is not."""
    mix = Mix(32, 20, {"a": 4}, {"a": 1.0}, {"a": 10})
    walls = _walls({"current": 10.0, "compiled": 5.0}, ["a"], runs=2)
    warmup = {"current": {"a": 0.0}, "compiled": {"a": 30.0}}
    res = summarize(walls, {n: {} for n in walls}, 2, mix, warmup, scale=1)
    c = res["variants"][1]
    assert c["warmup_s"] == {"a": 30.0}
    assert c["speedup_mix"] == pytest.approx(20 / (10 + 30), abs=1e-3)  # 0.5x as timed
    assert c["speedup_mix_study_length"] == pytest.approx(200 / (100 + 30), abs=1e-3)  # 1.54x at 10x the length
    # scale cuts further: the same timed runs stand for 20x longer study runs
    res2 = summarize(walls, {n: {} for n in walls}, 2, mix, warmup, scale=2)
    assert res2["variants"][1]["speedup_mix_study_length"] == pytest.approx(400 / (200 + 30), abs=1e-3)


def test_auto_compile_is_decided_at_study_length():
    """cpu_compile auto follows the project's rule for the study's runs, not for the cut runs the bench times:
    at v1's shapes tiny3 compiles alone, tiny2 only as a pack of four, tiny0 never."""
    from ant.bench.study_mix import compiles

    v1 = MIXES["v1"]
    assert compiles("tiny3", {"cpu_compile": "auto"}, False, 4, v1)
    assert not compiles("tiny2", {"cpu_compile": "auto"}, False, 4, v1)
    assert compiles("tiny2", {"cpu_compile": "auto"}, True, 4, v1)
    assert not compiles("tiny0", {"cpu_compile": "auto"}, True, 4, v1)
    assert not compiles("tiny3", {"cpu_compile": "false"}, True, 4, v1)


def test_full_length_runs_are_not_scaled_and_a_size_subset_renormalises():
    """--full-length (scale 0) trains the study's own budgets: study length is the runs as timed plus the warm-up;
    --sizes keeps the chosen sizes' shares in proportion."""
    from ant.bench.study_mix import only

    sub = only(MIXES["v1"], ["tiny1", "tiny2"])
    assert sub.time_shares == pytest.approx({"tiny1": 26 / 71, "tiny2": 45 / 71}) and sub.unpackable == {}
    mix = Mix(128, 10, {"a": 4}, {"a": 1.0}, {"a": 16})
    walls = _walls({"current": 60.0, "compiled": 25.0}, ["a"], runs=8)
    warmup = {"current": {"a": 0.0}, "compiled": {"a": 50.0}}
    res = summarize(walls, {n: {} for n in walls}, 8, mix, warmup, scale=0)
    assert res["variants"][1]["speedup_mix_study_length"] == pytest.approx(480 / 250, abs=1e-3)
