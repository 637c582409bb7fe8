"""Readers that turn the files shipped in registry packages into plain English documents.

Each reader is a pure function of bytes -> list of `Section`s (a title and its text), so the default corpus is
deterministic: the same package files always give the same documents. No external programs are needed beyond
`dpkg-deb` to unpack a .deb (sources.py); the SWORD and R formats are read here directly because their own
tools (`mod2imp` from libsword-utils, R) would pull in large dependency trees.

Formats:
- SWORD zText/zCom modules (Bible texts and commentaries): a verse index (`*.bzv`/`*.czv`) pointing into
  zlib-compressed blocks (`*.bzs` block table, `*.bzz` data). Entries hold OSIS XML; we keep the words, drop
  footnotes, and cut the module at its `<chapter>` milestones. Commentaries point many verses at one entry
  (Matthew Henry repeats each chapter's commentary per verse), so entries are de-duplicated by location.
- R lazy-load databases (`Rdata.rdb`, janeaustenr): a sequence of zlib-compressed XDR-serialised objects; each
  novel is a character vector of lines.
- Plain text in tarballs (PyPI sdists): Project Gutenberg boilerplate is cut where present.
"""

from __future__ import annotations

import html
import re
import struct
import zlib
from dataclasses import dataclass

# Documents larger than this are cut at paragraph (or line) boundaries: the train/val split works by document,
# and many documents of moderate size make a validation set that mixes every source.
MAX_DOC_CHARS = 32_000


@dataclass(frozen=True)
class Section:
    title: str
    text: str


# ---------------------------------------------------------------------- SWORD modules
def sword_entries(files: dict[str, bytes]) -> list[bytes]:
    """All distinct entries of a SWORD compressed module, in canonical order (OT then NT).

    `files` maps a file name ('ot.bzv', 'nt.czz', ...) to its bytes. The index record is 10 bytes (zverse:
    block u32, offset u32, size u16) or 12 bytes (zverse4: size u32); which one is not in the .conf reliably
    (MHCC says zCom4 but ships 10-byte records), so we take the layout whose records all point inside blocks.
    """
    out: list[bytes] = []
    seen: set[tuple[str, int, int, int]] = set()
    for testament in ("ot", "nt"):
        ext = next((e for e in "bc" if f"{testament}.{e}zs" in files), None)
        if ext is None:
            continue
        bzs, bzv, bzz = (files[f"{testament}.{ext}z{k}"] for k in "svz")
        blocks = [struct.unpack_from("<III", bzs, i) for i in range(0, len(bzs) - len(bzs) % 12, 12)]
        records = _verse_records(bzv, blocks)
        cache: tuple[int, bytes] = (-1, b"")
        for block, offset, size in records:
            key = (testament, block, offset, size)
            if size == 0 or key in seen:
                continue
            seen.add(key)
            if cache[0] != block:
                start, length, _ = blocks[block]
                cache = (block, zlib.decompress(bzz[start : start + length]))
            out.append(cache[1][offset : offset + size])
    return out


def _verse_records(bzv: bytes, blocks: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    for rec, fmt in ((12, "<III"), (10, "<IIH")):
        if len(bzv) % rec:
            continue
        records = [struct.unpack_from(fmt, bzv, i) for i in range(0, len(bzv), rec)]
        if all(size == 0 or (b < len(blocks) and off + size <= blocks[b][2]) for b, off, size in records):
            return records
    raise ValueError("unrecognised SWORD verse index layout")


_NOTE = re.compile(r"<note\b[^>]*?(?<!/)>.*?</note>", re.S)
# Tags that end a line of running text (paragraphs, titles, poetry lines, table rows); all others are inline.
_BLOCK_TAG = re.compile(r"<(?:div|chapter|title|/title|l|lg|lb|item|list|row|table|p|/p)\b[^>]*>")
_TAG = re.compile(r"<[^>]+>")
_CHAPTER = re.compile(r'<chapter\b[^>]*\bsID="([^"]+)"[^>]*/>')


def osis_sections(entries: list[bytes]) -> list[Section]:
    """OSIS-tagged entries -> plain-text sections, one per chapter (text before the first chapter included)."""
    xml = " ".join(e.decode("utf-8", errors="replace") for e in entries)
    parts = _CHAPTER.split(xml)  # [before, id1, text1, id2, text2, ...]
    titled = [("front", parts[0])] + list(zip(parts[1::2], parts[2::2]))
    sections = []
    for title, chunk in titled:
        text = _NOTE.sub("", chunk)
        text = _BLOCK_TAG.sub("\n", text)
        text = html.unescape(_TAG.sub("", text))
        text = tidy(text)
        if text:
            sections.append(Section(title, text))
    return sections


# ---------------------------------------------------------------------- R character vectors (janeaustenr)
def r_character_vectors(rdb: bytes) -> list[list[str]]:
    """Every character vector stored in an R lazy-load database, in file order.

    Each record is a 4-byte big-endian length followed by a zlib stream holding one object in R's XDR
    serialisation ('X\\n', version, R versions, [encoding], then the object). Only plain character vectors are
    decoded (what janeaustenr stores); other records are skipped.
    """
    vectors, pos = [], 0
    while pos + 4 < len(rdb):
        d = zlib.decompressobj()
        payload = d.decompress(rdb[pos + 4 :])
        pos = len(rdb) - len(d.unused_data)
        vec = _read_strsxp(payload)
        if vec is not None:
            vectors.append(vec)
    return vectors


def _read_strsxp(buf: bytes) -> list[str] | None:
    if buf[:2] != b"X\n":
        return None
    (version,) = struct.unpack_from(">i", buf, 2)
    pos = 14
    if version == 3:  # native encoding name follows the header
        (n,) = struct.unpack_from(">i", buf, pos)
        pos += 4 + n
    (flags,) = struct.unpack_from(">i", buf, pos)
    if flags & 0xFF != 16:  # STRSXP
        return None
    (length,) = struct.unpack_from(">i", buf, pos + 4)
    pos += 8
    out = []
    for _ in range(length):
        cflags, n = struct.unpack_from(">ii", buf, pos)
        pos += 8
        if n == -1:  # NA_character_
            out.append("")
            continue
        # levels bit 2 = latin-1; everything else in these files is ASCII or UTF-8
        enc = "latin-1" if (cflags >> 12) & 4 else "utf-8"
        out.append(buf[pos : pos + n].decode(enc, errors="replace"))
        pos += n
    return out


_CHAPTER_LINE = re.compile(r"^(?:CHAPTER|Chapter)\s+[IVXLC\d]+\.?\s*$", re.M)


def novel_sections(name: str, lines: list[str]) -> list[Section]:
    """A novel as lines -> one section per chapter; the title page goes with the first chapter."""
    text = "\n".join(lines)
    starts = [m.start() for m in _CHAPTER_LINE.finditer(text)]
    bounds = [0, *starts[1:]]
    sections = []
    for i, (a, b) in enumerate(zip(bounds, [*bounds[1:], len(text)])):
        t = tidy(text[a:b])
        if t:
            sections.append(Section(f"{name}.{i}", t))
    return sections


# ---------------------------------------------------------------------- plain text
_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (?:THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
_GUTENBERG_END = re.compile(
    r"^(?:\*\*\* ?END OF (?:THE|THIS) PROJECT GUTENBERG|End of (?:the )?Project Gutenberg)", re.M | re.I
)


def strip_gutenberg(text: str) -> str:
    m = _GUTENBERG_START.search(text)
    if m:
        text = text[m.end() :]
    m = _GUTENBERG_END.search(text)
    if m:
        text = text[: m.start()]
    return text


def tidy(text: str) -> str:
    """Normalise whitespace: no trailing spaces, single spaces inside lines, at most one blank line."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\u00a0", " ")
    text = re.sub(r"[ \t\f\v]+", " ", text)
    text = re.sub(r" ?\n ?", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def chunk(section: Section, max_chars: int = MAX_DOC_CHARS) -> list[Section]:
    """Cut a long section into pieces of at most ~max_chars at paragraph boundaries (line boundaries for a
    paragraph that is itself too long), so no piece is tiny and nothing is lost."""
    if len(section.text) <= max_chars:
        return [section]
    units: list[tuple[str, str]] = []  # (separator before the unit, unit): keeps the text exactly
    for para in section.text.split("\n\n"):
        lines = para.split("\n") if len(para) > max_chars else [para]
        units.extend(("\n\n" if i == 0 else "\n", line) for i, line in enumerate(lines))
    pieces, current, size = [], "", 0
    for sep, unit in units:
        if current and size + len(unit) > max_chars:
            pieces.append(current)
            current, size = "", 0
        current = f"{current}{sep}{unit}" if current else unit
        size += len(unit) + len(sep)
    if current:
        pieces.append(current)
    return [Section(f"{section.title}#{i}", p) for i, p in enumerate(pieces)]
