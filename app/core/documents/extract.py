"""From a file on disk to its text, with where each piece came from (page, first line).

Every way a file can be unusable (unreadable, too large, empty, binary, damaged, encrypted) ends
in :class:`SkippedFileError` with a short reason the library view shows beside the file; an
exception from a parser library never escapes. The size is checked before a byte is read.
"""

from __future__ import annotations

import stat
from dataclasses import dataclass
from pathlib import Path

from app.core.documents.formats import (
    KIND_BY_SUFFIX,
    NO_TEXT_LAYER,
    READERS,
    PdfPages,
    TextBlock,
    Unusable,
)
from app.core.errors import CadreError
from app.core.units import human_bytes

__all__ = [
    "MAX_FILE_BYTES",
    "SUPPORTED_SUFFIXES",
    "ExtractedDocument",
    "PdfPages",
    "SkippedFileError",
    "TextBlock",
    "extract",
    "is_supported",
    "open_pdf",
]

MAX_FILE_BYTES = 200 * 1000 * 1000
SUPPORTED_SUFFIXES = frozenset(KIND_BY_SUFFIX)


@dataclass(frozen=True)
class ExtractedDocument:
    path: Path
    kind: str  # "text", "code", "csv", "html", "pdf", "docx" or "notebook"
    blocks: tuple[TextBlock, ...]


class SkippedFileError(CadreError):
    """A file that cannot go into the document index; ``reason`` says why in a few words."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"Skipped {path.name}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[SkippedFileError], tuple[Path, str]]:
        return type(self), (self.path, self.reason)  # survives a trip to another process


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def extract(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> ExtractedDocument:
    """Read ``path`` into text blocks (whitespace-only ones dropped), or raise
    :class:`SkippedFileError` saying why not."""
    suffix = path.suffix.lower()
    kind = KIND_BY_SUFFIX.get(suffix)
    try:
        if kind is None:
            raise Unusable(f"not a supported file type ({suffix or 'no extension'})")
        data = _read_bytes(path, max_bytes)
        blocks = tuple(block for block in READERS[kind](data, suffix) if block.text.strip())
        if not blocks:
            raise Unusable(NO_TEXT_LAYER if kind == "pdf" else "no text")
    except Unusable as exc:
        raise SkippedFileError(path, exc.reason) from None
    return ExtractedDocument(path, kind, blocks)


def open_pdf(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> PdfPages:
    """A PDF to read only some of its pages (:func:`extract` reads them all), or
    :class:`SkippedFileError` saying why it cannot be opened."""
    try:
        return PdfPages(_read_bytes(path, max_bytes))
    except Unusable as exc:
        raise SkippedFileError(path, exc.reason) from None


def _read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        status = path.stat()
        if not stat.S_ISREG(status.st_mode):  # a FIFO would block the read forever
            raise Unusable("not a regular file")
        if status.st_size > max_bytes:
            raise Unusable(_too_large(status.st_size, max_bytes))
        with path.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # it may have grown since the stat
    except FileNotFoundError:
        raise Unusable("cannot be read: it no longer exists") from None
    except PermissionError:
        raise Unusable("cannot be read: permission denied") from None
    except OSError as exc:
        raise Unusable(f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise Unusable(_too_large(len(data), max_bytes))
    if not data:
        raise Unusable("empty")
    return data


def _too_large(size: int, limit: int) -> str:
    return f"too large ({human_bytes(size)}; the limit is {human_bytes(limit)})"
