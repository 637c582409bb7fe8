"""The orchestrator at scale: wall time, ms/run and peak memory of `ant sweep --dry-run`, `--status`, a full
`collect` and an incremental one, on a synthetic grid of N runs with a results tree of realistic run folders.

    python -m ant.sweep.orchestrator_bench --runs 1000 10000                 # prints a table per N
    python -m ant.sweep.orchestrator_bench --runs 200 --verify --json out.json

For each N a temporary folder gets a grid YAML that expands to exactly N runs (2 archs x 4 tiny sizes x 5 budgets x
N/40 learning rates) and a results tree in the ant.train format: config.yaml (the run's resolved config),
summary.json (~1 KB, the keys ant.train writes) and metrics.parquet (~200 rows of the CPU study's columns, ~17 KB
for a finished run), plus the sweep's .locks/ attempt logs. Runs are spread over the states --status reports:
done, diverged, failed (by summary or by the attempt log), interrupted, running (this process holds their locks
while the commands run) and missing. Every command runs in a fresh process, as a user would call it: its time
includes Python's start and imports, and its peak RSS is the process's own (os.wait4).

Then 10 missing runs get finished folders and `collect` runs again (incremental); `--verify` also checks that its
tables equal a full rebuild's and that --status's states are the ones written.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ant import runfolder
from ant.archs import arch as arch_row
from ant.errors import ConfigError
from ant.laws.collect import collect
from ant.models.counts import flops_per_token
from ant.models.sizes import SIZES as LADDER
from ant.sweep.grid import Grid
from ant.sweep.locks import RunLock, lock_dir, record_attempt
from ant.train.io import write_json

ARCHS = ("gptplus", "angpt")
SIZES = ("tiny0", "tiny1", "tiny2", "tiny3")
BUDGETS = (2e5, 4e5, 8e5, 1.6e6, 3.2e6)
PER_LR = len(ARCHS) * len(SIZES) * len(BUDGETS)  # runs per learning rate: N must be a multiple
# state -> share of the grid; the rest is done
MIX = {"diverged": 0.03, "failed": 0.03, "failed_attempt": 0.01, "interrupted": 0.03, "running": 0.01,
       "missing": 0.05}  # fmt: skip
STATUS_OF = {"failed_attempt": "failed"}  # what --status calls each written state
ROWS = 200  # metrics rows of a finished run (the CPU study's runs have ~195)
NEW_RUNS = 10  # runs finished between the full and the incremental collect


@dataclass
class Timing:
    command: str
    wall_s: float
    ms_per_run: float
    peak_rss_mb: float
    rc: int


# ---------------------------------------------------------------------- the synthetic sweep
def check_runs(n: int) -> None:
    if n < PER_LR or n % PER_LR:
        raise ConfigError("--runs", f"must be positive multiples of {PER_LR}, got {n}")


def grid_yaml(n: int, root: Path) -> Path:
    check_runs(n)
    lrs = [float(f"{x:.4g}") for x in np.geomspace(1e-4, 1e-1, n // PER_LR)]
    grid = {
        "name": "bench",
        "out_dir": str(root / "results" / "runs"),
        "base": {
            "data": {"corpus": "default", "tokenizer": "bytes", "seq_len": 128, "val_tokens": 32768},
            "train": {"device": "cpu"},
        },  # fmt: skip
        "grid": {
            "arch": list(ARCHS),
            "size": list(SIZES),
            "tokens": list(BUDGETS),
            "batch_size": [8],
            "lr": lrs,
            "seed": [0],
        },  # fmt: skip
        "executor": {"name": "local", "concurrency": 2, "threads_per_run": 1},
    }
    path = root / "grid.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    return path


def assign_states(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    states = ["done"] * n
    order = rng.permutation(n)
    i = 0
    for state, share in MIX.items():
        k = max(1, round(share * n))
        for j in order[i : i + k]:
            states[j] = state
        i += k
    return states


class Writer:
    """Writes run folders in the ant.train format; metrics.parquet bytes come from a few templates per shape."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)
        self.templates: dict[tuple, list[bytes]] = {}

    def metrics(self, arch: str, n_layers: int, rows: int) -> bytes:
        key = (arch, n_layers, rows)
        if key not in self.templates:
            self.templates[key] = [self._parquet(arch, n_layers, rows) for _ in range(4)]
        return self.templates[key][int(self.rng.integers(4))]

    def _parquet(self, arch: str, n_layers: int, rows: int) -> bytes:
        import pandas as pd

        r = self.rng
        step = np.arange(rows) * 10
        cols: dict[str, Any] = {"step": step, "tokens": step * 1024}
        eval_every = max(1, rows // 20)
        sparse = lambda every, x: np.where(np.arange(rows) % every == 0, x, np.nan)  # noqa: E731
        cols["train_loss"] = np.where(step > 0, 2 + 3 * np.exp(-step / 300) + 0.05 * r.standard_normal(rows), np.nan)
        cols["val_loss"] = sparse(eval_every, 2 + 3 * np.exp(-step / 300))
        cols["lr"] = np.where(step > 0, 1e-2 * np.cos(np.linspace(0, 1.5, rows)), np.nan)
        cols["grad_norm"] = np.where(step > 0, np.abs(r.standard_normal(rows)) + 0.5, np.nan)
        cols["tokens_per_s"] = np.where(step > 0, 15000 + 500 * r.standard_normal(rows), np.nan)
        if arch_row(arch).alphas:
            for kind in ("a", "m"):
                for i in range(n_layers):
                    cols[f"alpha_{kind}_{i}"] = sparse(max(1, rows // 5), 0.05 + 0.01 * r.random(rows))
        for i in range(n_layers + 1):
            cols[f"resid_norm_{i}"] = sparse(max(1, rows // 5), 1 + 0.1 * r.random(rows))
        buf = io.BytesIO()
        pd.DataFrame(cols).to_parquet(buf, index=False)
        return buf.getvalue()

    def write(self, cfg: Any, state: str) -> None:

        if state == "missing":
            return
        d = cfg.run_dir()
        d.mkdir(parents=True)
        (d / runfolder.CHECKPOINTS).mkdir()
        (d / runfolder.CONFIG).write_text(yaml.dump(cfg.to_dict(), Dumper=_DUMPER, sort_keys=False))
        m, t = cfg.model, cfg.train
        rows = {"done": ROWS, "diverged": ROWS // 3}.get(state, ROWS // 2)
        (d / runfolder.METRICS).write_bytes(self.metrics(m.arch, _layers(m.size), rows))
        run_id = cfg.run_id()
        locks = lock_dir(cfg.out_dir)
        record_attempt(locks, run_id, event="start", job_id=None, resumed=False)
        (locks / f"{run_id}.lock").touch()
        status = {"done": "completed", "diverged": "diverged", "failed": "failed"}.get(state)
        if state == "failed_attempt":
            record_attempt(locks, run_id, event="end", job_id=None, status="failed", error="RuntimeError: synthetic")
        if status is None:
            return
        fpt = flops_per_token(m.arch, m.size, m.vocab_size, cfg.data.seq_len, m.options)
        tokens = t.tokens if state == "done" else t.tokens // 3
        summary = {
            "run_id": run_id, "arch": m.arch, "size": m.size, "num_params": cfg.num_params, "tokens": tokens,
            "steps": cfg.steps, "planned_tokens": t.tokens, "planned_steps": cfg.steps, "batch_size": t.batch_size,
            "seq_len": cfg.data.seq_len, "lr": cfg.optim.lr, "seed": t.seed, "status": status,
            "final_val_loss": None if state != "done" else float(2 + self.rng.random()),
            "final_train_loss": float(2 + self.rng.random()), "diverged_step": cfg.steps // 3 if state == "diverged"
            else None, "flops": fpt * tokens, "flops_per_token": fpt, "wall_time_s": 40 + 10 * float(self.rng.random()),
            "tokens_per_s": 15000.0, "device": "cpu", "precision": "32", "torch_version": "2.13.0+cpu",
            "finished_at": "2026-11-29T08:54:56+00:00",
            "error": "RuntimeError: synthetic" if status == "failed" else None,
            "interrupted": False, "data_fingerprint": "0" * 64, "branched_from": None, "branch_step": None,
            "resumed_from_step": None, "trained_steps": cfg.steps, "trained_tokens": tokens,
        }  # fmt: skip
        (d / runfolder.SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
        record_attempt(locks, run_id, event="end", job_id=None, status=status, wall_s=40.0)


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def _layers(size: str) -> int:

    return LADDER[size].n_layers


# ---------------------------------------------------------------------- timing a command
# The child reports its own peak RSS (VmHWM of /proc/self/status) at exit: the ru_maxrss that wait4 gives would
# include the parent's memory, which a child inherits across fork + exec on Linux.
_WRAPPER = """import atexit, runpy, sys
def _peak(path=sys.argv[1]):
    with open('/proc/self/status') as f:
        kb = next(int(line.split()[1]) for line in f if line.startswith('VmHWM:'))
    with open(path, 'w') as out:
        out.write(str(kb))
atexit.register(_peak)
module = sys.argv[2]
sys.argv = [module, *sys.argv[3:]]
runpy.run_module(module, run_name='__main__', alter_sys=True)
"""


def timed(argv: list[str], n: int, label: str, out: Path) -> tuple[Timing, str]:
    """Run `python -m argv[0] argv[1:]` in a fresh process, stdout to `out`: its wall time and peak RSS."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    peak = out.with_suffix(".rss")
    with open(out, "w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        t0 = time.perf_counter()
        p = subprocess.run([sys.executable, "-c", _WRAPPER, str(peak), *argv], stdout=stdout, stderr=stderr, env=env)
        wall = time.perf_counter() - t0
        stderr.seek(0)
        err = stderr.read()
    if p.returncode != 0:
        raise RuntimeError(f"{label} failed ({p.returncode}): {err.strip()[-2000:]}")
    return Timing(label, wall, 1e3 * wall / n, int(peak.read_text()) / 1024, p.returncode), Path(out).read_text()


# ---------------------------------------------------------------------- one N
def bench_one(n: int, root: Path, verify: bool = False, log=print) -> dict[str, Any]:

    grid = grid_yaml(n, root)
    t0 = time.perf_counter()
    cfgs = Grid.from_yaml(grid).expand()
    expand_s = time.perf_counter() - t0
    assert len(cfgs) == n, f"the grid expanded to {len(cfgs)} runs, not {n}"
    states = assign_states(n)
    new = [i for i, s in enumerate(states) if s == "missing"][:NEW_RUNS]
    writer = Writer()
    t0 = time.perf_counter()
    for cfg, state in zip(cfgs, states):
        writer.write(cfg, state)
    generate_s = time.perf_counter() - t0
    log(f"N={n}: grid expanded in-process in {expand_s:.1f} s, results tree written in {generate_s:.1f} s")
    held = [RunLock(lock_dir(c.out_dir), c.run_id()) for c, s in zip(cfgs, states) if s == "running"]
    assert all(lock.acquire() for lock in held)
    results = root / "results"
    timings: list[Timing] = []
    try:
        t, _ = timed(["ant.cli", "sweep", str(grid), "--dry-run"], n, "sweep --dry-run", root / "dry.txt")
        timings.append(t)
        t, out = timed(["ant.cli", "sweep", str(grid), "--status", "--json"], n, "sweep --status",
                       root / "status.json")  # fmt: skip
        timings.append(t)
        seen = {r["run_id"]: r["state"] for r in json.loads(out)["runs"]}
        want = {c.run_id(): STATUS_OF.get(s, s) for c, s in zip(cfgs, states)}
        states_match = seen == want
        t, _ = timed(["ant.laws.collect", str(results), "--full"], n, "collect (full)", root / "full.txt")
        timings.append(t)
        for i in new:
            writer.write(cfgs[i], "done")
        t, _ = timed(["ant.laws.collect", str(results)], n, f"collect (+{len(new)} runs)", root / "inc.txt")
        timings.append(t)
    finally:
        for lock in held:
            lock.release()
    counts: dict[str, int] = {}
    for s in want.values():
        counts[s] = counts.get(s, 0) + 1
    out = {"runs": n, "timings": [asdict(t) for t in timings], "states": counts, "states_match": states_match,
           "run_folders": n - counts["missing"] + len(new), "expand_in_process_s": round(expand_s, 2),
           "generate_s": round(generate_s, 2)}  # fmt: skip
    if verify:
        out["incremental_equals_full"] = incremental_equals_full(results)
    return out


def incremental_equals_full(results: Path) -> bool:
    """The tables the incremental collect wrote equal a full rebuild's (both through a parquet round trip)."""
    import pandas as pd

    runs, curves = collect(results, write=False, full=True)
    for df, name in ((runs, "runs.parquet"), (curves, "curves.parquet")):
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        try:
            pd.testing.assert_frame_equal(pd.read_parquet(results / name), pd.read_parquet(buf))
        except AssertionError:
            return False
    return True


# ---------------------------------------------------------------------- report
def format_report(res: list[dict[str, Any]]) -> str:
    lines = [f"{'N':>6}  {'command':<22} {'wall s':>8} {'ms/run':>8} {'peak RSS MB':>12}"]
    for r in res:
        for t in r["timings"]:
            lines.append(f"{r['runs']:>6}  {t['command']:<22} {t['wall_s']:>8.2f} {t['ms_per_run']:>8.2f} "
                         f"{t['peak_rss_mb']:>12.0f}")  # fmt: skip
        ok = "match" if r["states_match"] else "DO NOT MATCH"
        lines.append(f"{'':>6}  --status states {ok} the ones written: {r['states']}")
        if "incremental_equals_full" in r:
            lines.append(f"{'':>6}  incremental collect equals a full rebuild: {r['incremental_equals_full']}")
    if len(res) > 1:
        lo, hi = res[0], res[-1]
        for a, b in zip(lo["timings"], hi["timings"]):
            lines.append(f"growth {a['command']}: {b['wall_s'] / a['wall_s']:.1f}x time for "
                         f"{hi['runs'] / lo['runs']:.0f}x runs")  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ant.sweep.orchestrator_bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[1000], help=f"grid sizes (multiples of {PER_LR})")
    ap.add_argument("--verify", action="store_true", help="also check incremental collect == full rebuild")
    ap.add_argument("--json", help="write the figures to this JSON file")
    ap.add_argument("--keep", help="build the trees under this folder and keep them (default: a temp folder)")
    args = ap.parse_args(argv)
    try:
        for n in args.runs:
            check_runs(n)
    except ConfigError as e:
        print(f"ant.sweep.orchestrator_bench: error: {e}", file=sys.stderr)
        return 2
    load0 = os.getloadavg()
    res = []
    for n in args.runs:
        if args.keep:
            root = Path(args.keep) / f"n{n}"
            root.mkdir(parents=True, exist_ok=False)
            res.append(bench_one(n, root, args.verify))
        else:
            with tempfile.TemporaryDirectory(prefix=f"ant-bench-{n}-") as tmp:
                res.append(bench_one(n, Path(tmp), args.verify))
    print(format_report(res))
    if args.json:
        command = "python -m ant.sweep.orchestrator_bench " + " ".join(argv if argv is not None else sys.argv[1:])
        doc = {"date": time.strftime("%Y-%m-%d %H:%M %Z"), "command": command, "cpus": os.cpu_count(),
               "loadavg_before": load0, "loadavg_after": os.getloadavg(), "grids": res}  # fmt: skip
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        write_json(Path(args.json), doc)
    return 0 if all(r["states_match"] and r.get("incremental_equals_full", True) for r in res) else 1


if __name__ == "__main__":
    sys.exit(main())
