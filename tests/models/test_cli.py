"""`ant params` through the real entry point."""

from __future__ import annotations

import json

from ant.cli import main


def test_params_human(capsys):
    assert main(["params", "--arch", "angpt", "--size", "0.5B"]) == 0
    out = capsys.readouterr().out
    print(out)
    assert "505,775,256" in out and "505.78M" in out and "FLOPs/token" in out


def test_params_json(capsys):
    rc = main(["params", "--arch", "ngpt", "--size", "tiny3", "--vocab", "4096", "--seq-len", "128", "--json"])
    assert rc == 0
    info = json.loads(capsys.readouterr().out)
    assert info["num_params"] > 0 and info["vocab_size"] == 4096 and info["seq_len"] == 128
    assert info["flops_per_token"] == 6 * info["matmul_params"] + 6 * 4 * 64 * 128


def test_params_options(capsys):
    assert main(["params", "--arch", "angpt", "--size", "0.5B", "--json", "-o", "lerp=false"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["options"] == {"lerp": False}
    assert info["num_params"] == 505_775_256 - 24 * 2 * 1024  # no alpha vectors without LERP


def test_params_errors(capsys):
    assert main(["params", "--arch", "angpt", "--size", "0.5B", "-o", "foo=1"]) == 2
    err = capsys.readouterr().err
    assert "model.options.foo: unknown option" in err and "allowed:" in err
    assert main(["params", "--arch", "xgpt", "--size", "0.5B"]) == 2
    assert "model.arch" in capsys.readouterr().err
    assert main(["params", "--arch", "gpt", "--size", "0.5B", "--seq-len", "0"]) == 2
    assert "--seq-len" in capsys.readouterr().err
