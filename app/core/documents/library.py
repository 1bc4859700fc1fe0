"""The document library: named collections of folders and files, kept indexed and searchable.

The facade the CLI, the window and the chat service use. It opens ``documents.db`` on first use,
keeps each collection's vector index in memory once loaded, and makes sure that index matches the
database before anything reads it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from app.core.documents.indexer import Indexer, IndexReport
from app.core.documents.records import Collection
from app.core.documents.schema import DOCUMENT_MIGRATIONS
from app.core.documents.search import MODES, Searcher, SearchHit
from app.core.documents.store import DocumentStore
from app.core.documents.vectors import VectorIndex
from app.core.embedder import DIMENSIONS, Embedder
from app.core.errors import CadreError
from app.core.paths import DataPaths
from app.core.storage.db import open_database
from app.core.tasks import CancelToken, Job

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CollectionStatus:
    name: str
    sources: tuple[str, ...]
    missing_sources: tuple[str, ...]
    documents: int
    chunks: int
    skipped: tuple[tuple[str, str], ...]  # (path, reason)
    last_indexed: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "sources": list(self.sources),
            "missing_sources": list(self.missing_sources),
            "documents": self.documents,
            "chunks": self.chunks,
            "skipped": [{"path": path, "reason": reason} for path, reason in self.skipped],
            "last_indexed": self.last_indexed,
        }


class DocumentLibrary:
    def __init__(
        self,
        paths: DataPaths,
        embedder: Embedder,
        on_notice: Callable[[str], None] | None = None,
    ) -> None:
        self._paths = paths
        self._embedder = embedder
        self._on_notice = on_notice or log.warning
        self._db: sqlite_utils.Database | None = None
        self._store: DocumentStore | None = None
        self._lock = threading.RLock()
        self._vectors: dict[int, VectorIndex] = {}
        self._runs: dict[int, threading.Lock] = {}

    @property
    def store(self) -> DocumentStore:
        with self._lock:
            if self._store is None:
                self._db = open_database(self._paths.documents_database, DOCUMENT_MIGRATIONS)
                self._store = DocumentStore(self._db, threading.RLock())
            return self._store

    def collections(self) -> list[Collection]:
        return self.store.collections()

    def add(self, name: str, paths: Sequence[Path]) -> Collection:
        """Add folders or files to a collection (created if new). Index it next."""
        name = name.strip()
        if not name:
            raise CadreError("A collection needs a name.")
        resolved = [Path(path).expanduser().resolve() for path in paths]
        missing = [str(path) for path in resolved if not path.exists()]
        if missing:
            raise CadreError(f"Not found: {', '.join(missing)}")
        return self.store.add_sources(name, resolved)

    def remove(self, name: str, paths: Sequence[Path] = ()) -> Collection | None:
        """Remove sources from a collection, or (no paths) the whole collection and its index."""
        if paths:
            resolved = [Path(path).expanduser().resolve() for path in paths]
            return self.store.remove_sources(name, resolved)
        collection = self.store.require(name)
        self.store.delete_collection(name)
        with self._lock:
            self._vectors.pop(collection.id, None)
        self._vector_path(collection).unlink(missing_ok=True)
        return None

    def index(self, name: str, cancel: CancelToken | None = None) -> Job[IndexReport]:
        """Bring a collection up to date with its folders (only what changed is read again)."""
        collection = self.store.require(name)
        with self._lock:
            run_lock = self._runs.setdefault(collection.id, threading.Lock())
        if not run_lock.acquire(blocking=False):
            raise CadreError(f"The collection {name!r} is already being indexed.")
        try:
            with self._process_lock(collection):
                indexer = Indexer(
                    self.store,
                    self._embedder,
                    self.vectors(collection),
                    lambda vectors: vectors.save(self._vector_path(collection)),
                )
                return (yield from indexer.run(collection, cancel))
        finally:
            run_lock.release()

    @contextlib.contextmanager
    def _process_lock(self, collection: Collection) -> Iterator[None]:
        """Another Cadre process (the window and a terminal) must not index the same collection
        at once: each would save a vector index missing the other's chunks."""
        from filelock import FileLock, Timeout

        path = self._paths.documents / "locks" / f"collection-{collection.id}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path, timeout=0)
        try:
            lock.acquire()
        except Timeout:
            raise CadreError(
                f"The collection {collection.name!r} is being indexed by another Cadre window or "
                "command; try again when it has finished."
            ) from None
        try:
            yield
        finally:
            lock.release()

    def status(self) -> list[CollectionStatus]:
        statuses = []
        for collection in self.collections():
            documents, chunks, last = self.store.counts(collection)
            missing = tuple(s for s in collection.sources if not Path(s).exists())
            skipped = tuple(self.store.skipped(collection))
            statuses.append(
                CollectionStatus(
                    collection.name, collection.sources, missing, documents, chunks, skipped, last
                )
            )
        return statuses

    def search(self, name: str, query: str, k: int = 5, mode: str = "hybrid") -> list[SearchHit]:
        if mode not in MODES:
            raise CadreError(f"Unknown search mode {mode!r}; use one of {', '.join(MODES)}.")
        collection = self.store.require(name)
        return Searcher(self.store, self._embedder).search(
            collection, self.vectors(collection), query, k, mode
        )

    def vectors(self, collection: Collection) -> VectorIndex:
        """The collection's vector index, loaded or rebuilt so that it matches the database."""
        with self._lock:
            revision = self.store.revision(collection)
            cached = self._vectors.get(collection.id)
            if cached is not None and cached.revision == revision:
                return cached
            running = self._runs.get(collection.id)
            if cached is not None and running is not None and running.locked():
                return cached  # this process's indexer keeps it up to date as it commits
            loaded = VectorIndex.load(self._vector_path(collection))
            if loaded is None or loaded.revision != revision:
                loaded = self._rebuild(collection, revision, had_file=loaded is not None)
            self._vectors[collection.id] = loaded
            return loaded

    def _rebuild(self, collection: Collection, revision: int, *, had_file: bool) -> VectorIndex:
        ids, vectors = self.store.vectors(collection)
        rebuilt = VectorIndex.build(ids, vectors, revision, DIMENSIONS)
        rebuilt.save(self._vector_path(collection))
        if had_file or len(ids):
            self._on_notice(
                f"The search index of {collection.name!r} was out of date (Cadre was probably "
                f"stopped while indexing); it was rebuilt from the {len(ids)} stored chunks."
            )
        return rebuilt

    def _vector_path(self, collection: Collection) -> Path:
        return self._paths.documents / "vectors" / f"collection-{collection.id}.npz"

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
            self._db, self._store = None, None
            self._vectors.clear()
