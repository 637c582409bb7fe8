"""`ant params`: parameter count and training FLOPs/token of an architecture at a size (built on the meta device,
so even 1B costs no memory and well under a second).

    ant params --arch angpt --size 0.5B                 # vocab 50304, seq_len 2048 (the paper's)
    ant params --arch ngpt --size tiny3 --vocab 4096 --seq-len 128 --json
    ant params --arch angpt --size 0.5B -o lerp=false   # options as in model.options (values parsed as YAML)
    ant params --set model.arch=angpt --set model.size=tiny3 --set model.options.n_layers=3 --set data.seq_len=128

`--set` takes the config's own keys (as `ant train --set` does) for the fields that decide the count: model.arch,
model.size, model.vocab_size, model.options.KEY and data.seq_len. The models layer does not read ant.config, so
these few keys are mapped here.
"""

from __future__ import annotations

import argparse
import json

from ant.errors import ConfigError, int_in, parse_yaml_value
from ant.models import ARCHS, PAPER_VOCAB, SIZES, build_model


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", help=f"one of {', '.join(ARCHS)} (or --set model.arch=...)")
    parser.add_argument("--size", help=f"one of {', '.join(SIZES)} (or --set model.size=...)")
    parser.add_argument(
        "--vocab", type=int_in(2, 2**24), default=PAPER_VOCAB, help="vocabulary size (default %(default)s)"
    )
    parser.add_argument(
        "--seq-len", type=int_in(1, 2**16), default=2048, help="context for the attention FLOPs (default %(default)s)"
    )
    parser.add_argument(
        "-o", "--option", action="append", default=[], metavar="KEY=VALUE", help="model option (repeatable)"
    )
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="a config key as in ant train (model.arch, model.size, ...; repeatable)")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object")


# config key -> the argparse destination it sets (ant.config is a higher layer; these are its names)
SET_KEYS = {"model.arch": "arch", "model.size": "size", "model.vocab_size": "vocab", "data.seq_len": "seq_len"}


def apply_overrides(args: argparse.Namespace) -> None:
    """--set KEY=VALUE onto args (values parsed as YAML scalars); model.options.KEY joins the -o options."""
    for item in args.overrides:
        if "=" not in item:
            raise ConfigError("--set", f"expected key=value, got {item!r}")
        key, raw = (x.strip() for x in item.split("=", 1))
        if key.startswith("model.options.") and len(key.split(".")) == 3:
            args.option.append(f"{key.split('.')[2]}={raw}")
        elif key in SET_KEYS:
            setattr(args, SET_KEYS[key], parse_yaml_value(raw, key))
        else:
            raise ConfigError(key, "not a key ant params uses", [*SET_KEYS, "model.options.KEY"])
    if isinstance(args.vocab, bool) or not isinstance(args.vocab, int) or not 2 <= args.vocab <= 2**24:
        shown = args.vocab if not isinstance(args.vocab, int) or args.vocab < 10**20 else "a huge integer"
        raise ConfigError("model.vocab_size", f"must be an integer in [2, {2**24}], got {shown!r}")
    if isinstance(args.seq_len, bool) or not isinstance(args.seq_len, int) or not 1 <= args.seq_len <= 2**16:
        raise ConfigError("data.seq_len", f"must be an integer in [1, {2**16}], got {args.seq_len!r}"[:120])
    for flag in ("arch", "size"):
        if getattr(args, flag) is None:
            raise ConfigError(f"--{flag}", f"required (or --set model.{flag}=...)")


def describe(arch: str, size: str, vocab: int, seq_len: int, options: dict | None = None) -> dict:
    """The figures `ant params` prints, as a dict."""
    if isinstance(seq_len, bool) or not isinstance(seq_len, int) or seq_len < 1:
        raise ConfigError("--seq-len", f"must be a positive integer, got {seq_len!r}")
    options = options or {}
    model = build_model(arch, size, vocab_size=vocab, device="meta", **options)
    c = model.cfg
    return {
        "arch": arch,
        "size": size,
        "d_model": c.d_model,
        "n_layers": c.n_layers,
        "n_heads": c.n_heads,
        "vocab_size": c.vocab_size,
        "seq_len": seq_len,
        "options": options,
        "num_params": model.num_params(),
        "matmul_params": model.matmul_params(),
        "flops_per_token": model.flops_per_token(seq_len),
    }


def parse_options(items: list[str]) -> dict:
    out = {}
    for item in items:
        if "=" not in item:
            raise ConfigError("--option", f"expected KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        out[key.strip()] = parse_yaml_value(raw, f"--option {key.strip()}")
    return out


def run(args: argparse.Namespace) -> int:
    apply_overrides(args)
    info = describe(args.arch, args.size, args.vocab, args.seq_len, parse_options(args.option))
    if args.json:
        print(json.dumps(info))
        return 0
    opts = " ".join(f"{k}={v}" for k, v in info["options"].items())
    print(
        f"{info['arch']} {info['size']}: d_model={info['d_model']} n_layers={info['n_layers']} "
        f"n_heads={info['n_heads']} vocab={info['vocab_size']} {opts}".rstrip()
    )
    print(f"  parameters       {info['num_params']:>16,d}  ({_short(info['num_params'])})")
    print(f"  matmul params    {info['matmul_params']:>16,d}  (embedding lookup excluded, head included)")
    print(
        f"  FLOPs/token      {info['flops_per_token']:>16.4g}  "
        f"(6 N_matmul + 6 L d T, T={info['seq_len']}, training fwd+bwd)"
    )
    return 0


def _short(n: int) -> str:
    return f"{n / 1e9:.3f}B" if n >= 1e9 else f"{n / 1e6:.2f}M"
