"""`ant data prepare` end to end through the `ant` entry point."""

from __future__ import annotations

from ant.cli import main


def test_prepare_prints_summary(corpus_files, data_cache, capsys):
    argv = [
        "data",
        "prepare",
        "--corpus",
        str(corpus_files["jsonl"]),
        "--tokenizer",
        "bpe",
        "--bpe-vocab-size",
        "512",
        "--val-tokens",
        "2048",
        "--seq-len",
        "32",
        "--cache-dir",
        data_cache,
    ]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "vocab 512" in out and "val 2,048" in out and "nats/token" in out and "sequences of 32 tokens" in out
    assert main([*argv, "--quiet"]) == 0  # second time: reused from the cache
    assert capsys.readouterr().err == ""


def test_prepare_bad_input_exits_2(data_cache, capsys, tmp_path):
    assert main(["data", "prepare", "--tokenizer", "wordpiece", "--cache-dir", data_cache]) == 2
    assert "data.tokenizer" in capsys.readouterr().err
    assert main(["data", "prepare", "--corpus", str(tmp_path / "nope.txt"), "--cache-dir", data_cache]) == 2
    err = capsys.readouterr().err
    assert "data.corpus" in err and "no such file" in err
