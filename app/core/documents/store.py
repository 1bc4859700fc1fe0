"""Collections, their documents and chunks in ``documents.db``: the truth the search indexes
are rebuilt from. Every change to a document is one transaction, so a kill at any moment leaves
each file either fully indexed as before or fully indexed as now."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import cast

import numpy as np
import numpy.typing as npt
import sqlite_utils

from app.core.documents.chunking import Chunk
from app.core.documents.records import Collection, DocumentRecord, FileStat, StoredChunk
from app.core.errors import CadreError
from app.core.storage.db import utc_now, write_transaction

Vectors = npt.NDArray[np.float32]
VECTOR_DTYPE = np.float16  # half the disk; cosine scores move by ~1e-3
KEYWORD_POOL = 500  # best keyword matches over all collections, before keeping this one's

# The records stay importable from here: the store is where callers meet them.
__all__ = ["Collection", "DocumentRecord", "DocumentStore", "FileStat", "StoredChunk"]


class DocumentStore:
    def __init__(self, db: sqlite_utils.Database, lock: threading.RLock | None = None) -> None:
        self._db = db
        self._lock = lock or threading.RLock()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock, write_transaction(self._db):
            yield

    def _rows(self, sql: str, params: Sequence[object] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return list(self._db.execute(sql, params).fetchall())

    # Collections and sources

    def collections(self) -> list[Collection]:
        rows = self._rows("SELECT id, name, revision FROM collections ORDER BY name")
        return [self._collection(*row) for row in rows]  # type: ignore[arg-type]

    def _collection(self, id_: int, name: str, revision: int) -> Collection:
        sources = self._rows(
            "SELECT path FROM sources WHERE collection_id = ? ORDER BY path", [id_]
        )
        return Collection(id_, name, revision, tuple(str(row[0]) for row in sources))

    def find(self, name: str) -> Collection | None:
        rows = self._rows("SELECT id, name, revision FROM collections WHERE name = ?", [name])
        return self._collection(*rows[0]) if rows else None  # type: ignore[arg-type]

    def require(self, name: str) -> Collection:
        found = self.find(name)
        if found is None:
            known = ", ".join(c.name for c in self.collections()) or "none yet"
            raise CadreError(
                f"There is no document collection called {name!r} (collections: {known}).",
                hint="Create one with: cadre index add FOLDER --collection NAME",
            )
        return found

    def add_sources(self, name: str, paths: Sequence[Path]) -> Collection:
        """Create the collection if needed and add folders or files to it (already there: kept)."""
        with self._transaction():
            self._db.execute(
                "INSERT OR IGNORE INTO collections (name, created_at) VALUES (?, ?)",
                [name, utc_now()],
            )
            (collection_id,) = self._db.execute(
                "SELECT id FROM collections WHERE name = ?", [name]
            ).fetchone()
            for path in paths:
                self._db.execute(
                    "INSERT OR IGNORE INTO sources (collection_id, path, added_at) VALUES (?, ?, ?)",
                    [collection_id, str(path), utc_now()],
                )
        return self.require(name)

    def remove_sources(self, name: str, paths: Sequence[Path]) -> Collection:
        """Forget sources; their documents go at the next indexing run (they are no longer under
        any source)."""
        collection = self.require(name)
        with self._transaction():
            for path in paths:
                self._db.execute(
                    "DELETE FROM sources WHERE collection_id = ? AND path = ?",
                    [collection.id, str(path)],
                )
        return self.require(name)

    def delete_collection(self, name: str) -> None:
        collection = self.require(name)
        with self._transaction():
            self._db.execute("DELETE FROM collections WHERE id = ?", [collection.id])

    # Documents

    def documents(self, collection: Collection) -> dict[str, DocumentRecord]:
        rows = self._rows(
            "SELECT id, path, size, mtime_ns, sha256, state, reason, chunk_count "
            "FROM documents WHERE collection_id = ?",
            [collection.id],
        )
        records = [DocumentRecord(*row) for row in rows]  # type: ignore[arg-type]
        return {record.path: record for record in records}

    def save_indexed(
        self,
        collection: Collection,
        path: str,
        stat: FileStat,
        *,
        sha256: str,
        kind: str,
        chunks: Sequence[Chunk],
        vectors: Vectors,
    ) -> npt.NDArray[np.int64]:
        """Replace whatever the store held for ``path`` with these chunks, in one transaction;
        return the new chunks' ids in order."""
        with self._transaction():
            document_id = self._upsert_document(
                collection,
                path,
                stat,
                sha256=sha256,
                kind=kind,
                state="indexed",
                reason=None,
                chunk_count=len(chunks),
            )
            self._db.execute("DELETE FROM chunks WHERE document_id = ?", [document_id])
            blobs = vectors.astype(VECTOR_DTYPE)
            self._db.conn.executemany(
                "INSERT INTO chunks (document_id, ordinal, text, page, first_line, last_line, "
                "vector) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (document_id, c.ordinal, c.text, c.page, c.first_line, c.last_line, b.tobytes())
                    for c, b in zip(chunks, blobs, strict=True)
                ],
            )
            self._bump(collection)
            rows = self._db.execute(
                "SELECT id FROM chunks WHERE document_id = ? ORDER BY ordinal", [document_id]
            ).fetchall()
        return np.array([row[0] for row in rows], dtype=np.int64)

    def save_skipped(
        self, collection: Collection, path: str, stat: FileStat, sha256: str | None, reason: str
    ) -> None:
        with self._transaction():
            document_id = self._upsert_document(
                collection,
                path,
                stat,
                sha256=sha256,
                kind=None,
                state="skipped",
                reason=reason,
                chunk_count=0,
            )
            deleted = self._db.execute("DELETE FROM chunks WHERE document_id = ?", [document_id])
            if deleted.rowcount:
                self._bump(collection)

    def move(self, collection: Collection, old_path: str, new_path: str, stat: FileStat) -> None:
        """A renamed file: same content, new path. Its chunks and vectors stay as they are."""
        with self._transaction():
            self._db.execute(
                "DELETE FROM documents WHERE collection_id = ? AND path = ?",
                [collection.id, new_path],
            )
            self._db.execute(
                "UPDATE documents SET path = ?, size = ?, mtime_ns = ? "
                "WHERE collection_id = ? AND path = ?",
                [new_path, stat.size, stat.mtime_ns, collection.id, old_path],
            )
            self._bump(collection)

    def touch(self, collection: Collection, path: str, stat: FileStat) -> None:
        """Same content under a new timestamp: remember the stat so it is not hashed again."""
        with self._transaction():
            self._db.execute(
                "UPDATE documents SET size = ?, mtime_ns = ? WHERE collection_id = ? AND path = ?",
                [stat.size, stat.mtime_ns, collection.id, path],
            )

    def forget(self, collection: Collection, paths: Sequence[str]) -> None:
        with self._transaction():
            for path in paths:
                self._db.execute(
                    "DELETE FROM documents WHERE collection_id = ? AND path = ?",
                    [collection.id, path],
                )
            self._bump(collection)

    def _upsert_document(
        self,
        collection: Collection,
        path: str,
        stat: FileStat,
        *,
        sha256: str | None,
        kind: str | None,
        state: str,
        reason: str | None,
        chunk_count: int,
    ) -> int:
        self._db.execute(
            "INSERT INTO documents (collection_id, path, size, mtime_ns, sha256, kind, state, "
            "reason, chunk_count, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (collection_id, path) DO UPDATE SET size = excluded.size, "
            "mtime_ns = excluded.mtime_ns, sha256 = excluded.sha256, kind = excluded.kind, "
            "state = excluded.state, reason = excluded.reason, "
            "chunk_count = excluded.chunk_count, indexed_at = excluded.indexed_at",
            [
                collection.id,
                path,
                stat.size,
                stat.mtime_ns,
                sha256,
                kind,
                state,
                reason,
                chunk_count,
                utc_now(),
            ],
        )
        (document_id,) = self._db.execute(
            "SELECT id FROM documents WHERE collection_id = ? AND path = ?", [collection.id, path]
        ).fetchone()
        return int(document_id)

    def chunk_ids_of(self, collection: Collection, path: str) -> npt.NDArray[np.int64]:
        rows = self._rows(
            "SELECT chunks.id FROM chunks JOIN documents ON documents.id = chunks.document_id "
            "WHERE documents.collection_id = ? AND documents.path = ?",
            [collection.id, path],
        )
        return np.array([row[0] for row in rows], dtype=np.int64)

    def _bump(self, collection: Collection) -> None:
        self._db.execute(
            "UPDATE collections SET revision = revision + 1 WHERE id = ?", [collection.id]
        )

    def revision(self, collection: Collection) -> int:
        rows = self._rows("SELECT revision FROM collections WHERE id = ?", [collection.id])
        return int(rows[0][0]) if rows else -1  # type: ignore[call-overload]

    # Chunks

    def vectors(self, collection: Collection) -> tuple[npt.NDArray[np.int64], Vectors]:
        """Every chunk id of the collection with its embedding (to rebuild the vector index)."""
        rows = self._rows(
            "SELECT chunks.id, chunks.vector FROM chunks JOIN documents "
            "ON documents.id = chunks.document_id WHERE documents.collection_id = ?",
            [collection.id],
        )
        ids = np.array([row[0] for row in rows], dtype=np.int64)
        if not rows:
            return ids, np.zeros((0, 0), dtype=np.float32)
        joined = np.frombuffer(b"".join(row[1] for row in rows), dtype=VECTOR_DTYPE)  # type: ignore[misc]
        return ids, joined.reshape(len(rows), -1).astype(np.float32)

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        if not ids:
            return {}
        marks = ",".join("?" * len(ids))
        rows = self._rows(
            "SELECT chunks.id, documents.path, ordinal, text, page, first_line, last_line "
            f"FROM chunks JOIN documents ON documents.id = chunks.document_id "
            f"WHERE chunks.id IN ({marks})",
            list(ids),
        )
        return {int(row[0]): StoredChunk(*row) for row in rows}  # type: ignore[arg-type, call-overload]

    def keyword_search(
        self, collection: Collection, match: str, limit: int
    ) -> list[tuple[int, float]]:
        """(chunk id, BM25 score; higher is better) for an FTS5 ``MATCH`` expression.

        When no other collection has chunks, every match is this collection's (the usual case:
        no join, ~4 ms less at 100k chunks). Otherwise the best matches of all collections are
        ranked first and then kept if they are this collection's (joining every match to its
        document first took twice as long at 100k chunks); when that leaves too few, the exact
        query runs."""
        rows = self._rows(
            "SELECT rowid, -bm25(chunks_fts) FROM chunks_fts WHERE chunks_fts MATCH ? "
            "AND NOT EXISTS (SELECT 1 FROM documents WHERE collection_id != ? AND chunk_count > 0) "
            "ORDER BY bm25(chunks_fts) LIMIT ?",
            [match, collection.id, limit],
        )
        if rows:
            return _scored(rows)
        rows = self._rows(
            "SELECT top.rowid, top.score FROM (SELECT rowid, -bm25(chunks_fts) AS score "
            "FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY bm25(chunks_fts) LIMIT ?) AS top "
            "JOIN chunks ON chunks.id = top.rowid "
            "JOIN documents ON documents.id = chunks.document_id "
            "WHERE documents.collection_id = ? ORDER BY top.score DESC LIMIT ?",
            [match, KEYWORD_POOL, collection.id, limit],
        )
        if len(rows) < limit:
            rows = self._rows(
                "SELECT chunks_fts.rowid, -bm25(chunks_fts) AS score FROM chunks_fts "
                "JOIN chunks ON chunks.id = chunks_fts.rowid "
                "JOIN documents ON documents.id = chunks.document_id "
                "WHERE chunks_fts MATCH ? AND documents.collection_id = ? "
                "ORDER BY bm25(chunks_fts) LIMIT ?",
                [match, collection.id, limit],
            )
        return _scored(rows)

    def term_counts(self, words: Sequence[str]) -> dict[str, int]:
        """How many chunks (of all collections) hold each word, as FTS5 reads it (stemmed).
        Counting reads only the word's list of chunks, without scoring: ~3 ms for a query's
        words at 100k chunks."""
        counts: dict[str, int] = {}
        for word in words:
            sql = "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?"
            counts[word] = cast(int, self._rows(sql, [f'"{word}"'])[0][0])
        return counts

    def chunk_total(self) -> int:
        """Chunks in all collections (what BM25 and ``term_counts`` count against)."""
        rows = self._rows("SELECT coalesce(sum(chunk_count), 0) FROM documents")
        return cast(int, rows[0][0])

    def counts(self, collection: Collection) -> tuple[int, int, str | None]:
        """(indexed documents, chunks, when a document was last indexed)."""
        rows = self._rows(
            "SELECT count(*), coalesce(sum(chunk_count), 0), max(indexed_at) FROM documents "
            "WHERE collection_id = ? AND state = 'indexed'",
            [collection.id],
        )
        documents, chunks, last = rows[0]
        return int(documents), int(chunks), last  # type: ignore[call-overload, return-value]

    def skipped(self, collection: Collection) -> list[tuple[str, str]]:
        rows = self._rows(
            "SELECT path, reason FROM documents WHERE collection_id = ? AND state = 'skipped' "
            "ORDER BY path",
            [collection.id],
        )
        return [(str(row[0]), str(row[1])) for row in rows]


def _scored(rows: list[tuple[object, ...]]) -> list[tuple[int, float]]:
    return [(int(row[0]), float(row[1])) for row in rows]  # type: ignore[call-overload, arg-type]
