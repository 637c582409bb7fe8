"""Fixtures for the data tests: small corpora of real English (the standard library's docstrings), written as
.txt / .jsonl files, and a session-wide cache so the small BPE tokenizers are trained once."""

from __future__ import annotations

import importlib
import inspect
import json

import pytest

from ant.config import DataConfig

_MODULE_NAMES = """
argparse json csv collections functools itertools pathlib subprocess threading logging email
http.client urllib.request textwrap string re datetime decimal fractions statistics random heapq
bisect queue socket ssl sqlite3 zipfile tarfile gzip shutil tempfile unittest doctest pdb inspect
typing dataclasses enum abc contextlib asyncio concurrent.futures multiprocessing pickle copy pprint
difflib calendar locale gettext optparse getopt configparser hashlib hmac secrets uuid struct codecs
io os sys time math operator weakref ast dis tokenize traceback warnings platform sched selectors
signal mailbox mimetypes base64 html xml.dom.minidom xml.etree.ElementTree wave colorsys cmd shlex
glob fnmatch filecmp fileinput linecache plistlib
"""
MODULES = _MODULE_NAMES.split()


def _module_text(name: str) -> str:
    mod = importlib.import_module(name)
    parts = [inspect.getdoc(mod) or ""]
    for attr, obj in sorted(vars(mod).items()):
        if attr.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            parts.append(inspect.getdoc(obj) or "")
    return "\n\n".join(p for p in parts if p)


@pytest.fixture(scope="session")
def english_docs() -> list[str]:
    """~90 documents of real English prose (~450 KB), each starting with a unique marker 'Document NNN'."""
    texts = [_module_text(m) for m in MODULES]
    return [f"Document {i:03d} ({m}).\n\n{t}" for i, (m, t) in enumerate(zip(MODULES, texts)) if len(t) >= 300]


@pytest.fixture(scope="session")
def corpus_files(tmp_path_factory, english_docs):
    """The same documents as a .jsonl file, a .txt file and a folder of .txt files."""
    root = tmp_path_factory.mktemp("corpora")
    jsonl = root / "docs.jsonl"
    jsonl.write_text("".join(json.dumps({"text": d, "id": i}) + "\n" for i, d in enumerate(english_docs)))
    txt = root / "all.txt"
    txt.write_text("\n\n\n".join(english_docs))
    folder = root / "folder"
    folder.mkdir()
    for i, d in enumerate(english_docs):
        (folder / f"{i:03d}.txt").write_text(d)
    return {"jsonl": jsonl, "txt": txt, "folder": folder}


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory):
    return str(tmp_path_factory.mktemp("ant-cache"))


@pytest.fixture
def small_cfg(corpus_files, data_cache):
    """A DataConfig on the jsonl corpus; tests replace fields with dataclasses.replace."""
    return DataConfig(corpus=str(corpus_files["jsonl"]), tokenizer="bytes", val_tokens=4096, cache_dir=data_cache)
