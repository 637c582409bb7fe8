"""Bad input, as a hostile user gives it, to every entry point: `ant train | sweep | tune | bench | params | data`
and the analysis scripts. The contract (docs/design.md): exit code 2, ONE line on stderr naming the field or file,
no traceback, and nothing written -- each case runs in an empty working directory whose listing must stay empty
(relative out_dir/results paths point into it), and the run/sweep folders named by the inputs must not appear.

Cases run in-process through `ant.cli.main` / the scripts' `main` (an exception escaping them is the traceback a
user would see); one case runs end to end as a subprocess. Fault cases (exit 1) live beside the code they test:
tests/data/test_cache_faults.py, tests/train/test_faults.py, tests/sweep/test_submit_faults.py.
"""

from __future__ import annotations

import inspect
import json
import os
import pathlib
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ant.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _corpus_text() -> str:
    parts = [inspect.getdoc(m) or "" for m in (json, os, subprocess, pathlib, inspect, yaml)]
    lic = Path("/usr/share/common-licenses")
    if lic.is_dir():
        parts += [p.read_text(errors="ignore") for p in sorted(lic.iterdir())[:6] if p.is_file()]
    return "\n\n".join(parts)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, str]:
    """Input files outside the working directory under test; the token cache is built once, here."""
    from ant.config import DataConfig
    from ant.data import load_tokens

    d = tmp_path_factory.mktemp("inputs")
    (d / "corpus.txt").write_text(_corpus_text())
    data = {"corpus": str(d / "corpus.txt"), "tokenizer": "bytes", "seq_len": 32, "val_tokens": 2048,
            "cache_dir": str(d / "cache")}  # fmt: skip
    load_tokens(DataConfig(**data), progress=False)
    run = {"model": {"arch": "gptplus", "size": "tiny1"}, "data": data, "out_dir": "runs",
           "train": {"tokens": 4096, "batch_size": 8, "device": "cpu"}}  # fmt: skip
    files = {"run": d / "run.yaml", "dir": d}
    files["run"].write_text(yaml.safe_dump(run))

    def grid(name: str, **axes) -> None:
        g = {"name": name, "out_dir": "out/runs", "base": {"data": data, "train": {"device": "cpu"}},
             "grid": {"arch": ["gptplus"], "size": ["tiny1"], "tokens": [4096], "batch_size": [8], "lr": [3e-3]},
             "executor": {"name": "local", "concurrency": 1, "threads_per_run": 1}}  # fmt: skip
        g["grid"].update(axes)
        files[name] = d / f"{name}.yaml"
        files[name].write_text(yaml.safe_dump(g))

    grid("grid")
    grid("empty_arch", arch=[])
    grid("empty_seed", seed=[])
    grid("empty_set", set={"optim.beta2": []})
    grid("empty_lr_per_arch", lr={"gptplus": []})
    grid("big_batch", batch_size=[100000])
    grid("inf_lr", lr=[float("inf")])
    grid("huge_tokens", tokens=["1e400"])
    grid("bad_axis", epochs=[1])
    (d / "latin1.yaml").write_bytes("model: {arch: gpt}\n# caf\xe9\n".encode("latin-1"))
    (d / "broken.yaml").write_text("model: {arch: gpt\n")
    (d / "list.yaml").write_text("- a\n- b\n")
    g = yaml.safe_load(files["grid"].read_text())
    g["base"]["data"]["seq_len"] = 1000000
    (d / "long_window.yaml").write_text(yaml.safe_dump(g))
    for name in ("latin1", "broken", "list", "long_window"):
        files[name] = d / f"{name}.yaml"
    return {k: str(v) for k, v in files.items()} | {"cache": str(d / "cache")}


# (id, argv with {placeholders} from `inputs`, exit code, what the one line must start with after "error: ")
TRAIN = [
    ("tokens-inf", ["--set", "train.tokens=.inf"], "train.tokens"),
    ("tokens-1e400", ["--set", "train.tokens=1e400"], "train.tokens"),
    ("tokens-1e30", ["--set", "train.tokens=1e30"], "train.tokens"),
    ("tokens-negative", ["--set", "train.tokens=-5"], "train.tokens"),
    ("tpp-inf", ["--set", "train.tokens=null", "--set", "train.tokens_per_param=.inf"], "train.tokens_per_param"),
    ("lr-inf", ["--set", "optim.lr=.inf"], "optim.lr"),
    ("lr-nan", ["--set", "optim.lr=.nan"], "optim.lr"),
    ("lr-absurd", ["--set", "optim.lr=1e9"], "optim.lr"),
    ("eps-inf", ["--set", "optim.eps=.inf"], "optim.eps"),
    ("beta1-minus-inf", ["--set", "optim.beta1=-.inf"], "optim.beta1"),
    ("weight-decay-1e400", ["--set", "optim.weight_decay=1e400"], "optim.weight_decay"),
    ("grad-clip-inf", ["--set", "optim.grad_clip=.inf"], "optim.grad_clip"),
    ("final-lr-frac-inf", ["--set", "optim.final_lr_frac=.inf"], "optim.final_lr_frac"),
    ("divergence-inf", ["--set", "train.divergence_factor=.inf"], "train.divergence_factor"),
    ("option-inf", ["--set", "model.options.n_layers=.inf"], "model.options.n_layers"),
    ("seed-huge", ["--set", "train.seed=1e30"], "train.seed"),
    ("seq-len-1e6", ["--set", "data.seq_len=1000000"], "data.seq_len"),
    ("yaml-flow", ["--set", "optim.lr={a: 1"], "optim.lr"),
    ("yaml-quote", ["--set", "model.arch='gpt"], "model.arch"),
    ("set-no-equals", ["--set", "train.seed"], "--set"),
    ("batch-beyond-corpus", ["--set", "train.batch_size=100000"], "train.batch_size"),
    ("unknown-flag", ["--bogus"], "arguments"),
]
CASES = [(f"train-{i}", ["train", "{run}", *a], 2, f) for i, a, f in TRAIN] + [
    ("train-config-latin1", ["train", "{latin1}"], 2, "config"),
    ("train-config-folder", ["train", "{dir}"], 2, "config"),
    ("train-config-broken-yaml", ["train", "{broken}"], 2, "config"),
    ("train-config-a-list", ["train", "{list}"], 2, "config"),
    ("train-config-missing", ["train", "nope.yaml"], 2, "config"),
    ("sweep-empty-arch", ["sweep", "{empty_arch}", "--dry-run"], 2, "grid.arch"),
    ("sweep-empty-seed", ["sweep", "{empty_seed}"], 2, "grid.seed"),
    ("sweep-empty-set-values", ["sweep", "{empty_set}"], 2, "grid.set.optim.beta2"),
    ("sweep-empty-lr-per-arch", ["sweep", "{empty_lr_per_arch}"], 2, "grid.lr.gptplus"),
    ("sweep-batch-beyond-corpus", ["sweep", "{big_batch}"], 2, "train.batch_size"),
    ("sweep-seq-len-1e6", ["sweep", "{long_window}"], 2, "data.seq_len"),
    ("sweep-lr-inf", ["sweep", "{inf_lr}", "--dry-run"], 2, "optim.lr"),
    ("sweep-tokens-1e400", ["sweep", "{huge_tokens}", "--dry-run"], 2, "train.tokens"),
    ("sweep-unknown-axis", ["sweep", "{bad_axis}"], 2, "grid.epochs"),
    ("sweep-set-yaml", ["sweep", "{grid}", "--set", "optim.lr={a: 1"], 2, "optim.lr"),
    ("sweep-set-eps-inf", ["sweep", "{grid}", "--set", "optim.eps=.inf"], 2, "optim.eps"),
    ("sweep-concurrency-text", ["sweep", "{grid}", "--concurrency", "two"], 2, "--concurrency"),
    ("sweep-max-hours-zero", ["sweep", "{grid}", "--dry-run", "--max-run-hours", "0"], 2, "--max-run-hours"),
    ("sweep-file-latin1", ["sweep", "{latin1}"], 2, "sweep"),
    ("sweep-file-folder", ["sweep", "{dir}"], 2, "sweep"),
    ("tune-trials-text", ["tune", "{grid}", "--trials", "abc"], 2, "--trials"),
    ("tune-trials-zero", ["tune", "{grid}", "--trials", "0"], 2, "tune.trials"),
    ("tune-workers-negative", ["tune", "{grid}", "--workers", "-1"], 2, "tune.workers"),
    ("tune-file-folder", ["tune", "{dir}"], 2, "sweep"),
    ("bench-size", ["bench", "--size", "huge"], 2, "model.size"),
    ("bench-arch", ["bench", "--archs", "foo"], 2, "--archs"),
    ("bench-steps", ["bench", "--steps", "0"], 2, "--steps"),
    ("bench-seq-len", ["bench", "--seq-len", "0"], 2, "--seq-len"),
    ("params-vocab", ["params", "--arch", "gpt", "--size", "tiny1", "--vocab", "0"], 2, "--vocab"),
    ("params-arch", ["params", "--arch", "foo", "--size", "tiny1"], 2, "model.arch"),
    ("params-option-yaml", ["params", "--arch", "gpt", "--size", "tiny1", "-o", "x={a:"], 2, "--option x"),
    (
        "params-option-inf",
        ["params", "--arch", "gpt", "--size", "tiny1", "-o", "n_heads=.inf"],
        2,
        "model.options.n_heads",
    ),  # fmt: skip
    ("params-missing-size", ["params", "--arch", "gpt"], 2, "--size"),
    ("data-val-tokens", ["data", "prepare", "--val-tokens", "0", "--cache-dir", "{cache}"], 2, "data.val_tokens"),
    (
        "data-bpe-vocab",
        ["data", "prepare", "--bpe-vocab-size", "10", "--cache-dir", "{cache}"],
        2,
        "data.bpe_vocab_size",
    ),  # fmt: skip
    ("data-corpus-missing", ["data", "prepare", "--corpus", "nope.txt", "--cache-dir", "{cache}"], 2, "data.corpus"),
    (
        "data-verify-not-built",
        ["data", "verify", "--corpus", "{dir}/corpus.txt", "--tokenizer", "bytes", "--cache-dir", "{dir}/empty-cache"],
        2,
        "data.cache_dir",
    ),  # fmt: skip
    ("data-unknown-action", ["data", "frobnicate"], 2, "ACTION"),
    ("fit_laws-results-typo", ["fit", "--results", "resluts"], 2, "argument --results"),
    ("fit_laws-results-file", ["fit", "--results", "{run}"], 2, "argument --results"),
    ("fit_laws-boot-text", ["fit", "--results", "{dir}", "--boot", "x"], 2, "argument --boot"),
    ("report-results-typo", ["report", "--results", "resluts"], 2, "argument --results"),
    ("fig3-results-typo", ["ant/analysis/fig3_speedup.py", "--results", "resluts"], 2, "argument --results"),
]


def _fill(arg: str, inputs: dict[str, str]) -> str:
    for k, v in inputs.items():  # not str.format: the inputs themselves hold braces ("{a: 1")
        arg = arg.replace("{" + k + "}", v)
    return arg


def _listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _call(argv: list[str]) -> int:
    """ant ARGS in-process, or an analysis module's main (argparse errors leave through SystemExit)."""
    if not argv[0].startswith("ant/analysis/"):
        return main(argv)
    import importlib

    from ant.analysis.common import run_script

    module = importlib.import_module(argv[0].removesuffix(".py").replace("/", "."))
    try:
        return module.main(argv[1:]) if hasattr(module, "main") else run_script(module, argv[1:])
    except SystemExit as e:
        return int(e.code)


@pytest.mark.parametrize(("argv", "code", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_code_and_nothing_written(argv, code, field, inputs, tmp_path, monkeypatch,
                                                             capsys):  # fmt: skip
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = _listing(Path(inputs["dir"]))
    argv = [_fill(a, inputs) for a in argv]
    assert _call(argv) == code
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    assert f"error: {field}" in err[0], err[0]
    assert _listing(cwd) == [], "something was written"
    after = [p for p in _listing(Path(inputs["dir"])) if not p.startswith("cache")]  # a cache may be built
    assert after == [p for p in before if not p.startswith("cache")]


def test_at_least_forty_cases_cover_every_entry_point():
    assert len(CASES) >= 40
    kinds = {c[1][0].split("/")[0] for c in CASES}
    assert {"train", "sweep", "tune", "bench", "params", "data", "fit", "report", "ant"} <= kinds


def test_end_to_end_no_traceback(inputs, tmp_path):
    """The same contract seen from a shell: exit code 2 and one line (this input was an OverflowError)."""
    r = subprocess.run([sys.executable, "-m", "ant.cli", "train", inputs["run"], "--set", "train.tokens=1e400"],
                       cwd=tmp_path, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["ant train: error: train.tokens: expected an integer, got inf"]
    assert list(tmp_path.iterdir()) == []


def test_sweep_warns_about_runs_longer_than_the_limit(inputs, tmp_path, monkeypatch, capsys):
    """train.tokens=1e13 on a CPU: a plan of ~10^4 hours per run is shown with one warning line; the limit is a
    flag, so a study that means it can raise it."""
    monkeypatch.chdir(tmp_path)
    g = yaml.safe_load(Path(inputs["grid"]).read_text())
    g["grid"]["tokens"] = [1e13]
    (tmp_path / "g.yaml").write_text(yaml.safe_dump(g))
    assert main(["sweep", "g.yaml", "--dry-run"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("warning: 1 run(s) are estimated to take longer than 168 h")
    assert main(["sweep", "g.yaml", "--dry-run", "--max-run-hours", "1e9"]) == 0
    assert capsys.readouterr().err.strip() == ""
    assert _listing(tmp_path) == ["g.yaml"]


def test_analysis_on_a_folder_it_cannot_write_is_one_line_exit_1(tmp_path, capsys):
    """A read-only results folder (a file where fits/ should be when root ignores permissions) -> one line."""
    from ant.analysis import fit_laws, report
    from tests.test_bad_inputs_hostile import fake_run

    res = tmp_path / "results"
    fake_run(res / "runs", "gptplus", 3.0)  # an empty folder is refused before any write (exit 2)
    if os.geteuid() != 0:
        res.chmod(0o555)
    else:
        (res / "fits").write_text("in the way")
    try:
        assert fit_laws.main(["--results", str(res), "--no-reference", "--boot", "2", "--workers", "1"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("fit_laws.py: error: ") and "fits" in err[0], err
        assert report.main(["--results", str(res)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "error: " in err[0] and "fits" in err[0], err
        assert not (res / "REPORT.md").exists()
    finally:
        res.chmod(0o755)
