"""Synthetic run folders from known laws, in the exact ant.train format (config.yaml, summary.json,
metrics.parquet). Tests, the notebooks' headless run and demos use them: a fit that recovers the parameters that
generated the data is a fit that works, independent of whether training has produced anything yet.

The law: L(N, D, lr, bs) = E + A/N^alpha + B/(s D)^beta + p_lr ln(lr/lr*(N))^2 + p_bs ln(bs/bs*(N))^2, times
lognormal noise per (run, seed). `s` is the architecture's data efficiency (a convergence speedup of exactly s
over an architecture with s = 1); lr*(N) and bs*(N) are power laws.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ant import runfolder
from ant.config import RunConfig
from ant.fsio import atomic_write_text
from ant.laws.collect import atomic_parquet


@dataclass
class SynthLaw:
    E: float = 1.8
    A: float = 480.0
    B: float = 2100.0
    alpha: float = 0.35
    beta: float = 0.37
    speedup: float = 1.0  # data efficiency s
    lr_coef: float = 0.3
    lr_exp: float = -0.3
    bs_coef: float = 2e-4
    bs_exp: float = 0.7
    p_lr: float = 0.1
    p_bs: float = 0.05
    noise: float = 0.0  # relative std of the final loss across seeds
    n_layers: int = 4
    alpha_growth: float = 0.1  # App. M: alpha rises from 0.05 by this much (0 for archs without alpha)
    resid_growth: float = 1.0  # residual-norm growth with depth (GPT+ large, anGPT small)

    def lr_opt(self, N):
        return self.lr_coef * np.asarray(N, dtype=float) ** self.lr_exp

    def bs_opt(self, N):
        return self.bs_coef * np.asarray(N, dtype=float) ** self.bs_exp

    def loss(self, N, D, lr=None, bs=None):
        N, D = np.asarray(N, dtype=float), np.asarray(D, dtype=float)
        L = self.E + self.A / N**self.alpha + self.B / (self.speedup * D) ** self.beta
        if lr is not None:
            L = L + self.p_lr * np.log(np.asarray(lr) / self.lr_opt(N)) ** 2
        if bs is not None:
            L = L + self.p_bs * np.log(np.asarray(bs) / self.bs_opt(N)) ** 2
        return L


DEFAULT_LAWS = {
    "gptplus": SynthLaw(resid_growth=6.0, alpha_growth=0.0),
    "angpt": SynthLaw(speedup=1.4, bs_coef=1e-6, bs_exp=1.0, lr_coef=0.06, lr_exp=-0.18, resid_growth=0.3),
    "ngpt": SynthLaw(speedup=1.25, resid_growth=0.0, alpha_growth=0.05),
}
SIZE_PARAMS = {"tiny2": 1.0e6, "tiny3": 2.0e6, "tiny4": 4.0e6, "tiny5": 8.0e6}


def write_run(
    root: Path,
    law: SynthLaw,
    *,
    arch: str,
    size: str,
    num_params: float,
    tokens: int,
    batch_size: int,
    lr: float,
    seed: int = 0,
    seq_len: int = 128,
    n_evals: int = 20,
    status: str = "completed",
) -> Path:
    """One run folder whose final val loss is the law's value times seed noise; the curve follows the law in D."""
    cfg = RunConfig()
    cfg.model.arch, cfg.model.size = arch, size
    cfg.optim.lr = float(lr)
    cfg.data.seq_len = seq_len
    cfg.train.tokens, cfg.train.batch_size, cfg.train.seed = int(tokens), int(batch_size), int(seed)
    cfg.num_params = int(num_params)
    cfg.steps = max(1, math.ceil(tokens / (batch_size * seq_len)))
    cfg.out_dir = str(root)
    run_id = f"{arch}-{size}-{tokens}tok-b{batch_size}-lr{lr:.3g}-s{seed}"
    rdir = root / run_id
    rdir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(zlib.crc32(run_id.encode()))  # reproducible across processes
    factor = 1.0 + law.noise * rng.standard_normal()
    steps = np.unique(np.linspace(0, cfg.steps, n_evals + 1).round().astype(int))[1:]
    toks = steps * batch_size * seq_len
    val = law.loss(num_params, np.maximum(toks, 1), lr, batch_size) * factor
    frac = steps / cfg.steps
    m = {
        "step": steps,
        "tokens": toks,
        "train_loss": val * 1.01,
        "val_loss": val,
        "lr": lr * (0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * frac))),
        "grad_norm": 1.0 / (1 + frac),
        "tokens_per_s": np.full(len(steps), 1e5),
    }
    for i in range(law.n_layers + 1):  # residual norm entering block i grows with depth and training
        m[f"resid_norm_{i}"] = 1.0 + law.resid_growth * i * (0.2 + frac)
    if law.alpha_growth:
        for i in range(law.n_layers):
            m[f"alpha_a_{i}"] = 0.05 + law.alpha_growth * frac * (1 + i / law.n_layers)
            m[f"alpha_m_{i}"] = 0.05 + 0.8 * law.alpha_growth * frac * (1 + i / law.n_layers)
    flops = 6.0 * num_params * tokens
    summary = {
        "run_id": run_id,
        "arch": arch,
        "size": size,
        "num_params": int(num_params),
        "tokens": int(tokens),
        "steps": cfg.steps,
        "batch_size": int(batch_size),
        "seq_len": seq_len,
        "lr": float(lr),
        "seed": int(seed),
        "status": status,
        "final_val_loss": float(val[-1]) if status == "completed" else None,
        "final_train_loss": float(val[-1] * 1.01),
        "diverged_step": None,
        "flops": flops,
        "wall_time_s": tokens / 1e5,
        "tokens_per_s": 1e5,
        "device": "cpu",
        "torch_version": "synthetic",
        "finished_at": "2026-01-01T00:00:00Z",
        "error": None,
    }
    atomic_write_text(rdir / runfolder.CONFIG, cfg.to_yaml())
    atomic_parquet(pd.DataFrame(m), rdir / runfolder.METRICS)
    atomic_write_text(rdir / runfolder.SUMMARY, json.dumps(summary, indent=1))
    return rdir


@dataclass
class SynthSuite:
    """A small but complete results/ folder: HP sweep, budget sweep, compute-scaling runs and a bench JSON."""

    laws: dict[str, SynthLaw] = field(default_factory=lambda: dict(DEFAULT_LAWS))
    sizes: dict[str, float] = field(default_factory=lambda: dict(SIZE_PARAMS))
    hp_archs: tuple[str, ...] = ("gptplus", "angpt")
    lr_factors: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0)
    bs_factors: tuple[float, ...] = (0.5, 1.0, 2.0)
    budget_size: str = "tiny4"
    budget_multiples: tuple[float, ...] = (5, 10, 20, 40, 80)
    compute_multiples: tuple[float, ...] = (10, 40, 80)
    seeds: tuple[int, ...] = (0, 1)
    noise: float = 0.001

    def write(self, results: Path) -> Path:
        root = Path(results) / "runs"
        for arch, law in self.laws.items():
            law.noise = self.noise
            for size, N in self.sizes.items():
                lr0, bs0 = float(law.lr_opt(N)), float(law.bs_opt(N))
                if arch in self.hp_archs:  # HP sweep at 20 tokens/param (paper §5.1)
                    for fb in self.bs_factors:
                        for fl in self.lr_factors:
                            bs = max(1, round(bs0 * fb))
                            write_run(root, law, arch=arch, size=size, num_params=N, tokens=int(20 * N),
                                      batch_size=bs, lr=lr0 * fl)  # fmt: skip
                for mult in self.compute_multiples:  # compute scaling at the recipe HPs
                    write_run(root, law, arch=arch, size=size, num_params=N, tokens=int(mult * N),
                              batch_size=max(1, round(bs0)), lr=lr0)  # fmt: skip
            N = self.sizes[self.budget_size]
            bs, lr = max(1, round(float(law.bs_opt(N)))), float(law.lr_opt(N))
            for mult in self.budget_multiples:  # budget sweep with seeds (paper §5.2)
                for seed in self.seeds:
                    write_run(root, law, arch=arch, size=self.budget_size, num_params=N, tokens=int(mult * N),
                              batch_size=bs, lr=lr, seed=seed)  # fmt: skip
        bench = {
            "device": "synthetic",
            "results": [
                {"arch": "gptplus", "step_time_ms": 100.0, "tokens_per_s": 2.0e4, "mfu": 0.30},
                {"arch": "angpt", "step_time_ms": 103.0, "tokens_per_s": 1.94e4, "mfu": 0.29},
                {"arch": "ngpt", "step_time_ms": 110.0, "tokens_per_s": 1.82e4, "mfu": 0.27},
            ],
        }
        atomic_write_text(Path(results) / "bench" / "bench-cpu.json", json.dumps(bench, indent=1))
        return Path(results)


# ---------------------------------------------------------------------------------------------- compute-scaling design
# A realistic compute-scaling sweep for the frontier estimators (ant.laws.frontier / isoflop): 8 sizes over 1.7
# decades, each trained at 3 token budgets, with evaluation points along every run.
SCALING_SIZES = tuple(float(n) for n in np.geomspace(2e7, 1e9, 8))
SCALING_TOKENS_PER_PARAM = (10.0, 40.0, 160.0)


def scaling_curves(
    law: SynthLaw | None = None,
    *,
    sizes=SCALING_SIZES,
    tokens_per_param=SCALING_TOKENS_PER_PARAM,
    n_evals: int = 25,
    noise: float = 0.005,
    run_noise: float = 0.0,
    seed: int = 0,
    arch: str = "synth",
) -> pd.DataFrame:
    """Training curves of a sizes x budgets sweep following `law` (default SynthLaw(): Chinchilla-like, true
    N_opt exponent beta/(alpha+beta) = 0.514): one row per (run, evaluation), the columns of
    ant.laws.collect's curves table (run_id, arch, size, num_params, seed, status, step, tokens, flops, val_loss).

    Evaluation k of n_evals sits at tokens k/n_evals * D (evenly spaced steps, as ant.train evaluates) and its loss
    is the law at the tokens seen so far, L(N, D_k): the idealisation of a run whose schedule is tuned for every
    intermediate budget. Noise is lognormal: `noise` is the standard deviation of log loss per evaluation point,
    `run_noise` one shift of the whole curve per run (a seed effect). FLOPs = 6 N D. Reproducible from `seed`."""
    law = law or SynthLaw()
    rng = np.random.default_rng(seed)
    frames = []
    for i, N in enumerate(sizes):
        for tpp in tokens_per_param:
            D = float(tpp) * float(N)
            steps = np.arange(1, n_evals + 1)
            tokens = D * steps / n_evals
            shift = run_noise * rng.standard_normal()
            loss = law.loss(N, tokens) * np.exp(shift + noise * rng.standard_normal(n_evals))
            frames.append(pd.DataFrame({
                "run_id": f"{arch}-n{i}-{tpp:g}tpp", "arch": arch, "size": f"n{i}", "num_params": float(N),
                "seed": seed, "status": "completed", "step": steps, "tokens": tokens, "flops": 6.0 * N * tokens,
                "val_loss": loss,
            }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def final_points(curves: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation of every run in a curves table: the runs table's (num_params, tokens, final loss)."""
    last = curves.sort_values(["run_id", "tokens"]).groupby("run_id", sort=False).tail(1)
    return last.rename(columns={"val_loss": "final_val_loss"}).reset_index(drop=True)


def write_hp_sweep(
    results: Path,
    laws: dict[str, dict[float, SynthLaw]],
    sizes: dict[str, float],
    *,
    lr_factors: tuple[float, ...] = (0.25, 0.5, 1.0, 2.0, 4.0),
    bs_factors: tuple[float, ...] = (0.5, 1.0, 2.0),
    offset: float = 1.07,
    seeds: tuple[int, ...] = (0,),
    seq_len: int = 2048,
) -> Path:
    """An LR x batch grid per (arch, size, budget regime) from {arch: {tokens per parameter: SynthLaw}}: each regime
    has its own law, so the optimal LR and batch and their power laws in N change with the budget, as in real
    training. Grids are the regime's optimum x factors x `offset` (optima fall between grid points). Writes
    results/runs/<run_id>/ in write_run's format (4 evals per run, paper-like 2048-token sequences)."""
    root = Path(results) / "runs"
    for arch, per_regime in laws.items():
        for tpp, law in per_regime.items():
            for size, N in sizes.items():
                lr0, bs0 = float(law.lr_opt(N)) * offset, float(law.bs_opt(N)) * offset
                for bs in sorted({max(1, round(bs0 * fb)) for fb in bs_factors}):
                    for fl in lr_factors:
                        for seed in seeds:
                            write_run(root, law, arch=arch, size=size, num_params=N, tokens=round(tpp * N),
                                      batch_size=bs, lr=lr0 * fl, seed=seed, seq_len=seq_len, n_evals=4)  # fmt: skip
    return Path(results)
