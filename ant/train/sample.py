"""A finished run's model back from its folder, and text from it.

    cfg, model = load_run("results/runs/<run_id>")         # the resolved RunConfig and the model, eval mode, CPU
    ant sample RUN_DIR --prompt "Blessed is" [--tokens 200 --temperature 0.8 --top-k 40 --seed 0]

`load_run` reads config.yaml and weights.pt (the final weights every completed or diverged run keeps) and checks
the weights against `weights_sha256` in summary.json. Sampling decodes with the run's own tokenizer
(`ant.data.load_tokens(cfg.data)`), never proposing the padding ids above the tokenizer's vocabulary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

from ant import runfolder
from ant.config import RunConfig
from ant.data import load_tokens
from ant.errors import ConfigError, FaultError, int_in
from ant.models import build_model
from ant.train.run import WEIGHTS


def load_run(run_dir: str | Path) -> tuple[RunConfig, nn.Module]:
    """(resolved config, model with the run's final weights, in eval mode on the CPU)."""
    run_dir = Path(run_dir)
    if not (run_dir / runfolder.CONFIG).is_file():
        raise ConfigError("run_dir", f"{run_dir} is not a run folder (no config.yaml)", "a folder under results/runs/")
    weights = run_dir / WEIGHTS
    summary = runfolder.Summary.read(run_dir) or runfolder.Summary({})
    if not weights.is_file():
        status = summary.raw.get("status", "unknown")
        raise ConfigError("run_dir", f"{run_dir} has no {WEIGHTS} (status {status}): only finished runs keep weights")
    expected = summary.text("weights_sha256")
    if expected and runfolder.sha256_file(weights) != expected:
        raise FaultError(f"{weights} does not match weights_sha256 in summary.json (corrupt or replaced)")
    cfg = RunConfig.from_yaml(run_dir / runfolder.CONFIG)
    model = build_model(cfg.model.arch, cfg.model.size, vocab_size=cfg.model.vocab_size, **cfg.model.options)
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return cfg, model.eval()


@torch.no_grad()
def generate(model: nn.Module, prompt: list[int], *, tokens: int, seq_len: int, vocab: int, temperature: float = 0.8,
             top_k: int | None = None, seed: int = 0) -> list[int]:  # fmt: skip
    """`tokens` new ids after `prompt`, each sampled from the last `seq_len` ids' next-token distribution over
    the first `vocab` ids (temperature 0: the most likely one)."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.tensor([prompt], dtype=torch.long)
    for _ in range(tokens):
        logits = model(ids[:, -seq_len:])[0, -1, :vocab].float()
        if temperature == 0:
            nxt = logits.argmax().view(1, 1)
        else:
            logits = logits / temperature
            if top_k:
                kth = torch.topk(logits, min(top_k, vocab)).values[-1]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(torch.softmax(logits, -1), 1, generator=g).view(1, 1)
        ids = torch.cat([ids, nxt], dim=1)
    return ids[0, len(prompt) :].tolist()


# One token at a time on a small model: 10^5 tokens is minutes; --tokens 10**12 would run silently for ever
MAX_NEW_TOKENS = 100_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("run_dir", help="a finished run's folder (results/runs/<run_id>)")
    p.add_argument("--prompt", required=True, help="text the model continues")
    p.add_argument(
        "--tokens", type=int_in(1, MAX_NEW_TOKENS), default=200, help="how many tokens to generate (default 200)"
    )
    p.add_argument("--temperature", type=float, default=0.8, help="0 = always the most likely token (default 0.8)")
    p.add_argument(
        "--top-k", type=int_in(0, 2**24), default=40, help="sample among the k most likely tokens; 0 = all (default 40)"
    )
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0, help="random seed of the sampling (default 0)")


def run(args: argparse.Namespace) -> int:
    for field, value, ok in (("--tokens", args.tokens, args.tokens >= 1), ("--top-k", args.top_k, args.top_k >= 0),
                             ("--temperature", args.temperature, 0 <= args.temperature <= 100)):  # fmt: skip
        if not ok:
            raise ConfigError(field, f"got {value}", {"--tokens": ">= 1", "--top-k": ">= 0"}.get(field, "0..100"))
    cfg, model = load_run(args.run_dir)
    data = load_tokens(cfg.data, progress=False)
    prompt = data.tokenizer.encode(args.prompt)
    if not prompt:
        raise ConfigError("--prompt", "empty after tokenization", "some text")
    new = generate(model, prompt, tokens=args.tokens, seq_len=cfg.data.seq_len, vocab=data.vocab_size,
                   temperature=args.temperature, top_k=args.top_k or None, seed=args.seed)  # fmt: skip
    sys.stdout.write(args.prompt + data.tokenizer.decode(new) + "\n")
    return 0
