"""A corpus as the rest of ant.data sees it: a named stream of documents with a fingerprint.

Its own file because both openers build one: ant.data.sources (the default corpus, user files) and
ant.data.stream (hf: corpora), and sources hands hf: names to stream; with the class in sources, stream imported
sources and sources (late) imported stream, a circle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field


@dataclass
class Corpus:
    """A named stream of documents with a content fingerprint (the cache key of everything derived from it)."""

    name: str
    fingerprint: str
    documents: Callable[[], Iterator[str]]  # a fresh iterator on each call
    manifest: dict = field(default_factory=dict)
    streamed: bool = False  # hf: corpora (ant.data.stream): read once, in order, as far as the token files need
