"""Numbers and durations for people: 1.23G, 4.5h. The plan table, the sweep's progress line and the study's
plan print them.

Its own module because the plan imports the progress line, which needs these: they lived in plan_table, which
imports the plan, and so closed a circle plan -> progress -> plan_table -> plan.
"""

from __future__ import annotations


def fmt_num(x: float) -> str:
    for unit, div in (("E", 1e18), ("P", 1e15), ("T", 1e12), ("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= div:
            return f"{x / div:.3g}{unit}"
    return f"{x:.3g}"


def fmt_time(s: float) -> str:
    if s >= 86400:
        return f"{s / 86400:.1f}d"
    if s >= 3600:
        return f"{s / 3600:.1f}h"
    if s >= 60:
        return f"{s / 60:.1f}m"
    return f"{s:.0f}s"
