"""Three tokenizers behind one small interface: `encode(str) -> list[int]`, `decode(list[int]) -> str`,
`encode_batch(texts) -> list[np.ndarray]`, `vocab_size` and `eot_id` (the id that separates documents).

- bytes: UTF-8 bytes, vocab 256. Documents are separated by byte 0xFF, which never occurs in UTF-8, so the
  separator can never be confused with text and the vocabulary stays 256.
- bpe:   a byte-level BPE (GPT-2 style pre-tokenisation) trained with `tokenizers` on the training split,
  `<|endoftext|>` = id 0. Cached by (corpus/split hash, vocab size): training on the default corpus takes ~10 s.
- gpt2:  the GPT-2 (r50k) BPE through tiktoken. tiktoken downloads its vocabulary at run time, which fails
  offline, so we take the identical file shipped in the openai-whisper sdist (MIT) from PyPI, check its
  sha256 (environment.md §2), and build the Encoding from it. The file is cached, never committed.
- hf:NAME_OR_PATH: any Hugging Face `tokenizers` tokenizer.json: a file, a folder holding one, or a Hub name
  (fetched once with Tokenizer.from_pretrained, which needs network, and kept in <cache>/tokenizers/hf/, so
  later loads and SLURM nodes need none). Vocabulary size = the largest id + 1, added tokens included (GPT-NeoX:
  50,277; the model pads it to 50,304). Documents are encoded without the tokenizer's own special tokens (no
  BOS/post-processor) and each is followed by the end-of-text id: the first of EOS_CANDIDATES the vocabulary
  has. The sha256 of tokenizer.json is part of the token files' fingerprint.

Every tokenizer pickles as its constructor arguments (the files it loads), so that tokenising processes
(ant.data.stream) rebuild it instead of copying a Rust object.
"""

from __future__ import annotations

import functools
import os
import re
import tarfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ant.data.fetch import fetch_pypi, log, sha256_file
from ant.errors import ConfigError

TOKENIZERS = ("bytes", "bpe", "gpt2")  # and hf:NAME_OR_PATH (HFTokenizer)
EOT = "<|endoftext|>"
GPT2_VOCAB = 50257
GPT2_FILE_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
WHISPER_SDIST = "openai-whisper==20250625"
# GPT-2's pre-tokenisation regex (tiktoken's r50k_base).
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


class ByteTokenizer:
    name = "bytes"
    vocab_size = 256
    eot_id = 0xFF

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.frombuffer(t.encode("utf-8"), dtype=np.uint8) for t in texts]

    def decode(self, ids: Iterable[int]) -> str:
        data = bytes(int(i) for i in ids)
        return EOT.join(part.decode("utf-8", errors="replace") for part in data.split(b"\xff"))


class BPETokenizer:
    name = "bpe"

    def __init__(self, path: Path, vocab_size: int):
        from tokenizers import Tokenizer

        self.path = Path(path)
        self._tok = Tokenizer.from_file(str(self.path))
        # The configured size, not the learned one: a small corpus may yield fewer merges, and every id stays
        # below the configured size, which is what the model's embedding is sized by (tokenizer_vocab_size).
        self.vocab_size = vocab_size
        self.learned_vocab_size = self._tok.get_vocab_size()
        self.eot_id = self._tok.token_to_id(EOT)

    def __reduce__(self):
        return (BPETokenizer, (self.path, self.vocab_size))

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        fast = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)  # no offsets: faster when present
        return [np.asarray(e.ids, dtype=np.int64) for e in fast(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)

    @staticmethod
    def train(texts: Iterator[str], vocab_size: int, out: Path) -> None:
        """Train a byte-level BPE on `texts` and save it atomically to `out` (tokenizer.json)."""
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            min_frequency=2,
            special_tokens=[EOT],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        )
        tok.train_from_iterator(texts, trainer=trainer)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
        tok.save(str(tmp))
        os.replace(tmp, out)


class GPT2Tokenizer:
    name = "gpt2"
    vocab_size = GPT2_VOCAB

    def __init__(self, vocab_file: Path):
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe

        self.vocab_file = vocab_file
        ranks = load_tiktoken_bpe(str(vocab_file), expected_hash=GPT2_FILE_SHA256)
        self._enc = tiktoken.Encoding(
            name="gpt2", pat_str=GPT2_PATTERN, mergeable_ranks=ranks, special_tokens={EOT: GPT2_VOCAB - 1}
        )
        self.eot_id = GPT2_VOCAB - 1

    def __reduce__(self):
        return (GPT2Tokenizer, (self.vocab_file,))

    def encode(self, text: str) -> list[int]:
        # encode_ordinary: a literal "<|endoftext|>" in user text is text, not the separator
        return self._enc.encode_ordinary(text)

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        return [np.asarray(ids, dtype=np.int64) for ids in self._enc.encode_ordinary_batch(texts, num_threads=2)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._enc.decode([int(i) for i in ids])


HF_PREFIX = "hf:"
# End-of-text tokens, in the order looked for: GPT-2/GPT-NeoX/Pythia, Llama 3, Llama 2/T5/Mistral, Gemma.
EOS_CANDIDATES = ("<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>")


def is_hf(tokenizer: str) -> bool:
    return isinstance(tokenizer, str) and tokenizer.startswith(HF_PREFIX) and len(tokenizer) > len(HF_PREFIX)


class HFTokenizer:
    """A Hugging Face tokenizer.json through the `tokenizers` library (see the module docstring)."""

    name = "hf"

    def __init__(self, path: Path):
        self.path = Path(path)
        self._tok = _load_hf(self.path)
        self.sha256 = sha256_file(self.path)  # the token files' fingerprint holds it, meta.json records it
        self.vocab_size = hf_vocab_size(self.path)
        self.learned_vocab_size = self.vocab_size
        self.eot_id, self.eot_token = _eos(self._tok, self.path)

    def __reduce__(self):
        return (HFTokenizer, (self.path,))

    def encode(self, text: str) -> list[int]:
        return self._tok.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: list[str]) -> list[np.ndarray]:
        fast = getattr(self._tok, "encode_batch_fast", self._tok.encode_batch)
        return [np.asarray(e.ids, dtype=np.int64) for e in fast(texts, add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=False)


def _load_hf(path: Path):
    from tokenizers import Tokenizer

    try:
        return Tokenizer.from_file(str(path))
    except Exception as e:  # a file that is not a tokenizer.json: the Rust error says where it stopped
        raise ConfigError("data.tokenizer", f"{path} is not a readable tokenizer.json: {e}") from None


def _eos(tok, path: Path) -> tuple[int, str]:
    for token in EOS_CANDIDATES:
        i = tok.token_to_id(token)
        if i is not None:
            return i, token
    raise ConfigError("data.tokenizer", f"{path} has no end-of-text token to separate documents", EOS_CANDIDATES)


@functools.lru_cache(maxsize=16)
def _vocab_size(path: str, mtime_ns: int, size: int) -> int:
    return max(_load_hf(Path(path)).get_vocab(with_added_tokens=True).values()) + 1


def hf_vocab_size(path: Path) -> int:
    """Largest id + 1 over the vocabulary and the added tokens: every id the tokenizer emits is below it (ids
    may have gaps, so the count of tokens is not enough). Cached per file version: resolve() asks often."""
    st = Path(path).stat()
    return _vocab_size(str(path), st.st_mtime_ns, st.st_size)


def hf_tokenizer_file(tokenizer: str, cache_dir: Path, progress: bool = True) -> Path:
    """The tokenizer.json that `hf:NAME_OR_PATH` names: an existing file or a folder holding tokenizer.json, or
    else a Hub name, fetched once into <cache>/tokenizers/hf/ (needs network the first time)."""
    spec = tokenizer[len(HF_PREFIX) :]
    path = Path(spec).expanduser()
    if path.is_dir():
        path = path / "tokenizer.json"
        if not path.is_file():
            raise ConfigError("data.tokenizer", f"{spec} holds no tokenizer.json")
    if path.is_file():
        return path
    if spec.endswith(".json") or spec.startswith((".", "/", "~")):  # meant as a path: say so, not "no network"
        raise ConfigError("data.tokenizer", f"no such file: {spec}", "hf:PATH/tokenizer.json, hf:FOLDER or hf:NAME")
    cached = cache_dir / "tokenizers" / "hf" / re.sub(r"[^A-Za-z0-9._-]", "__", spec) / "tokenizer.json"
    if cached.is_file():
        return cached
    from tokenizers import Tokenizer

    log(progress, f"fetching the tokenizer {spec} from the Hugging Face Hub")
    try:
        tok = Tokenizer.from_pretrained(spec)
    except Exception as e:  # unknown name, no network: one line naming both possibilities
        msg = f"{spec!r} is no file or folder here, and the Hugging Face Hub has no tokenizer by that name or "
        raise ConfigError("data.tokenizer", msg + f"cannot be reached ({str(e).splitlines()[0][:200]})") from None
    cached.parent.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_name(f"{cached.name}.tmp-{os.getpid()}")
    tok.save(str(tmp))
    os.replace(tmp, cached)
    return cached


def gpt2_vocab_file(cache_dir: Path, progress: bool = True) -> Path:
    """The r50k/GPT-2 rank file, taken once from the openai-whisper sdist on PyPI and checked by sha256."""
    path = cache_dir / "tokenizers" / "gpt2.tiktoken"
    if path.exists() and sha256_file(path) == GPT2_FILE_SHA256:
        return path
    log(progress, f"pip download {WHISPER_SDIST} (for its gpt2.tiktoken)")
    sdist = fetch_pypi(WHISPER_SDIST, cache_dir / "downloads")
    with tarfile.open(sdist) as tf:
        member = next((m for m in tf.getmembers() if m.name.endswith("whisper/assets/gpt2.tiktoken")), None)
        if member is None:
            raise ConfigError("data.tokenizer", f"{sdist.name} holds no whisper/assets/gpt2.tiktoken")
        data = tf.extractfile(member).read()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    if sha256_file(tmp) != GPT2_FILE_SHA256:
        tmp.unlink()
        raise ConfigError("data.tokenizer", f"gpt2.tiktoken from {sdist.name} fails its sha256 check")
    os.replace(tmp, path)
    return path


def bpe_path(cache_dir: Path, split_key: str, vocab_size: int) -> Path:
    return cache_dir / "tokenizers" / f"bpe-{vocab_size}-{split_key[:16]}" / "tokenizer.json"
