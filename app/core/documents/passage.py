"""A cited passage shown again: the file's text around the place a reply cited, read with the
indexer's own readers, and whether the file still holds the excerpt the reply was given.

With each source a reply stores the page or lines it cited and a fingerprint of the excerpt (its
length and the start of its sha256). Finding the fingerprint again where the citation points says
the file has not changed there; for formats without lines (Word, HTML, notebooks) it is also how
the excerpt is found at all. Replies stored before fingerprints only say "p. 3" or "lines 12-30":
they are shown at that place, and whether the file changed is unknown.
"""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from app.core.documents.extract import (
    ExtractedDocument,
    PdfPages,
    SkippedFileError,
    TextBlock,
    extract,
    open_pdf,
)
from app.core.documents.formats import KIND_BY_SUFFIX, NO_TEXT_LAYER, Unusable
from app.core.errors import CadreError
from app.core.tasks import CancelToken

FINGERPRINT_HEX = 16  # of sha256: enough to tell an edit, short enough to store with each source
CONTEXT_LINES = 120  # shown before and after the cited lines; more costs the viewer layout time
NEIGHBOUR_PAGES = 1  # shown before and after the cited page

_PLACE = re.compile(r"p\. (?P<page>\d+)|lines? (?P<first>\d+)(?:-(?P<last>\d+))?")
_FINGERPRINT = re.compile(rf"\d+:[0-9a-f]{{{FINGERPRINT_HEX}}}")
_SPACE = re.compile(r"\s")


def fingerprint(text: str) -> str:
    """``"<length>:<sha256 prefix>"`` of an excerpt's exact text."""
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{len(text)}:{digest[:FINGERPRINT_HEX]}"


class SourceUnavailableError(CadreError):
    """The cited file cannot be shown (moved, deleted, unreadable). ``folder`` is the folder it
    was in, when that still exists, so the user can go and look."""

    def __init__(self, message: str, *, hint: str = "", folder: Path | None = None) -> None:
        super().__init__(message, hint=hint)
        self.folder = folder


@dataclass(frozen=True)
class Citation:
    """Where a reply's source points: a page (PDFs), lines (text, code, CSV), or neither (Word,
    HTML, notebooks, found by ``fingerprint`` alone)."""

    path: str
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    fingerprint: str | None = None

    @classmethod
    def from_stored(cls, stored: Mapping[str, Any]) -> Citation:
        """From a stored source; one stored before the structured fields has its place parsed."""
        page, first, last = (_number(stored.get(key)) for key in ("page", "line_start", "line_end"))
        if page is None and first is None:
            page, first, last = _parse_place(str(stored.get("place", "")))
        fp = stored.get("fingerprint")
        valid = isinstance(fp, str) and _FINGERPRINT.fullmatch(fp) is not None
        return cls(str(stored.get("path", "")), page, first, last, fp if valid else None)

    @classmethod
    def from_query(cls, path: str, query: str) -> Citation:
        """From a source link's fragment (:meth:`as_query`)."""
        fields = {key: values[0] for key, values in parse_qs(query).items()}
        return cls.from_stored({**fields, "path": path})

    def as_query(self) -> str:
        fields = {
            "page": self.page,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "fingerprint": self.fingerprint,
        }
        return urlencode({key: value for key, value in fields.items() if value is not None})

    def place(self) -> str:
        """As the reply's source list says it: "p. 3", "lines 12-30", "line 4" or ""."""
        if self.page is not None:
            return f"p. {self.page}"
        if self.line_start is None:
            return ""
        last = self.line_end or self.line_start
        return f"line {last}" if last == self.line_start else f"lines {self.line_start}-{last}"


def _number(value: object) -> int | None:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _parse_place(place: str) -> tuple[int | None, int | None, int | None]:
    match = _PLACE.fullmatch(place.strip())
    if match is None:
        return None, None, None
    if match["page"]:
        return int(match["page"]), None, None
    first = int(match["first"])
    return None, first, int(match["last"] or first)


@dataclass(frozen=True)
class Section:
    """A piece of the file as shown: a page under its ``heading``, or a run of lines whose first
    is line ``first_line`` of the file (``None`` where the format has no line numbers)."""

    heading: str | None
    first_line: int | None
    text: str


@dataclass(frozen=True)
class Passage:
    """The text around a citation. ``highlight`` is a character range in
    ``sections[focus].text``; ``changed`` is ``None`` when it cannot be told (no fingerprint)."""

    path: Path
    kind: str
    sections: tuple[Section, ...]
    focus: int
    highlight: tuple[int, int] | None
    changed: bool | None
    extent: str  # what part of the file is shown: "pages 2-4 of 9", "lines 1-230 of 4,120"


def read_passage_job(citation: Citation, token: CancelToken) -> Generator[str, None, Passage]:
    """:func:`read_passage` as a job: it says what it reads, then reads it."""
    yield f"Reading {Path(citation.path).name}…"
    passage = read_passage(citation)
    token.raise_if_cancelled()
    return passage


def read_passage(citation: Citation) -> Passage:
    """The cited place in its file, or :class:`SourceUnavailableError` saying why not."""
    path = Path(citation.path)
    if not path.is_absolute():
        raise SourceUnavailableError(f"The source {citation.path!r} has no full path to open.")
    try:
        if KIND_BY_SUFFIX.get(path.suffix.lower()) == "pdf":
            return _pdf_passage(path, open_pdf(path), citation)
        document = extract(path)
    except SkippedFileError as exc:
        raise _unavailable(path, exc.reason) from None
    return _text_passage(document, citation)


def _unavailable(path: Path, reason: str) -> SourceUnavailableError:
    folder = path.parent if path.parent.is_dir() else None
    if path.exists():
        return SourceUnavailableError(f"{path.name} cannot be shown: {reason}.", folder=folder)
    hint = (
        "It was moved, renamed or deleted since the reply."
        if folder is not None
        else f"Its folder {path.parent} is gone too."
    )
    return SourceUnavailableError(
        f"{path.name} is no longer in its folder.", hint=hint, folder=folder
    )


# PDF --------------------------------------------------------------------------------------------


def _pdf_passage(path: Path, pdf: PdfPages, citation: Citation) -> Passage:
    """The cited page with its neighbours; the excerpt is highlighted where it is found. Only
    the pages shown are read, unless the cited page has no text: then the nearest that has."""
    texts = _PageTexts(pdf)
    page = texts.nearest(citation.page or 1, path)  # the cited page itself, if it has text
    wanted = citation.page or page  # no page cited: the first with text
    shown = [n for n in range(page - NEIGHBOUR_PAGES, page + NEIGHBOUR_PAGES + 1) if texts[n]]
    text = texts[page]
    found = _find(text, citation.fingerprint, 0, len(text)) if page == wanted else None
    if page != wanted:
        changed: bool | None = True  # the cited page is gone, or has no text any more
    else:
        changed = None if citation.fingerprint is None else found is None
    return Passage(
        path,
        "pdf",
        tuple(Section(f"Page {number}", None, texts[number]) for number in shown),
        shown.index(page),
        found,
        changed,
        _range_text("page", shown[0], shown[-1], pdf.count),
    )


class _PageTexts:
    """A PDF's page texts, each read when first asked for; a page out of range, without text or
    damaged alone reads as ``""`` (the indexer leaves such pages out too)."""

    def __init__(self, pdf: PdfPages) -> None:
        self._pdf = pdf
        self._texts: dict[int, str] = {}
        self._failure: Unusable | None = None
        self._failures = 0

    def __getitem__(self, number: int) -> str:
        if not 1 <= number <= self._pdf.count:
            return ""
        if number not in self._texts:
            try:
                text = self._pdf.text(number)
            except Unusable as exc:
                self._failure, self._failures, text = exc, self._failures + 1, ""
            self._texts[number] = text if text.strip() else ""
        return self._texts[number]

    def nearest(self, number: int, path: Path) -> int:
        """The page with text nearest to ``number`` (the earlier of two as near), read outward
        from it, or :class:`SkippedFileError` when no page has text."""
        order = sorted(range(1, self._pdf.count + 1), key=lambda n: abs(n - number))
        found = next((n for n in order if self[n]), None)
        if found is not None:
            return found
        damaged = self._failure if self._failures == self._pdf.count else None
        raise SkippedFileError(path, damaged.reason if damaged else NO_TEXT_LAYER)


# Text, code, tables, Word, HTML, notebooks ------------------------------------------------------


@dataclass(frozen=True)
class _Lines:
    """A block's text split into lines, with the offset where each starts."""

    text: str
    lines: list[str]
    starts: list[int]

    @classmethod
    def of(cls, text: str) -> _Lines:
        lines = text.split("\n")
        if len(lines) > 1 and not lines[-1]:
            lines.pop()  # the final newline ends the last line; it does not start another
        starts, offset = [], 0
        for line in lines:
            starts.append(offset)
            offset += len(line) + 1
        return cls(text, lines, starts)

    def span(self, first: int, last: int) -> tuple[int, int]:
        """Character range of lines ``first``..``last`` (0-based, inclusive)."""
        return self.starts[first], self.starts[last] + len(self.lines[last])

    def line_at(self, offset: int) -> int:
        """The 0-based line holding character ``offset``."""
        return bisect.bisect_right(self.starts, offset) - 1


def _text_passage(document: ExtractedDocument, citation: Citation) -> Passage:
    """The cited lines with their surroundings (these formats read as one block)."""
    block = document.blocks[0]
    lines = _Lines.of(block.text)
    if block.first_line is not None and citation.line_start is not None:
        first, last, highlight, changed = _cited_lines(lines, block, citation)
    else:
        first, last, highlight, changed = _found_lines(lines, citation)
    low = max(0, first - CONTEXT_LINES)
    high = min(len(lines.lines), last + 1 + CONTEXT_LINES)
    shift = lines.starts[low]
    numbered = block.first_line is not None
    base = block.first_line if block.first_line is not None else 1  # the number of lines[0]
    extent = _range_text(
        "line" if numbered else "extracted line",
        base + low,
        base + high - 1,
        base + len(lines.lines) - 1,
    )
    text = "\n".join(lines.lines[low:high])
    return Passage(
        document.path,
        document.kind,
        (Section(None, base + low if numbered else None, text),),
        0,
        (highlight[0] - shift, highlight[1] - shift) if highlight else None,
        changed,
        extent,
    )


_Located = tuple[int, int, tuple[int, int] | None, bool | None]  # first, last, highlight, changed


def _cited_lines(lines: _Lines, block: TextBlock, citation: Citation) -> _Located:
    """The cited lines, highlighted whole; changed when they are gone or no longer hold the
    excerpt (which may start or end inside them)."""
    assert block.first_line is not None and citation.line_start is not None
    count = len(lines.lines)
    first = citation.line_start - block.first_line
    last = (citation.line_end or citation.line_start) - block.first_line
    missing = not 0 <= first <= last < count
    first, last = min(max(first, 0), count - 1), min(max(last, first, 0), count - 1)
    span = lines.span(first, last)
    if missing:
        return first, last, span, True
    if citation.fingerprint is None:
        return first, last, span, None
    return first, last, span, _find(lines.text, citation.fingerprint, *span) is None


def _found_lines(lines: _Lines, citation: Citation) -> _Located:
    """Where the excerpt is, by its fingerprint alone (the format has no lines to cite)."""
    found = _find(lines.text, citation.fingerprint, 0, len(lines.text))
    changed = None if citation.fingerprint is None else found is None
    if found is None:
        return 0, 0, None, changed
    return lines.line_at(found[0]), lines.line_at(max(found[0], found[1] - 1)), found, changed


def _find(text: str, fp: str | None, low: int, high: int) -> tuple[int, int] | None:
    """The range of ``text[low:high]`` whose fingerprint is ``fp``. The indexer's chunks start at
    a line, a sentence or a word, so only the starts of those are tried."""
    if fp is None:
        return None
    length = int(fp.partition(":")[0])
    last_start = high - length
    if length == 0 or last_start < low:
        return None
    starts = [low] if low == 0 or text[low - 1].isspace() else []
    starts += (match.end() for match in _SPACE.finditer(text, low, last_start))
    for start in starts:
        if fingerprint(text[start : start + length]) == fp:
            return start, start + length
    return None


def _range_text(unit: str, first: int, last: int, total: int) -> str:
    if first == last:
        return f"{unit} {first:,} of {total:,}"
    return f"{unit}s {first:,}-{last:,} of {total:,}"
