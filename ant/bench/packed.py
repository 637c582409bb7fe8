"""Runs/hour of K runs trained packed (ant.models.packed, one process) against the same K runs trained one after
another, and the loss curves of both, on the study's shapes (bytes, seq 128, one thread).

    python -m ant.bench.packed --sizes tiny0 tiny1 tiny2 --batches 1 4 --runs 4 8 16 --steps 20 --out b.json
    python -m ant.bench.packed --sizes tiny1 --batches 4 --runs 4 --steps 200 --end-to-end /tmp/e2e --out e.json
    python -m ant.bench.packed --archs angpt --sizes d56L3 --seq-len 32 --batches 32 --runs 4 --compiled

`--compiled` times a third contestant, the same pack through the compiled packed step (ant.train.compiled), and
reports its speed-up over the eager pack and its warm-up (the first steps, graphs built; the Inductor cache is
whatever the machine holds).

Both sides are bare loops over the project's own pieces (build_model, the optimizer recipe, the LR schedule, clip,
project_weights), the single side in LMModule.training_step's order, so the ratio is the packing's alone (no
Lightning, evaluation or checkpoints on either side). Per (size, batch, K) the two are timed interleaved, `reps`
rounds each, in this process: the machine's load drifts alike over both. The sequential time is K x one run's
step time (the K runs have one shape; their data differs but not their cost).
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ant.config import RunConfig
from ant.data import TrainSampler
from ant.fsio import atomic_write_json
from ant.models import build_model
from ant.models.packed import pack
from ant.optimizers import build_optimizer, set_lr
from ant.train.module import token_loss
from ant.train.packed import PackedAdam, train_step
from ant.train.run import prepare


@dataclass
class Group:
    """K runs of one shape: the resolved config of run 0 and the (lr, seed) of each run."""

    cfg: RunConfig
    lrs: list[float]
    seeds: list[int]


def make_group(
    arch: str, size: str, batch: int, lrs: list[float], seeds: list[int], steps: int, seq_len: int = 128
) -> tuple[Group, object]:
    raw = RunConfig.from_dict({
        "model": {"arch": arch, "size": size},
        "data": {"corpus": "default", "tokenizer": "bytes", "seq_len": seq_len, "val_tokens": 32768},
        "optim": {"lr": lrs[0]},
        "train": {"device": "cpu", "batch_size": batch, "seed": seeds[0], "tokens": steps * batch * seq_len},
    })  # fmt: skip
    cfg, data = prepare(raw, progress=False)
    return Group(cfg, lrs, seeds), data


def _model(cfg: RunConfig, seed: int):
    torch.manual_seed(seed)  # as ant.train.run seeds before build_model: the run's own init
    m = cfg.model
    return build_model(m.arch, m.size, vocab_size=m.vocab_size, **m.options)


class SingleRun:
    """One run, LMModule.training_step's order: LR, forward/backward, clip, Adam, projection."""

    def __init__(self, g: Group, data, k: int):
        self.cfg = dataclasses.replace(g.cfg, optim=dataclasses.replace(g.cfg.optim, lr=g.lrs[k]))
        self.model = _model(self.cfg, g.seeds[k])
        self.opt = build_optimizer(self.model, self.cfg.optim)
        self.sampler = TrainSampler(data.train, self.cfg.data.seq_len, self.cfg.train.batch_size, g.seeds[k])

    def step(self, step: int) -> float:
        c = self.cfg
        set_lr(self.opt, step, c.optim, c.steps)
        x, y = self.sampler.batch(step)
        loss = token_loss(self.model, x, y)
        loss.backward()
        if c.optim.grad_clip:
            torch.nn.utils.clip_grad_norm_(list(self.model.parameters()), c.optim.grad_clip)
        self.opt.step()
        self.opt.zero_grad()
        self.model.project_weights()
        return float(loss.detach())


class PackedRuns:
    """The group's K runs as one packed model, each run its own init, data stream and LR."""

    def __init__(self, g: Group, data, compiled: bool = False):
        self.cfg, self.compiled = g.cfg, compiled
        singles = [_model(g.cfg, s) for s in g.seeds]
        self.model = pack(singles)
        self.opt = PackedAdam(self.model, singles[0], g.cfg.optim, g.lrs)
        T, B = g.cfg.data.seq_len, g.cfg.train.batch_size
        self.samplers = [TrainSampler(data.train, T, B, s) for s in g.seeds]

    def step(self, step: int) -> list[float]:
        x, y = zip(*(s.batch(step) for s in self.samplers))
        xs, ys = torch.stack(x), torch.stack(y)
        losses, _ = train_step(self.model, self.opt, xs, ys, step, self.cfg.steps, self.compiled)
        return losses.tolist()


def _time(fn, steps: range) -> float:
    t0 = time.perf_counter()
    for s in steps:
        fn(s)
    return time.perf_counter() - t0


def measure(arch: str, size: str, batch: int, runs: int, steps: int, reps: int, warmup: int = 3,
            seq_len: int = 128, compiled: bool = False) -> dict:  # fmt: skip
    """Seconds per optimizer step of one run alone and of K packed (and K packed compiled), interleaved `reps`
    times."""
    lrs = [3e-3 * 1.5**i for i in range(runs)]
    g, data = make_group(arch, size, batch, lrs, list(range(runs)), warmup + reps * steps, seq_len)
    contestants = {"single": SingleRun(g, data, 0), "packed": PackedRuns(g, data)}
    if compiled:
        contestants["packed_compiled"] = PackedRuns(g, data, compiled=True)
    warm = {name: _time(c.step, range(warmup)) for name, c in contestants.items()}
    total = dict.fromkeys(contestants, 0.0)
    for r in range(reps):
        window = range(warmup + r * steps, warmup + (r + 1) * steps)
        for name, c in contestants.items():
            total[name] += _time(c.step, window)
    per = {name: t / (reps * steps) for name, t in total.items()}
    row = {
        "arch": arch, "size": size, "batch": batch, "seq_len": seq_len, "runs": runs, "steps_timed": reps * steps,
        "single_step_s": per["single"], "packed_step_s": per["packed"],
        "speedup": runs * per["single"] / per["packed"],  # runs/hour packed over runs/hour sequential
    }  # fmt: skip
    if compiled:
        row |= {"packed_compiled_step_s": per["packed_compiled"],
                "compile_speedup": per["packed"] / per["packed_compiled"],  # over the eager pack
                "compile_warmup_s": warm["packed_compiled"] - warmup * per["packed_compiled"]}  # fmt: skip
    return row


def end_to_end(arch: str, size: str, batch: int, runs: int, steps: int, out: Path) -> dict:
    """Wall time of `runs` whole runs (evaluation, checkpoints, run folders included) trained by
    ant.train.train one after another and by ant.train.packed_run.train_packed at once, in this process."""
    from ant.train.packed_run import train_packed  # late: loads Lightning, which the bare-step bench never needs
    from ant.train.run import train  # late: as above

    def cfgs(where: str) -> list[RunConfig]:
        return [RunConfig.from_dict({
            "model": {"arch": arch, "size": size}, "out_dir": str(out / where),
            "data": {"corpus": "default", "tokenizer": "bytes", "seq_len": 128, "val_tokens": 32768},
            "optim": {"lr": 3e-3 * 1.5**k},
            "train": {"device": "cpu", "batch_size": batch, "seed": k, "tokens": steps * batch * 128, "num_threads": 1},
        }) for k in range(runs)]  # fmt: skip

    t0 = time.perf_counter()
    for c in cfgs("single"):
        train(c, progress=False)
    t_single = time.perf_counter() - t0
    t0 = time.perf_counter()
    train_packed(cfgs("packed"), progress=False)
    t_packed = time.perf_counter() - t0
    return {"arch": arch, "size": size, "batch": batch, "runs": runs, "steps": steps,
            "sequential_s": t_single, "packed_s": t_packed, "speedup": t_single / t_packed}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--archs", nargs="+", default=["gptplus"])
    ap.add_argument("--sizes", nargs="+", default=["tiny0", "tiny1", "tiny2"])
    ap.add_argument("--batches", nargs="+", type=int, default=[1, 4])
    ap.add_argument("--runs", nargs="+", type=int, default=[4, 8, 16])
    ap.add_argument("--steps", type=int, default=10, help="timed steps per round")
    ap.add_argument("--seq-len", type=int, default=128, help="sequence length (study v2: 32)")
    ap.add_argument("--compiled", action="store_true", help="also time the pack through the compiled step")
    ap.add_argument("--reps", type=int, default=2, help="interleaved rounds")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--end-to-end", type=Path, metavar="DIR",
                    help="instead: whole runs (ant train vs packed worker) with run folders under DIR")  # fmt: skip
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = []
    shapes = list(itertools.product(a.archs, a.sizes, a.batches, a.runs))
    if a.end_to_end:
        for arch, size, batch, k in shapes:
            r = end_to_end(arch, size, batch, k, a.steps, a.end_to_end)
            rows.append(r)
            print(f"{arch:8s} {size} b{batch} K={k:2d} {a.steps} steps: {k} runs one after another "
                  f"{r['sequential_s']:.1f} s, packed {r['packed_s']:.1f} s -> {r['speedup']:.2f}x",
                  flush=True)  # fmt: skip
        if a.out:
            atomic_write_json(a.out, {"what": "whole runs: ant train one after another vs one packed worker",
                                      "torch": torch.__version__, "host": platform.node(), "rows": rows})  # fmt: skip
        return 0
    for arch, size, batch, k in shapes:
        r = measure(arch, size, batch, k, a.steps, a.reps, seq_len=a.seq_len, compiled=a.compiled)
        rows.append(r)
        extra = (f"; compiled {r['packed_compiled_step_s'] * 1e3:7.2f} ms/step, {r['compile_speedup']:.2f}x the "
                 f"eager pack (warm-up {r['compile_warmup_s']:.1f} s)") if a.compiled else ""  # fmt: skip
        print(f"{arch:8s} {size} b{batch} K={k:2d}: one run {r['single_step_s'] * 1e3:7.2f} ms/step, "
              f"{k} packed {r['packed_step_s'] * 1e3:7.2f} ms/step -> {r['speedup']:.2f}x runs/hour{extra}",
              flush=True)  # fmt: skip
    doc = {"what": "runs/hour of K packed runs over K sequential runs (bare loops, interleaved, 1 thread)",
           "torch": torch.__version__, "host": platform.node(), "threads": 1, "rows": rows}  # fmt: skip
    if a.out:
        atomic_write_json(a.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
