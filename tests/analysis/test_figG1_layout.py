"""Fig. G.1's panel layout (issue 24): the single-size baselines share a row instead of each leaving a row of
empty panels beside one curve."""

from ant.analysis.figG1_lr_sensitivity import layout


def test_single_size_rows_are_packed_together():
    rows = [("gpt", "r", 1), ("gptplus", "r", 4), ("ngpt", "r", 1), ("angpt", "r", 4)]
    grid = layout(rows, 4)
    assert [len(r) for r in grid] == [4, 4, 2]
    assert grid[2] == [("gpt", "r", 0), ("ngpt", "r", 0)]
    assert sum(len(r) for r in grid) == 10  # every panel drawn once
