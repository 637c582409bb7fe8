"""The `ant` command as one entry point (issue 13): --version, `python -m ant`, `ant train --print-config` (the
resolved config, nothing written), `ant params --set`, and the analysis sub-commands' errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from ant import __version__, recipe
from ant.cli import main
from ant.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]


def test_version_and_python_dash_m(tmp_path):
    r = subprocess.run([sys.executable, "-m", "ant", "--version"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == f"ant {__version__}"
    r = subprocess.run([sys.executable, "-m", "ant", "--help"], cwd=tmp_path, capture_output=True, text=True,
                       timeout=120)  # fmt: skip
    for name in ("train", "sweep", "tune", "sample", "fit", "figures", "report", "study"):
        assert f"    {name} " in r.stdout, name


def test_print_config_is_the_resolved_config_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(yaml.safe_dump({"model": {"arch": "gptplus", "size": "tiny1"},
                                   "data": {"tokenizer": "bytes", "seq_len": 64},
                                   "train": {"tokens": 100_000, "batch_size": 4, "device": "cpu"}}))  # fmt: skip
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["train", str(cfg), "--set", "train.seed=3", "--print-config"]) == 0
    out = capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no run folder, no cache
    printed = RunConfig.from_dict(yaml.safe_load(out))
    expected = recipe.resolve(RunConfig.from_yaml(cfg).with_overrides(["train.seed=3"]))
    assert printed.to_dict() == expected.to_dict()
    assert printed.model.vocab_size == 256 and printed.steps and printed.optim.lr  # every default filled in
    assert out.startswith(f"# run id: {expected.run_id()}")


def test_params_takes_set_like_every_subcommand(capsys):
    assert main(["params", "--arch", "angpt", "--size", "tiny3", "--json"]) == 0
    plain = json.loads(capsys.readouterr().out)
    argv = ["params", "--set", "model.arch=angpt", "--set", "model.size=tiny3", "--set", "model.vocab_size=256",
            "--set", "data.seq_len=64", "--set", "model.options.n_layers=2", "--json"]  # fmt: skip
    assert main(argv) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["vocab_size"], got["seq_len"], got["n_layers"]) == (256, 64, 2)
    assert got["num_params"] < plain["num_params"]
    assert main(["params", "--arch", "angpt", "--size", "tiny3", "--set", "train.seed=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["ant params: error: train.seed: not a key ant params uses (allowed: model.arch, model.size, "
                   "model.vocab_size, data.seq_len, model.options.KEY)"]  # fmt: skip
    assert main(["params", "--size", "tiny3"]) == 2
    assert "--arch: required" in capsys.readouterr().err


def test_analysis_subcommand_errors_name_the_command(tmp_path, capsys):
    assert main(["fit", "--results", str(tmp_path / "nope")]) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("ant fit: error: argument --results: ")
    assert main(["study", "frobnicate"]) == 2
    assert "ant study: error: argument command: invalid choice" in capsys.readouterr().err


def test_a_closed_pipe_is_not_a_traceback(tmp_path):
    """`ant sweep FILE --dry-run | head -1`: the reader leaves early; the table's writer stops quietly."""
    cmd = f"{sys.executable} -m ant sweep {ROOT / 'sweeps' / 'paper.yaml'} --dry-run | head -1"
    r = subprocess.run(["bash", "-c", cmd], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert r.stdout.startswith("sweep ") and len(r.stdout.splitlines()) == 1
    assert "Traceback" not in r.stderr and "BrokenPipe" not in r.stderr, r.stderr
