"""What the document store hands out: a collection, a document's row, a stored chunk, and the
size and timestamp the indexer compares to tell a changed file from an unchanged one."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Collection:
    id: int
    name: str
    revision: int  # bumped by every change to its chunks; the vector index records the one it saw
    sources: tuple[str, ...]


@dataclass(frozen=True)
class FileStat:
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class DocumentRecord:
    id: int
    path: str
    size: int
    mtime_ns: int
    sha256: str | None
    state: str  # "indexed" or "skipped"
    reason: str | None
    chunk_count: int


@dataclass(frozen=True)
class StoredChunk:
    id: int
    path: str
    ordinal: int
    text: str
    page: int | None
    first_line: int | None
    last_line: int | None

    def place(self) -> str:
        """Where in its file: "p. 3", "lines 12-30" or ""."""
        if self.page is not None:
            return f"p. {self.page}"
        if self.first_line is not None and self.last_line is not None:
            if self.first_line == self.last_line:
                return f"line {self.first_line}"
            return f"lines {self.first_line}-{self.last_line}"
        return ""
