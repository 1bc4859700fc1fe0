"""Open Cadre's SQLite database: WAL mode, foreign keys, migrations applied, newer schemas refused."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from app.core.errors import StorageError
from app.core.storage.migrations import MIGRATIONS

_MIGRATIONS_TABLE = "_migrations"


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def open_database(path: Path | None) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the database at ``path``; ``None`` opens one in memory."""
    try:
        if path is None:
            db = sqlite_utils.Database(memory=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite_utils.Database(sqlite3.connect(path, check_same_thread=False))
            db.enable_wal()
        db.execute("PRAGMA foreign_keys = ON")
        db.execute("PRAGMA busy_timeout = 5000")
        apply_migrations(db)
    except sqlite3.DatabaseError as exc:
        raise StorageError(
            f"The conversation database {path} cannot be opened: {exc}",
            hint="If the disk is full, free some space. A damaged file can be moved aside; "
            "Cadre then starts a new one.",
        ) from exc
    return db


def applied_migrations(db: sqlite_utils.Database) -> list[str]:
    if _MIGRATIONS_TABLE not in db.table_names():
        return []
    return [row["name"] for row in db.table(_MIGRATIONS_TABLE).rows_where(order_by="rowid")]


def apply_migrations(db: sqlite_utils.Database) -> list[str]:
    """Run every migration not yet recorded; return the names of those run now."""
    known = [name for name, _ in MIGRATIONS]
    done = applied_migrations(db)
    unknown = [name for name in done if name not in known]
    if unknown:
        raise StorageError(
            "This conversation database was written by a newer version of Cadre "
            f"(it has migration {unknown[0]}).",
            hint="Update Cadre, or point CADRE_HOME at another folder.",
        )
    ran: list[str] = []
    for name, func in MIGRATIONS:
        if name in done:
            continue
        with db.atomic():
            func(db)
            db.table(_MIGRATIONS_TABLE).insert({"name": name, "applied_at": utc_now()})
        ran.append(name)
    return ran
