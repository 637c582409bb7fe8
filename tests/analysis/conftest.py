"""A synthetic results/ folder (run folders in the ant.train format + a bench JSON), built once per session."""

from __future__ import annotations

import shutil

import pytest

from ant.laws.synthetic import SynthSuite


@pytest.fixture(scope="session")
def synth_results(tmp_path_factory):
    return SynthSuite().write(tmp_path_factory.mktemp("synth") / "results")


@pytest.fixture
def results_copy(synth_results, tmp_path):
    """A private copy for tests that write fits/figures."""
    dst = tmp_path / "results"
    shutil.copytree(synth_results, dst)
    return dst
