"""The package-format readers, on small archives built here byte by byte in the documented formats."""

from __future__ import annotations

import struct
import zlib

import pytest

from ant.data import extract
from ant.data.extract import Section


def _sword_module(entries: list[bytes | None], wide: bool, links: dict[int, int] | None = None) -> dict[str, bytes]:
    """A one-testament SWORD zText module, one entry per verse slot (None = empty slot), two entries per block.
    `links` makes slot i point at the same bytes as slot j (how commentaries share one entry)."""
    blocks, index, bzz, bzs = [], [], b"", b""
    for i in range(0, len(entries), 2):
        blocks.append([e for e in entries[i : i + 2]])
    for b, block in enumerate(blocks):
        raw = b"".join(e or b"" for e in block)
        comp = zlib.compress(raw)
        bzs += struct.pack("<III", len(bzz), len(comp), len(raw))
        bzz += comp
        off = 0
        for e in block:
            index.append((b, off, len(e or b"")))
            off += len(e or b"")
    for i, j in (links or {}).items():
        index[i] = index[j]
    fmt = "<III" if wide else "<IIH"
    bzv = b"".join(struct.pack(fmt, *rec) for rec in index)
    return {"ot.bzs": bzs, "ot.bzv": bzv, "ot.bzz": bzz}


@pytest.mark.parametrize("wide", [False, True])
def test_sword_entries_reads_both_index_layouts_and_dedupes_links(wide):
    entries = [b'<chapter sID="Gen.1"/>', b"In the beginning", None, b"and the earth", b"was void", b"x"]
    files = _sword_module(entries, wide, links={5: 4})  # slot 5 is a link to slot 4
    assert extract.sword_entries(files) == [
        b'<chapter sID="Gen.1"/>',
        b"In the beginning",
        b"and the earth",
        b"was void",
    ]


def test_osis_sections_cut_at_chapters_and_drop_notes():
    entries = [
        b'<div type="book" osisID="Gen"/><title>Genesis</title>',
        b'<chapter n="1" osisID="Gen.1" sID="Gen.1"/> <w lemma="strong:H7225">In</w> the beginning'
        b'<note type="x-footnote">a footnote<reference>Gen.2</reference></note> God created.',
        b'<div type="x-p" eID="p1"/>And it was &amp; good.',
        b'<chapter n="2" osisID="Gen.2" sID="Gen.2"/>Thus the heavens '
        b'<transChange type="added">were</transChange> finished.',
    ]
    secs = extract.osis_sections(entries)
    assert [s.title for s in secs] == ["front", "Gen.1", "Gen.2"]
    assert secs[0].text == "Genesis"
    assert secs[1].text == "In the beginning God created.\nAnd it was & good."
    assert secs[2].text == "Thus the heavens were finished."


def _r_strsxp(lines: list[str | None], version: int = 3) -> bytes:
    head = b"X\n" + struct.pack(">iii", version, 0x040300, 0x030500)
    if version == 3:
        head += struct.pack(">i", 5) + b"UTF-8"
    body = struct.pack(">ii", 16, len(lines))
    for s in lines:
        if s is None:
            body += struct.pack(">ii", 9, -1)
        else:
            b = s.encode()
            body += struct.pack(">ii", 9 | (8 << 12), len(b)) + b
    return head + body


def _rdb_record(payload: bytes) -> bytes:
    return struct.pack(">i", len(payload)) + zlib.compress(payload)


def test_r_character_vectors_reads_each_record_and_skips_other_types():
    novel = ["EMMA", "", "CHAPTER I", "", "Emma Woodhouse, handsome, clever, and rich — naïve.", None]
    other = b"X\n" + struct.pack(">iii", 2, 0, 0) + struct.pack(">ii", 13, 1) + struct.pack(">i", 7)  # INTSXP
    rdb = _rdb_record(_r_strsxp(novel)) + _rdb_record(other) + _rdb_record(_r_strsxp(["PERSUASION"], version=2))
    vectors = extract.r_character_vectors(rdb)
    assert vectors == [[*novel[:-1], ""], ["PERSUASION"]]


def test_novel_sections_one_per_chapter_title_page_with_the_first():
    lines = ["EMMA", "", "CHAPTER I", "", "First.", "", "CHAPTER II", "", "Second."]
    secs = extract.novel_sections("emma", lines)
    assert [s.text for s in secs] == ["EMMA\n\nCHAPTER I\n\nFirst.", "CHAPTER II\n\nSecond."]
    assert [s.text for s in extract.novel_sections("x", ["No chapters", "at all."])] == ["No chapters\nat all."]


def test_chunk_keeps_every_character_and_bounds_the_size(english_docs):
    text = extract.tidy("\n\n".join(english_docs[:10]))
    pieces = extract.chunk(Section("t", text), max_chars=4000)
    assert len(pieces) > 5
    # pieces are cut at paragraph or line boundaries: gluing them back with those separators gives the text
    glued = pieces[0].text
    for p in pieces[1:]:
        sep = "\n\n" if text.startswith(glued + "\n\n" + p.text) else "\n"
        glued += sep + p.text
    assert glued == text
    assert all(len(p.text) <= 4000 or "\n" not in p.text for p in pieces)
    assert extract.chunk(Section("short", "tiny")) == [Section("short", "tiny")]


def test_tidy_and_gutenberg():
    assert extract.tidy("  a \t b \r\n\n\n\n c  ") == "a b\n\nc"
    raw = "Header\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\nBody text.\n*** END OF THE PROJECT GUTENBERG EBOOK"
    assert extract.strip_gutenberg(raw).strip() == "Body text."
    assert extract.strip_gutenberg("no markers") == "no markers"
