"""Cutting extracted text into chunks the embedder reads whole, each with an exact citation.

all-MiniLM-L6-v2 reads at most 256 word pieces (about 1000-1200 characters of English), so a chunk
is at most ``target_chars`` long. A block is first broken into units: lines, and sentences within
lines of prose, and hard slices of any line longer than a chunk. Units are packed into chunks,
and when a chunk is full it ends at the strongest boundary in its second half (a top-level
definition or heading, then a blank line, a line end, a sentence end), so chunks follow the
document's own structure. The next chunk repeats the last ~``overlap_chars`` of the previous
one, from a line or sentence start. A chunk never spans two blocks, so never two PDF pages.

A chunk's text is an exact slice of its block's text, so ``first_line``..``last_line`` are the
lines that hold it. Everything is one pass over the text: linear in its length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from app.core.documents.extract import ExtractedDocument, TextBlock

TARGET_CHARS = 1000
OVERLAP_CHARS = 150

# How good a place to end a chunk the boundary before a unit is.
_HARD = 0  # inside a sentence longer than a chunk
_SENTENCE = 1
_LINE = 2
_PARAGRAPH = 3  # after a blank line
_SECTION = 4  # a heading, or a top-level definition after a blank line

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s+")
_MARKDOWN_HEADING = re.compile(r"#{1,6} ")


@dataclass(frozen=True)
class Chunk:
    """``first_line``/``last_line`` are 1-based and inclusive, ``None`` where the block has no
    line numbers; ``ordinal`` is the chunk's position in the document."""

    text: str
    page: int | None
    first_line: int | None
    last_line: int | None
    ordinal: int


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int  # offsets into the block's text
    end: int
    line: int  # 0-based line within the block
    strength: int  # of the boundary before this unit


def chunk_document(
    doc: ExtractedDocument,
    *,
    target_chars: int = TARGET_CHARS,
    overlap_chars: int = OVERLAP_CHARS,
) -> list[Chunk]:
    if target_chars < 1 or not 0 <= overlap_chars < target_chars:
        raise ValueError("need target_chars >= 1 and 0 <= overlap_chars < target_chars")
    chunks: list[Chunk] = []
    for block in doc.blocks:
        units = _units(block.text, code=doc.kind == "code", limit=target_chars)
        for first, last in _pack(units, target_chars, overlap_chars):
            text = block.text[first.start : last.end].rstrip()
            if text.strip():
                chunks.append(_chunk(block, text, first, last, len(chunks)))
    return chunks


def _chunk(block: TextBlock, text: str, first: _Unit, last: _Unit, ordinal: int) -> Chunk:
    if block.first_line is None:
        return Chunk(text, block.page, None, None, ordinal)
    lines = (block.first_line + first.line, block.first_line + last.line)
    return Chunk(text, block.page, *lines, ordinal)


def _units(text: str, *, code: bool, limit: int) -> Iterator[_Unit]:
    """The block's non-blank lines, split into sentences (prose only) and slices of at most
    ``limit`` characters, each with the strength of the boundary before it."""
    offset = 0
    after_blank = True
    for number, line in enumerate(text.split("\n")):
        start = offset
        offset += len(line) + 1
        if not line.strip():
            after_blank = True
            continue
        strength = _line_strength(line, after_blank=after_blank, code=code)
        after_blank = False
        for piece_start, piece_end, piece_strength in _split_line(line, code=code, limit=limit):
            if line[piece_start:piece_end].strip():
                unit_strength = strength if piece_start == 0 else piece_strength
                yield _Unit(start + piece_start, start + piece_end, number, unit_strength)


def _line_strength(line: str, *, after_blank: bool, code: bool) -> int:
    if code:
        top_level = not line[0].isspace() and line[0] not in "}])"
        if after_blank:
            return _SECTION if top_level else _PARAGRAPH
        return _LINE
    if _MARKDOWN_HEADING.match(line):
        return _SECTION
    return _PARAGRAPH if after_blank else _LINE


def _split_line(line: str, *, code: bool, limit: int) -> Iterator[tuple[int, int, int]]:
    """(start, end, strength) pieces of one line: its sentences for prose (code is only cut when
    a line is longer than ``limit``), and hard slices of any sentence longer than ``limit``."""
    if code:
        ends = [len(line)]
    else:
        ends = [match.end() for match in _SENTENCE_END.finditer(line)]
        if not ends or ends[-1] != len(line):
            ends.append(len(line))
    start = 0
    for end in ends:
        yield from _slices(line, start, end, limit)
        start = end


def _slices(line: str, start: int, end: int, limit: int) -> Iterator[tuple[int, int, int]]:
    strength = _SENTENCE
    while end - start > limit:
        space = line.rfind(" ", start + limit // 2, start + limit)
        cut = space + 1 if space > start else start + limit
        yield start, cut, strength
        start, strength = cut, _HARD
    yield start, end, strength


def _pack(units: Iterable[_Unit], target: int, overlap: int) -> Iterator[tuple[_Unit, _Unit]]:
    """The (first, last) unit of each chunk. ``window`` holds the units from the current chunk's
    start, one past what fits; ``fresh`` is the index of the first unit no chunk has held yet."""
    source = iter(units)
    window: list[_Unit] = []
    fresh = 0
    while True:
        _fill(window, source, target)
        if not window:
            return
        if window[-1].end - window[0].start <= target:  # the source is used up
            yield window[0], window[-1]
            return
        cut = _best_cut(window, fresh, target)
        yield window[0], window[cut - 1]
        keep = _overlap_start(window, cut, overlap, target)
        del window[:keep]
        fresh = cut - keep


def _fill(window: list[_Unit], source: Iterator[_Unit], target: int) -> None:
    """Add units until the window spans more than ``target`` or the source is used up."""
    while not window or window[-1].end - window[0].start <= target:
        unit = next(source, None)
        if unit is None:
            return
        window.append(unit)


def _best_cut(window: list[_Unit], fresh: int, target: int) -> int:
    """Where the chunk ends (an index into ``window``): the strongest boundary, the latest of
    equals, among those leaving the chunk at least half full and holding one fresh unit."""
    fits = len(window) - 1  # the last unit is the one that did not fit
    best = fits
    half = window[0].start + target // 2
    for cut in range(fits - 1, fresh, -1):
        if window[cut - 1].end < half:
            break
        if window[cut].strength > window[best].strength:
            best = cut
    return best


def _overlap_start(window: list[_Unit], cut: int, overlap: int, target: int) -> int:
    """The first unit the next chunk repeats: as far back as ``overlap`` allows, from a line or
    sentence start, leaving room for the next fresh unit; ``cut`` when nothing qualifies or a new
    section starts (a heading or definition is not helped by the end of the one before)."""
    keep = cut
    if window[cut].strength == _SECTION:
        return cut
    next_end = window[cut].end
    for index in range(cut - 1, 0, -1):
        unit = window[index]
        if window[cut - 1].end - unit.start > overlap or next_end - unit.start > target:
            break
        if unit.strength >= _SENTENCE:
            keep = index
    return keep
