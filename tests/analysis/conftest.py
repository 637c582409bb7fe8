"""A synthetic results/ folder (run folders in the ant.train format + a bench JSON), built once per session."""

from __future__ import annotations

import shutil

import pytest

from ant.laws.synthetic import SynthSuite


@pytest.fixture(scope="session")
def synth_results(tmp_path_factory):
    return SynthSuite().write(tmp_path_factory.mktemp("synth") / "results")


# small Chinchilla bootstraps, no fit on the published points (test_notebooks.py gives its notebook the same)
FIT_ARGS = ["--boot", "5", "--workers", "1", "--no-reference"]


@pytest.fixture(scope="session")
def fitted_results(synth_results, tmp_path_factory):
    """`make fit-laws figures report` once on a copy of the synthetic results (~45 s): shared, read-only, by
    test_scripts.py and test_notebooks.py, which sit in one xdist group (ANALYSIS_GROUP) so that one worker builds
    it once."""
    from ant.analysis import fit_laws, make_figures, report

    res = tmp_path_factory.mktemp("fitted") / "results"
    shutil.copytree(synth_results, res)
    assert fit_laws.main(["--results", str(res), *FIT_ARGS]) == 0
    assert make_figures.main(["--results", str(res), *FIT_ARGS[:2]]) == 0  # figure 4 refits with the same --boot
    assert report.main(["--results", str(res)]) == 0
    return res


ANALYSIS_GROUP = pytest.mark.xdist_group("analysis-fitted")


@pytest.fixture
def results_copy(synth_results, tmp_path):
    """A private copy for tests that write fits/figures."""
    dst = tmp_path / "results"
    shutil.copytree(synth_results, dst)
    return dst
