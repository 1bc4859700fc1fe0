"""Open Cadre's SQLite database: WAL mode, foreign keys, migrations applied, newer schemas refused."""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlite_utils

from app.core.errors import StorageError
from app.core.storage.migrations import MIGRATIONS, Migration

_MIGRATIONS_TABLE = "_migrations"
BUSY_TIMEOUT_S = 10.0  # the CLI and the window may write at the same moment


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def open_database(
    path: Path | None, migrations: list[tuple[str, Migration]] = MIGRATIONS
) -> sqlite_utils.Database:
    """Open (creating if needed) and migrate the database at ``path``; ``None`` opens one in memory.
    ``migrations`` defaults to the conversation database's own."""
    try:
        if path is None:
            db = sqlite_utils.Database(memory=True)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
            db = sqlite_utils.Database(connection)
            _enable_wal(db)
        db.execute("PRAGMA foreign_keys = ON")
        db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        apply_migrations(db, migrations)
    except sqlite3.DatabaseError as exc:
        raise StorageError(
            f"The database {path} cannot be opened: {exc}",
            hint="If the disk is full, free some space. A damaged file can be moved aside; "
            "Cadre then starts a new one.",
        ) from exc
    return db


def applied_migrations(db: sqlite_utils.Database) -> list[str]:
    if _MIGRATIONS_TABLE not in db.table_names():
        return []
    return [row["name"] for row in db.table(_MIGRATIONS_TABLE).rows_where(order_by="rowid")]


def apply_migrations(
    db: sqlite_utils.Database, migrations: list[tuple[str, Migration]] = MIGRATIONS
) -> list[str]:
    """Run every migration not yet recorded; return the names of those run now."""
    known = [name for name, _ in migrations]
    done = applied_migrations(db)
    unknown = [name for name in done if name not in known]
    if unknown:
        raise StorageError(
            "This database was written by a newer version of Cadre "
            f"(it has migration {unknown[0]}).",
            hint="Update Cadre, or point CADRE_HOME at another folder.",
        )
    ran: list[str] = []
    for name, func in migrations:
        if name in done:
            continue
        with write_transaction(db):
            if name in applied_migrations(db):  # another Cadre process got there first
                continue
            func(db)
            db.table(_MIGRATIONS_TABLE).insert({"name": name, "applied_at": utc_now()})
        ran.append(name)
    return ran


def _enable_wal(db: sqlite_utils.Database) -> None:
    """Switching a new database to WAL can answer "locked" at once, without waiting, while another
    process switches it too; retry within the busy timeout."""
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            db.enable_wal()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """BEGIN IMMEDIATE: take the write lock up front, so two processes opening a new database at
    once queue on the busy timeout instead of one failing with "database is locked"."""
    db.conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.conn.rollback()
        raise
    db.conn.commit()
