"""Bring one collection's index up to date with its folders: a job with progress and cancel.

Per file: stat walk → (size or time moved) hash → same content: remember the new stat; content seen
under a vanished path: a rename, chunks kept; otherwise extract, chunk, embed and store in one
transaction. Chunks of several files are embedded together (the embedder is fastest in batches),
then each file is committed on its own, so a kill loses at most the batch in flight. Files that
cannot be read are recorded as skipped with the reason and never stop the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.core.documents.chunking import Chunk, chunk_document
from app.core.documents.extract import MAX_FILE_BYTES, SkippedFileError, extract
from app.core.documents.records import Collection, DocumentRecord, FileStat
from app.core.documents.scan import Changes, compare, sha256_of, walk_sources
from app.core.documents.store import DocumentStore
from app.core.documents.vectors import VectorIndex
from app.core.embedder import Embedder
from app.core.tasks import CancelToken, Job, Progress, Throttle
from app.core.units import human_bytes, human_duration

EMBED_BATCH_CHUNKS = 256
SAVE_EVERY_S = 30.0  # the vector file is also saved at the end; the database is the truth


@dataclass(frozen=True)
class IndexProgress(Progress):
    files_done: int = 0
    files_total: int = 0
    chunks_done: int = 0
    eta_s: float | None = None


@dataclass
class IndexReport:
    collection: str
    indexed: int = 0
    unchanged: int = 0
    renamed: int = 0
    removed: int = 0
    chunks_added: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason), this run
    missing_sources: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def describe(self) -> str:
        parts = [
            f"{self.indexed} indexed ({self.chunks_added} chunks)",
            f"{self.unchanged} unchanged",
        ]
        parts += [
            f"{n} {label}"
            for n, label in (
                (self.renamed, "renamed"),
                (self.removed, "removed"),
                (len(self.skipped), "skipped"),
            )
            if n
        ]
        return f"{self.collection!r}: " + ", ".join(parts) + f" in {human_duration(self.seconds)}"


@dataclass(frozen=True)
class _Prepared:
    path: str
    stat: FileStat
    sha256: str
    kind: str
    chunks: list[Chunk]


class _Meter:
    """Files and bytes done, and an ETA from the rate measured so far."""

    def __init__(self, files_total: int, bytes_total: int) -> None:
        self.files_total, self.bytes_total = files_total, bytes_total
        self.files_done = self.bytes_done = self.chunks_done = 0
        self.started = time.monotonic()
        self.throttle = Throttle()

    def eta_s(self) -> float | None:
        elapsed = time.monotonic() - self.started
        if self.bytes_done <= 0 or elapsed < 1.0:
            return None
        return (self.bytes_total - self.bytes_done) / (self.bytes_done / elapsed)

    def report(self, name: str) -> IndexProgress:
        eta = self.eta_s()
        left = f" · {human_duration(eta)} left" if eta is not None else ""
        message = (
            f"Indexing {name!r}: {self.files_done} of {self.files_total} files · "
            f"{self.chunks_done} chunks · {human_bytes(self.bytes_done)} of "
            f"{human_bytes(self.bytes_total)}{left}"
        )
        return IndexProgress(
            message,
            self.bytes_done,
            self.bytes_total or None,
            self.files_done,
            self.files_total,
            self.chunks_done,
            eta,
        )


class Indexer:
    """Runs :meth:`run` for one collection at a time over a vector index that matches the store."""

    def __init__(
        self,
        store: DocumentStore,
        embedder: Embedder,
        vectors: VectorIndex,
        save_vectors: Callable[[VectorIndex], None],
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.vectors = vectors
        self._save_vectors = save_vectors

    def run(self, collection: Collection, cancel: CancelToken | None = None) -> Job[IndexReport]:
        started = time.monotonic()
        yield Progress(f"Looking for changes in {collection.name!r}…")
        found, missing = walk_sources(collection.sources)
        known = self.store.documents(collection)
        changes = compare(found, known)
        run = _Run(self, collection, found, known, cancel or CancelToken())
        run.report.unchanged, run.report.missing_sources = changes.unchanged, missing
        try:
            yield from run.index(changes)
        finally:
            self.save_vectors(collection)
        run.report.seconds = time.monotonic() - started
        return run.report

    def save_vectors(self, collection: Collection) -> None:
        self.vectors.revision = self.store.revision(collection)
        self._save_vectors(self.vectors)


class _Run:
    def __init__(
        self,
        indexer: Indexer,
        collection: Collection,
        found: dict[str, FileStat],
        known: dict[str, DocumentRecord],
        cancel: CancelToken,
    ) -> None:
        self.indexer, self.store, self.vectors = indexer, indexer.store, indexer.vectors
        self.collection, self.found, self.known, self.cancel = collection, found, known, cancel
        self.report = IndexReport(collection.name)
        self.vanished_by_hash: dict[str, list[str]] = {}
        self.moved_from: set[str] = set()

    def index(self, changes: Changes) -> Iterator[Progress]:
        for path in changes.gone:
            record = self.known[path]
            if record.state == "indexed" and record.sha256:
                self.vanished_by_hash.setdefault(record.sha256, []).append(path)
        meter = _Meter(len(changes.work), sum(self.found[p].size for p in changes.work))
        pending: list[_Prepared] = []
        last_save = time.monotonic()
        for path in changes.work:
            self.cancel.raise_if_cancelled()
            prepared = self.prepare(path)
            if prepared is not None:
                pending.append(prepared)
            meter.files_done += 1
            meter.bytes_done += self.found[path].size
            if sum(len(p.chunks) for p in pending) >= EMBED_BATCH_CHUNKS:
                self.embed_and_store(pending, meter)
                pending = []
            if time.monotonic() - last_save > SAVE_EVERY_S:
                self.indexer.save_vectors(self.collection)
                last_save = time.monotonic()
            if meter.throttle.ready():
                yield meter.report(self.collection.name)
        self.embed_and_store(pending, meter)
        self.remove([p for p in changes.gone if p not in self.moved_from])
        yield meter.report(self.collection.name)

    def prepare(self, path: str) -> _Prepared | None:
        """Work out what a new or modified file needs; store what needs no embedding at once."""
        stat, record = self.found[path], self.known.get(path)
        sha256: str | None = None
        try:
            if stat.size > MAX_FILE_BYTES:
                extract(Path(path))  # refuses it by its size before reading (or hashing) it
            sha256 = sha256_of(Path(path))
            if record is not None and record.sha256 == sha256 and record.state == "indexed":
                self.store.touch(self.collection, path, stat)
                self.report.unchanged += 1
                return None
            if record is None and self.vanished_by_hash.get(sha256):
                self.move(self.vanished_by_hash[sha256].pop(), path, stat)
                return None
            document = extract(Path(path))
            chunks = chunk_document(document)
            if not chunks:
                raise SkippedFileError(Path(path), "no text to index")
        except SkippedFileError as skipped:
            self.skip(path, sha256, skipped.reason)
            return None
        except OSError as exc:
            self.skip(path, sha256, f"cannot be read: {exc.strerror or exc}")
            return None
        return _Prepared(path, stat, sha256, document.kind, chunks)

    def move(self, old_path: str, new_path: str, stat: FileStat) -> None:
        self.store.move(self.collection, old_path, new_path, stat)
        self.moved_from.add(old_path)
        self.report.renamed += 1

    def skip(self, path: str, sha256: str | None, reason: str) -> None:
        old_ids = self.store.chunk_ids_of(self.collection, path)
        self.store.save_skipped(self.collection, path, self.found[path], sha256, reason)
        self.vectors.remove(old_ids)
        self.report.skipped.append((path, reason))

    def embed_and_store(self, pending: list[_Prepared], meter: _Meter) -> None:
        if not pending:
            return
        self.cancel.raise_if_cancelled()
        vectors = self.indexer.embedder.encode([c.text for item in pending for c in item.chunks])
        start = 0
        for item in pending:
            own = vectors[start : start + len(item.chunks)]
            start += len(item.chunks)
            old_ids = self.store.chunk_ids_of(self.collection, item.path)
            new_ids = self.store.save_indexed(
                self.collection,
                item.path,
                item.stat,
                sha256=item.sha256,
                kind=item.kind,
                chunks=item.chunks,
                vectors=own,
            )
            self.vectors.remove(old_ids)
            self.vectors.add(new_ids, own)
            self.report.indexed += 1
            self.report.chunks_added += len(item.chunks)
            meter.chunks_done += len(item.chunks)

    def remove(self, paths: list[str]) -> None:
        if not paths:
            return
        old_ids = [self.store.chunk_ids_of(self.collection, p) for p in paths]
        self.store.forget(self.collection, paths)
        self.vectors.remove(np.concatenate(old_ids))
        self.report.removed += len(paths)
