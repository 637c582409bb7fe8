"""Bad input, round two (issue 26): the red team's classes, each with cases of our own, under the contract of
tests/test_bad_inputs.py (exit code 2, one line naming the field or file, no traceback, nothing written; the same
fixture and checks). Classes: 1 results that must not be compared, 2 hangs before validation (each under a
wall-clock guard), 3 tracebacks from numbers, 4 damaged results folders, 5 silent acceptance, 6 paths.
Class 7 (honest records) and the damaged-folder warnings, which are not exit-2 cases, are in
tests/test_bad_inputs_records.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import yaml

from ant import recipe
from ant.config import RunConfig
from tests.test_bad_inputs import _call, _fill, _listing, inputs  # noqa: F401 (inputs: the shared fixture)

BIG = "9" * 400  # an integer of 400 digits: float() of it overflows
HANG_GUARD_S = 5.0  # a refused hang must be refused within this (the red team's took minutes)


def fake_run(rdir: Path, arch: str, loss: float, *, tokenizer: str = "bytes", vocab: int = 256, seq_len: int = 32,
             corpus: str = "default", sha: str | None = None, val_tokens: int = 2048) -> None:  # fmt: skip
    """A completed run folder as ant.train writes one (config.yaml, summary.json), without training."""
    data = {"tokenizer": tokenizer, "seq_len": seq_len, "corpus": corpus, "val_tokens": val_tokens}
    if tokenizer == "bpe":
        data["bpe_vocab_size"] = vocab
    cfg = RunConfig.from_dict({"model": {"arch": arch, "size": "tiny1"}, "data": data, "optim": {"lr": 3e-3},
                               "train": {"tokens": 4096, "batch_size": 8, "device": "cpu"}})  # fmt: skip
    cfg = recipe.resolve(cfg, vocab)
    d = rdir / cfg.run_id()
    d.mkdir(parents=True)
    (d / "config.yaml").write_text(cfg.to_yaml())
    summary = {"run_id": cfg.run_id(), "arch": arch, "size": "tiny1", "status": "completed", "num_params":
               cfg.num_params, "tokens": 4096, "final_val_loss": loss, "data_sha256": sha}  # fmt: skip
    (d / "summary.json").write_text(json.dumps(summary))


MIXED = {  # results folder -> (differing key, the second arch's data settings)
    "mixed_tok": ("tokenizer", {"tokenizer": "bpe", "vocab": 512}),
    "mixed_seq": ("seq_len", {"seq_len": 64}),
    "mixed_corpus": ("corpus", {"corpus": "{corpus}"}),
    "mixed_sha": ("data_sha256", {"sha": "b" * 64}),
    "mixed_val": ("val_tokens", {"val_tokens": 4096}),
}


@pytest.fixture(scope="module")
def files(inputs) -> dict[str, str]:  # noqa: F811
    d = Path(inputs["dir"])
    out = dict(inputs)
    for name, (_, other) in MIXED.items():
        other = {
            k: (v.replace("{corpus}", str(d / "corpus.txt")) if isinstance(v, str) else v) for k, v in other.items()
        }
        fake_run(d / name / "runs", "gptplus", 3.0, sha="a" * 64)
        fake_run(d / name / "runs", "angpt", 2.5, **{"sha": "a" * 64, **other})
    (d / "empty_results").mkdir()
    (d / "empty_runs" / "runs").mkdir(parents=True)
    g = yaml.safe_load(Path(inputs["grid"]).read_text())

    def grid(fname: str, text: str | None = None, **changes) -> None:
        doc = json.loads(json.dumps(g))
        for key, value in changes.items():
            node = doc
            *path, last = key.split("__")
            for p in path:
                node = node[p]
            node[last] = value
        (d / f"{fname}.yaml").write_text(text if text is not None else yaml.safe_dump(doc))
        out[fname] = str(d / f"{fname}.yaml")

    grid("g_seed_set", grid__seed=[0, 1, 2], grid__set={"train.seed": [5]})
    grid("g_lr_set", grid__set={"optim.lr": [1e-3]})
    grid("g_arch_set", grid__set={"model.arch": ["angpt"]})
    grid("g_bs_set", grid__set={"train.batch_size": [4]})
    grid("g_tokens_set", grid__set={"train.tokens": [8192]})
    grid("g_name_up", name="../../../x")
    grid("g_name_slash", name="a/b")
    grid("g_name_dot", name=".hidden")
    grid("g_name_abs", name="/etc/x")
    grid("g_seed_big", grid__seed=[int(BIG)])
    grid("g_bs_big", grid__batch_size=[int(BIG)])
    grid(
        "g_runs",
        grid__lr=[i * 1e-4 for i in range(1, 101)],
        grid__seed=list(range(100)),
        grid__set={"optim.beta2": [0.9 + i / 1000 for i in range(10)]},
    )  # 10^5 runs
    grid(
        "g_runs_big",
        grid__lr=[i * 1e-4 for i in range(1, 101)],
        grid__seed=list(range(1000)),
        grid__set={"optim.beta2": [0.9 + i / 10000 for i in range(100)]},
    )  # 10^7 runs
    grid("g_dup", text=Path(inputs["grid"]).read_text() + "name: again\n")
    bomb = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    bomb += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    run = yaml.safe_load(Path(inputs["run"]).read_text())
    body = yaml.safe_dump(run)
    (d / "bomb.yaml").write_text("bombs:\n" + "".join(f"  {b}\n" for b in bomb) + body)
    opts = "model:\n  arch: gptplus\n  size: tiny1\n  options:\n" + "".join(f"    {b}\n" for b in bomb)
    (d / "bomb_options.yaml").write_text(opts + yaml.safe_dump({k: v for k, v in run.items() if k != "model"}))
    grid("g_bomb", text="bombs:\n" + "".join(f"  {b}\n" for b in bomb) + Path(inputs["grid"]).read_text())
    (d / "dup_arch.yaml").write_text(body.replace("arch: gptplus", "arch: gptplus\n  arch: angpt"))
    (d / "dup_section.yaml").write_text(body + "model: {arch: angpt}\n")
    (d / "model_list.yaml").write_text(body.replace("model:\n  arch: gptplus\n  size: tiny1\n", "model: []\n"))
    (d / "optim_zero.yaml").write_text(body + "optim: 0\n")
    (d / "train_text.yaml").write_text(body.replace("train:\n", "train: x\nold_train:\n"))
    (d / "empty.txt").write_text("")
    (d / "a_file").write_text("not a folder")
    for name in ("bomb", "bomb_options", "dup_arch", "dup_section", "model_list", "optim_zero", "train_text",
                 "empty", "a_file"):  # fmt: skip
        out[name] = str(d / (f"{name}.yaml" if name not in ("empty", "a_file") else name.replace("empty", "empty.txt")))
    for name in (*MIXED, "empty_results", "empty_runs"):
        out[name] = str(d / name)
    return out


P = ["params", "--arch", "gpt", "--size", "tiny1"]
FIT = ["fit", "--no-reference", "--boot", "0", "--workers", "1"]
CASES = [
    # 1: results that must not be compared: refused, naming the key that differs
    *[(f"mixed-{name}-fit", [*FIT, "--results", "{" + name + "}"], 2, key) for name, (key, _) in MIXED.items()],
    *[(f"mixed-{name}-report", ["report", "--results", "{" + name + "}"], 2, key) for name, (key, _) in MIXED.items()],
    ("mixed-tok-figures", ["figures", "--results", "{mixed_tok}"], 2, "tokenizer"),
    ("mixed-tok-fig3", ["ant/analysis/fig3_speedup.py", "--results", "{mixed_tok}"], 2, "tokenizer"),
    ("mixed-tok-fig2", ["ant/analysis/fig2_hp_trends.py", "--results", "{mixed_tok}"], 2, "tokenizer"),
    ("mixed-tok-fig4", ["ant/analysis/fig4_compute_scaling.py", "--results", "{mixed_tok}"], 2, "tokenizer"),
    ("mixed-seq-select-other-key", [*FIT, "--results", "{mixed_seq}", "--select", "tokenizer=bytes"], 2, "seq_len"),
    ("select-unknown-key", [*FIT, "--results", "{mixed_tok}", "--select", "colour=red"], 2, "--select colour"),
    ("select-no-such-value", [*FIT, "--results", "{mixed_tok}", "--select", "tokenizer=gpt2"], 2, "--select tok"),
    ("select-no-equals", [*FIT, "--results", "{mixed_tok}", "--select", "tokenizer"], 2, "--select"),
    # 2: hangs before validation (wall-clock guarded: the "hang-" ids)
    ("hang-alias-bomb-config", ["train", "{bomb}"], 2, "config"),
    ("hang-alias-bomb-options", ["train", "{bomb_options}"], 2, "config"),
    ("hang-alias-bomb-grid", ["sweep", "{g_bomb}", "--dry-run"], 2, "sweep"),
    (
        "hang-alias-bomb-set",
        [
            "train",
            "{run}",
            "--set",
            "model.options={a: &a [1,1,1,1,1,1,1,1,1,1], "
            + ", ".join(f"b{i}: &b{i} [{', '.join(['*a' if i == 0 else f'*b{i - 1}'] * 10)}]" for i in range(6))
            + "}",
        ],
        2,
        "model.options",
    ),  # fmt: skip
    ("hang-grid-1e5-runs", ["sweep", "{g_runs}", "--dry-run"], 2, "grid"),
    ("hang-grid-1e7-runs", ["sweep", "{g_runs_big}", "--dry-run"], 2, "grid"),
    ("hang-grid-1e7-runs-tune", ["tune", "{g_runs_big}"], 2, "grid"),
    ("hang-params-layers-1e30", [*P, "-o", "n_layers=1000000000000000000000000000000"], 2, "model.options.n_layers"),
    ("hang-params-layers-1e5", [*P, "-o", "n_layers=100000"], 2, "model.options.n_layers"),
    ("hang-params-d-model-1e9", [*P, "-o", "d_model=1000000000"], 2, "model.options.d_model"),
    ("hang-params-heads-1e6", [*P, "-o", "n_heads=1000000"], 2, "model.options.n_heads"),
    ("hang-sample-tokens-1e12", ["sample", "nowhere", "--prompt", "a", "--tokens", "1000000000000"], 2, "--tokens"),
    ("hang-train-layers-1e30", ["train", "{run}", "--set", "model.options.n_layers=1e30"], 2, "model.options"),
    # 3: tracebacks from numbers: every integer has finite bounds, named
    ("num-seed-400-digits", ["train", "{run}", "--set", f"train.seed={BIG}"], 2, "train.seed"),
    ("num-tokens-400-digits", ["train", "{run}", "--set", f"train.tokens={BIG}"], 2, "train.tokens"),
    ("num-batch-400-digits", ["train", "{run}", "--set", f"train.batch_size={BIG}"], 2, "train.batch_size"),
    ("num-batch-1e9", ["train", "{run}", "--set", "train.batch_size=1000000000"], 2, "train.batch_size"),
    ("num-lr-400-digits", ["train", "{run}", "--set", f"optim.lr={BIG}"], 2, "optim.lr"),
    ("num-d-model-400-digits", ["train", "{run}", "--set", f"model.options.d_model={BIG}"], 2, "model.options.d_model"),
    ("num-warmup-400-digits", ["train", "{run}", "--set", f"optim.warmup_steps={BIG}"], 2, "optim.warmup_steps"),
    ("num-eval-interval-1e13", ["train", "{run}", "--set", "train.eval_interval=10000000000000"], 2, "train.eval"),
    ("num-threads-1e6", ["train", "{run}", "--set", "train.num_threads=1000000"], 2, "train.num_threads"),
    ("num-vocab-1e9", ["train", "{run}", "--set", "model.vocab_size=1000000000"], 2, "model.vocab_size"),
    ("num-micro-batch-1e9", ["train", "{run}", "--set", "train.micro_batch_size=1000000000"], 2, "train.micro"),
    ("num-params-vocab", [*P, "--vocab", BIG], 2, "--vocab"),
    ("num-params-set-vocab", [*P, "--set", f"model.vocab_size={BIG}"], 2, "model.vocab_size"),
    ("num-params-seq-len", [*P, "--seq-len", BIG], 2, "--seq-len"),
    ("num-params-rope-base", [*P, "-o", "rope_base=1e300"], 2, "model.options.rope_base"),
    ("num-sample-seed", ["sample", "nowhere", "--prompt", "a", "--seed", BIG], 2, "--seed"),
    ("num-sample-top-k", ["sample", "nowhere", "--prompt", "a", "--top-k", BIG], 2, "--top-k"),
    ("num-data-val-tokens", ["data", "prepare", "--val-tokens", BIG, "--cache-dir", "c"], 2, "--val-tokens"),
    ("num-data-num-proc", ["data", "prepare", "--num-proc", "100000", "--cache-dir", "c"], 2, "--num-proc"),
    ("num-bench-steps-1e12", ["bench", "--steps", "1000000000000"], 2, "--steps"),
    ("num-bench-seed-400-digits", ["bench", "--seed", BIG], 2, "--seed"),
    ("num-bench-batch-1e11", ["bench", "--batch", "99999999999"], 2, "--batch"),
    ("num-max-runs-zero", ["sweep", "{grid}", "--dry-run", "--max-runs", "0"], 2, "--max-runs"),
    ("num-sweep-concurrency", ["sweep", "{grid}", "--concurrency", BIG], 2, "--concurrency"),
    ("num-tune-trials", ["tune", "{grid}", "--trials", BIG], 2, "--trials"),
    ("num-grid-seed", ["sweep", "{g_seed_big}", "--dry-run"], 2, "train.seed"),
    ("num-grid-batch", ["sweep", "{g_bs_big}", "--dry-run"], 2, "grid.batch_size"),
    (
        "num-sweep-set-seed-max",
        ["sweep", "{grid}", "--dry-run", "--set", "train.device=cpu", "--set", f"train.eval_interval={BIG}"],
        2,
        "train.eval_interval",
    ),  # fmt: skip
    # 4: damaged or empty results folders, bad fit flags: refused before fits/ is written
    ("fit-boot-negative", ["fit", "--results", "{mixed_tok}", "--boot", "-5"], 2, "argument --boot"),
    ("fit-boot-400-digits", ["fit", "--results", "{mixed_tok}", "--boot", BIG], 2, "argument --boot"),
    ("fit-workers-zero", ["fit", "--results", "{mixed_tok}", "--workers", "0"], 2, "argument --workers"),
    ("fit-empty-results", [*FIT, "--results", "{empty_results}"], 2, "--results"),
    ("fit-empty-runs-folder", [*FIT, "--results", "{empty_runs}"], 2, "--results"),
    ("report-empty-results", ["report", "--results", "{empty_results}"], 2, "--results"),
    # 5: silent acceptance
    ("dup-key-in-section", ["train", "{dup_arch}"], 2, "config"),
    ("dup-section", ["train", "{dup_section}"], 2, "config"),
    ("dup-key-grid", ["sweep", "{g_dup}", "--dry-run"], 2, "sweep"),
    ("dup-key-in-set-value", ["train", "{run}", "--set", "model.options={n_layers: 2, n_layers: 3}"], 2, "model.opt"),
    ("model-a-list", ["train", "{model_list}"], 2, "model"),
    ("optim-zero", ["train", "{optim_zero}"], 2, "optim"),
    ("train-text", ["train", "{train_text}"], 2, "train: expected a mapping"),
    ("option-a-list", ["train", "{run}", "--set", "model.options.n_layers=[1, 2]"], 2, "model.options.n_layers"),
    ("grid-set-seed-axis", ["sweep", "{g_seed_set}", "--dry-run"], 2, "grid.set.train.seed"),
    ("grid-set-lr-axis", ["sweep", "{g_lr_set}", "--dry-run"], 2, "grid.set.optim.lr"),
    ("grid-set-arch-axis", ["sweep", "{g_arch_set}", "--dry-run"], 2, "grid.set.model.arch"),
    ("grid-set-batch-axis", ["sweep", "{g_bs_set}", "--dry-run"], 2, "grid.set.train.batch_size"),
    ("grid-set-tokens-axis", ["sweep", "{g_tokens_set}", "--dry-run"], 2, "grid.set.train.tokens"),
    ("sweep-set-on-lr-axis", ["sweep", "{grid}", "--dry-run", "--set", "optim.lr=1e-2"], 2, "--set optim.lr"),
    ("sweep-set-on-batch-axis", ["sweep", "{grid}", "--dry-run", "--set", "train.batch_size=4"], 2, "--set train"),
    ("sweep-set-on-size-axis", ["sweep", "{grid}", "--dry-run", "--set", "model.size=tiny2"], 2, "--set model.size"),
    ("sweep-set-on-seed-axis", ["sweep", "{g_seed_set}", "--dry-run", "--set", "train.seed=7"], 2, "grid.set"),
    # 6: paths: names are names, output folders are checked before anything starts
    ("name-up-sweep", ["sweep", "{g_name_up}", "--dry-run"], 2, "name"),
    ("name-up-tune", ["tune", "{g_name_up}"], 2, "name"),
    ("name-slash", ["sweep", "{g_name_slash}"], 2, "name"),
    ("name-dot", ["sweep", "{g_name_dot}"], 2, "name"),
    ("name-absolute", ["tune", "{g_name_abs}"], 2, "name"),
    ("sweep-out-dir-file", ["sweep", "{grid}", "--out-dir", "{a_file}"], 2, "--out-dir"),
    ("sweep-out-dir-below-file", ["sweep", "{grid}", "--out-dir", "{a_file}/runs"], 2, "--out-dir"),
    ("train-out-dir-file", ["train", "{run}", "--out-dir", "{a_file}"], 2, "--out-dir"),
    ("tune-study-dir-file", ["tune", "{grid}", "--study-dir", "{a_file}"], 2, "--study-dir"),
    (
        "data-empty-corpus",
        ["data", "prepare", "--corpus", "{empty}", "--tokenizer", "bytes", "--cache-dir", "X"],
        2,
        "data.corpus",
    ),  # fmt: skip
]


@pytest.mark.parametrize(("argv", "code", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_input_is_one_line_exit_code_and_nothing_written(argv, code, field, files, tmp_path, monkeypatch,
                                                                 capsys, request):  # fmt: skip
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    before = _listing(Path(files["dir"]))
    argv = [_fill(a, files) for a in argv]
    t0 = time.perf_counter()
    assert _call(argv) == code
    took = time.perf_counter() - t0
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    assert f"error: {field}" in err[0], err[0]
    assert _listing(cwd) == [], "something was written"
    after = [p for p in _listing(Path(files["dir"])) if not p.startswith("cache")]
    assert after == [p for p in before if not p.startswith("cache")], "something was written beside the inputs"
    if request.node.callspec.id.startswith("hang-"):
        assert took < HANG_GUARD_S, f"refused after {took:.1f} s"


def test_sixty_new_cases_cover_every_class():
    assert len(CASES) >= 60
    prefixes = {c[0].split("-")[0] for c in CASES}
    assert {"mixed", "hang", "num", "fit", "dup", "grid", "name"} <= prefixes


def test_the_run_limit_is_a_flag_and_a_long_plan_shows_progress(files, tmp_path, monkeypatch, capsys):
    """A grid over the limit is refused naming the flag that allows it; with the flag it plans, and a plan that
    takes longer than PLAN_QUIET_S prints progress lines on stderr (0 s here, so that any plan does)."""
    from ant.cli import main
    from ant.sweep import cli as sweep_cli

    monkeypatch.chdir(tmp_path)
    g = yaml.safe_load(Path(files["grid"]).read_text())
    g["grid"]["seed"] = list(range(12))
    Path("g12.yaml").write_text(yaml.safe_dump(g))
    assert main(["sweep", "g12.yaml", "--dry-run", "--max-runs", "10"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("ant sweep: error: grid: plans up to 12 runs") and "--max-runs 12" in err, err
    monkeypatch.setattr(sweep_cli, "PLAN_QUIET_S", 0.0)
    monkeypatch.setattr(sweep_cli, "PLAN_EVERY_S", 0.0)
    assert main(["sweep", "g12.yaml", "--dry-run", "--max-runs", "12"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err and all(ln.startswith("planning: ") for ln in err) and "of up to 12 runs" in err[-1], err
    assert _listing(tmp_path) == ["g12.yaml"]


def test_a_seed_in_base_or_set_is_used_when_the_grid_has_no_seed_axis(files, tmp_path, monkeypatch):
    """`ant sweep --set train.seed=7` on a grid without a seed axis was silently replaced by seed 0."""
    from ant.sweep.grid import Grid

    g = yaml.safe_load(Path(files["grid"]).read_text())
    g["base"]["train"]["seed"] = 7
    assert [c.train.seed for c in Grid.from_dict(g).expand()] == [7]
