"""One script per paper figure/table; each runs as `python analysis/NAME.py --results DIR` (see common.py)."""
