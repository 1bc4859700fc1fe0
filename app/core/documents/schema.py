"""The document database's migrations (``documents.db``, apart from the conversations).

Collections hold sources (folders or files); each file found becomes a document row with its state
("indexed" or "skipped" with a reason); each indexed document owns its chunks, which keep their text,
their place in the file (page or line range) and their embedding, so the vector index is a cache
that can always be rebuilt from this database without embedding anything again.
"""

from __future__ import annotations

import sqlite_utils

from app.core.storage.migrations import Migration

DOCUMENT_MIGRATIONS: list[tuple[str, Migration]] = []


def _migration(func: Migration) -> Migration:
    DOCUMENT_MIGRATIONS.append((func.__name__, func))
    return func


# One statement each: executescript() would commit the migration's transaction half way.
_D001 = (
    """
    CREATE TABLE collections (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at TEXT NOT NULL,
        revision INTEGER NOT NULL DEFAULT 0
    )
    """,
    """
    CREATE TABLE sources (
        id INTEGER PRIMARY KEY,
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        added_at TEXT NOT NULL,
        UNIQUE (collection_id, path)
    )
    """,
    """
    CREATE TABLE documents (
        id INTEGER PRIMARY KEY,
        collection_id INTEGER NOT NULL REFERENCES collections(id) ON DELETE CASCADE,
        path TEXT NOT NULL,
        size INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        sha256 TEXT,
        kind TEXT,
        state TEXT NOT NULL,
        reason TEXT,
        chunk_count INTEGER NOT NULL DEFAULT 0,
        indexed_at TEXT NOT NULL,
        UNIQUE (collection_id, path)
    )
    """,
    """
    CREATE INDEX documents_by_hash ON documents (collection_id, sha256)
    """,
    """
    CREATE TABLE chunks (
        id INTEGER PRIMARY KEY,
        document_id INTEGER NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
        ordinal INTEGER NOT NULL,
        text TEXT NOT NULL,
        page INTEGER,
        first_line INTEGER,
        last_line INTEGER,
        vector BLOB NOT NULL
    )
    """,
    """
    CREATE INDEX chunks_by_document ON chunks (document_id, ordinal)
    """,
    """
    CREATE VIRTUAL TABLE chunks_fts USING fts5(
        text, content='chunks', content_rowid='id', tokenize='porter unicode61'
    )
    """,
    """
    CREATE TRIGGER chunks_fts_insert AFTER INSERT ON chunks BEGIN
        INSERT INTO chunks_fts (rowid, text) VALUES (new.id, new.text);
    END
    """,
    """
    CREATE TRIGGER chunks_fts_delete AFTER DELETE ON chunks BEGIN
        INSERT INTO chunks_fts (chunks_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END
    """,
)


@_migration
def d001_collections(db: sqlite_utils.Database) -> None:
    for statement in _D001:
        db.execute(statement)
