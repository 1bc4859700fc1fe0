"""Named, append-only schema migrations. Never edit or reorder one that has shipped: add a new one.

Each migration runs once, inside a transaction, and is recorded by name in ``_migrations``. A database
that records a migration this build does not know comes from a newer Cadre and is refused.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlite_utils

Migration = Callable[[sqlite_utils.Database], None]
MIGRATIONS: list[tuple[str, Migration]] = []


def migration(func: Migration) -> Migration:
    MIGRATIONS.append((func.__name__, func))
    return func


@migration
def m001_conversations_and_messages(db: sqlite_utils.Database) -> None:
    db.table("conversations").create(
        {
            "id": str,
            "title": str,
            "specialist_id": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
    )
    db.table("messages").create(
        {
            "id": str,
            "conversation_id": str,
            "position": int,
            "role": str,
            "content": str,
            "specialist_id": str,
            "created_at": str,
            "finish_reason": str,
        },
        pk="id",
        foreign_keys=[("conversation_id", "conversations", "id")],
    )
    db.table("messages").create_index(["conversation_id", "position"], unique=True)


@migration
def m002_message_timings(db: sqlite_utils.Database) -> None:
    """Per-reply figures shown to the user and used by benchmarks."""
    table = db.table("messages")
    for column, kind in (
        ("prompt_tokens", int),
        ("cached_tokens", int),
        ("completion_tokens", int),
        ("ttft_ms", float),
        ("decode_tokens_per_s", float),
        ("total_ms", float),
    ):
        table.add_column(column, kind)


@migration
def m003_model_files(db: sqlite_utils.Database) -> None:
    """Installed model files: where each came from, its verified sha256, and the memory it took
    when it was last loaded (used instead of the estimate in fit advice)."""
    db.table("model_files").create(
        {
            "path": str,
            "source": str,
            "repo": str,
            "filename": str,
            "revision": str,
            "commit_hash": str,
            "sha256": str,
            "size_bytes": int,
            "installed_at": str,
            "footprint_ram_bytes": int,
            "footprint_vram_bytes": int,
            "footprint_n_ctx": int,
            "footprint_gpu_layers": int,
            "measured_at": str,
        },
        pk="path",
    )


@migration
def m004_routing(db: sqlite_utils.Database) -> None:
    """Each reply's routing decision, and the user's corrections (used as new examples)."""
    messages = db.table("messages")
    for column, kind in (
        ("route_specialist", str),
        ("route_domain", str),
        ("route_confidence", float),
        ("route_runner_up", str),
        ("route_reason", str),
        ("route_scores", str),
    ):
        messages.add_column(column, kind)
    db.table("routing_corrections").create(
        {"id": int, "text": str, "specialist_id": str, "domain": str, "created_at": str},
        pk="id",
    )


@migration
def m005_message_sources(db: sqlite_utils.Database) -> None:
    """Replies grounded in documents keep their numbered sources (JSON), so citations stay
    traceable; the collection a conversation asks is kept with it."""
    db.table("messages").add_column("sources", str)
    db.table("conversations").add_column("collection", str)


_MESSAGE_SEARCH = (
    # External content: the index keeps no copy of the text, only the words, keyed by the
    # messages' implicit rowid (their primary key is the TEXT id).
    "CREATE VIRTUAL TABLE messages_fts USING fts5("
    "content, content='messages', content_rowid='rowid')",
    "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content); END",
    "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "VALUES ('delete', old.rowid, old.content); END",
    "CREATE TRIGGER messages_fts_update AFTER UPDATE ON messages BEGIN "
    "INSERT INTO messages_fts(messages_fts, rowid, content) "
    "VALUES ('delete', old.rowid, old.content); "
    "INSERT INTO messages_fts(rowid, content) VALUES (new.rowid, new.content); END",
    "INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')",  # index the existing messages
)


@migration
def m006_message_search(db: sqlite_utils.Database) -> None:
    """Full-text search over every message (FTS5), kept current by triggers. One statement at a
    time: ``executescript`` would commit the migration's transaction half way. Nothing may VACUUM
    this database without a 'rebuild' after it: VACUUM may renumber the implicit rowids."""
    for statement in _MESSAGE_SEARCH:
        db.execute(statement)


@migration
def m007_reply_memory_and_manual_routes(db: sqlite_utils.Database) -> None:
    """Each reply's peak memory (Cadre and its engine worker, while it was written), and whether
    its specialist was chosen by the user rather than the router (re-running a routed reply with
    another specialist teaches the router; re-running a manual pick teaches nothing). Replies
    stored before this were manual when the router wrote its "chosen by you" reason."""
    messages = db.table("messages")
    messages.add_column("peak_memory_bytes", int)
    messages.add_column("route_forced", int)
    db.execute(
        "UPDATE messages SET route_forced = (route_reason LIKE 'chosen by you%') "
        "WHERE route_specialist IS NOT NULL"
    )
