"""ant.laws.plotting.design_ticks: a log axis ticked at the design's own sizes, labels a reader can read."""

from __future__ import annotations

import matplotlib.pyplot as plt

from ant.laws.plotting import design_ticks


def _labels(values):
    fig, ax = plt.subplots()
    ax.set_xscale("log")
    ax.plot(values, range(len(values)))
    design_ticks(ax, values)
    fig.canvas.draw()
    ticks = [(t.get_text(), t.get_rotation()) for t in ax.get_xticklabels()]
    plt.close(fig)
    return ticks


def test_sizes_are_the_ticks_and_crowded_labels_turn_so_they_do_not_touch():
    assert _labels([16_500, 49_300, 135_500]) == [("16.5k", 0.0), ("49.3k", 0.0), ("136k", 0.0)]  # ~3x apart
    crowded = _labels([12_300, 16_500, 30_800, 135_500, 179_600, 230_000])  # 1.34x apart at the ends
    assert [t for t, _ in crowded][:2] == ["12.3k", "16.5k"] and {r for _, r in crowded} == {45.0}
