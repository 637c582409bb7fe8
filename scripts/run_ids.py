"""Print one line per grid under sweeps/: its run count and a hash of its run ids in order. Run it before and
after a change to the config or the recipe and diff the outputs: the committed study must keep every run id.

    python scripts/run_ids.py > before.txt; <change>; python scripts/run_ids.py | diff before.txt -
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ant.errors import ConfigError
from ant.sweep.grid import load_grid


def main() -> None:
    for path in sorted(Path("sweeps").rglob("*.yaml")):
        try:
            ids = [c.run_id() for c in load_grid(path).expand()]
        except ConfigError as e:  # a grid that reads a file an earlier study part writes (tuned.yaml, predicted HPs)
            print(path, "not expandable yet:", e)
            continue
        print(path, len(ids), hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16])


if __name__ == "__main__":
    main()
