"""sweeps/paper.yaml names the paper's data (SlimPajama streamed through hf:, the GPT-NeoX tokenizer, context
2048), and its plan is printed offline: nothing is downloaded, the vocabulary is the paper's padded 50,304."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ant.sweep.grid import load_grid

ROOT = Path(__file__).resolve().parents[2]
PAPER = ROOT / "sweeps" / "paper.yaml"
CLOSED = "http://127.0.0.1:9"  # a closed port: any download fails at once


def test_paper_grid_names_the_papers_data():
    cfgs = load_grid(PAPER).expand()
    assert {(c.data.corpus, c.data.tokenizer, c.data.seq_len, c.model.vocab_size) for c in cfgs} == {
        ("hf:cerebras/SlimPajama-627B", "hf:EleutherAI/gpt-neox-20b", 2048, 50304)
    }
    # the streamed corpus is cut where the largest run has seen each token once (< 1 epoch, as in the paper)
    assert max(c.train.tokens for c in cfgs) <= cfgs[0].data.max_tokens


def _dry_run(tmp_path, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "ANT_CACHE": str(tmp_path / "empty-cache"), "HF_HUB_OFFLINE": "1", "http_proxy": CLOSED,
           "https_proxy": CLOSED, "HTTP_PROXY": CLOSED, "HTTPS_PROXY": CLOSED}  # fmt: skip
    cmd = [sys.executable, "-m", "ant", "sweep", str(PAPER), "--dry-run", "--out-dir", str(tmp_path / "runs"), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)


def test_paper_dry_run_works_offline_with_an_empty_cache(tmp_path):
    r = _dry_run(tmp_path)
    assert r.returncode == 0, r.stderr
    assert "528 runs: 528 missing" in r.stdout
    assert not (tmp_path / "empty-cache").exists()  # nothing fetched, nothing built


def test_paper_grid_on_the_offline_corpus_is_the_documented_override(tmp_path):
    over = ["--set", "data.corpus=default", "--set", "data.tokenizer=gpt2", "--set", "data.max_tokens=null"]
    assert " ".join(over) in PAPER.read_text().replace("\\\n#       ", "")  # the command paper.yaml gives
    r = _dry_run(tmp_path, *over)
    assert r.returncode == 0, r.stderr
    assert "528 runs" in r.stdout
