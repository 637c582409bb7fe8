"""Damaged results folders (issue 26, class 4): a run folder whose summary.json a person or a full disk broke is
skipped with one warning naming it, and the fits of the other runs are written: not an AttributeError or
ArrowTypeError traceback. (Empty folders and bad flags, refused with exit 2, are in test_bad_inputs_hostile.py.)
"""

from __future__ import annotations

import json

import pytest

from ant.analysis import fit_laws
from tests.test_bad_inputs_hostile import fake_run

SUMMARIES = {
    "a-list": b"[]",
    "text-loss": json.dumps({"status": "completed", "final_val_loss": "abc"}).encode(),
    "a-string": b'"completed"',
    "a-number": b"42",
    "status-number": json.dumps({"status": 5}).encode(),
    "tokens-text": json.dumps({"status": "completed", "tokens": "many"}).encode(),
    "loss-bool": json.dumps({"status": "completed", "final_val_loss": True}).encode(),
    "huge-int": ('{"status": "completed", "num_params": ' + "9" * 400 + "}").encode(),
    "not-utf8": b'{"status": "\xff"}',
    "not-json": b"{status: completed",
}


@pytest.mark.parametrize("content", list(SUMMARIES.values()), ids=list(SUMMARIES))
def test_a_damaged_summary_is_skipped_with_one_warning(content, tmp_path, capsys):
    runs = tmp_path / "results" / "runs"
    fake_run(runs, "gptplus", 3.0)
    fake_run(runs, "angpt", 2.5)
    bad = sorted(runs.iterdir())[0]
    (bad / "summary.json").write_bytes(content)
    assert fit_laws.main(["--results", str(tmp_path / "results"), "--no-reference", "--boot", "0",
                          "--workers", "1"]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and err.strip() == ""
    warned = [ln for ln in out.splitlines() if ln.startswith("warning: skipped 1 run folder(s): ")]
    assert len(warned) == 1 and f"{bad.name}: summary.json" in warned[0], out
    assert (tmp_path / "results" / "fits" / "chinchilla.json").is_file()


def test_an_extra_key_of_mixed_types_is_kept_as_text(tmp_path, capsys):
    """An extra summary key that is a number in one run and text in another: both runs kept, the table writes."""
    runs = tmp_path / "results" / "runs"
    fake_run(runs, "gptplus", 3.0)
    fake_run(runs, "angpt", 2.5)
    for run, value in zip(sorted(runs.iterdir()), (1.5, "fast")):
        s = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**s, "note": value}))
    from ant.laws.collect import collect

    table, _ = collect(tmp_path / "results")
    assert sorted(table["note"]) == ["1.5", "fast"]
