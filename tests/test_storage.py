import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from app.core.errors import StorageError
from app.core.storage import ConversationStore, open_database
from app.core.storage.conversations import MessageTimings
from app.core.storage.db import applied_migrations, apply_migrations
from app.core.storage.migrations import MIGRATIONS


def test_blank_database_gets_every_migration(tmp_path: Path) -> None:
    db = open_database(tmp_path / "cadre.db")
    assert applied_migrations(db) == [name for name, _ in MIGRATIONS]
    assert {"conversations", "messages"} <= set(db.table_names())
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert apply_migrations(db) == []


def test_old_database_is_migrated_forward(tmp_path: Path) -> None:
    path = tmp_path / "cadre.db"
    old = sqlite_utils.Database(path)
    first_name, first = MIGRATIONS[0]
    first(old)
    old["_migrations"].insert({"name": first_name, "applied_at": "2026-01-01"})
    old["conversations"].insert(
        {"id": "c1", "title": "t", "specialist_id": "s", "created_at": "x", "updated_at": "x"}
    )
    old.close()
    db = open_database(path)
    assert applied_migrations(db)[-1] == MIGRATIONS[-1][0]
    assert "ttft_ms" in db["messages"].columns_dict
    assert db["conversations"].count == 1


def test_database_from_a_newer_cadre_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "cadre.db"
    open_database(path)["_migrations"].insert({"name": "m999_future", "applied_at": "x"})
    with pytest.raises(StorageError, match="newer version"):
        open_database(path)


def test_damaged_database_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cadre.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="cannot be opened"):
        open_database(path)


def test_each_message_is_committed_when_added(tmp_path: Path) -> None:
    """Another connection (as after a crash) sees every completed message at once."""
    path = tmp_path / "cadre.db"
    store = ConversationStore(open_database(path))
    conversation = store.create("starter")
    store.add_message(conversation.id, "user", "Hello there, how are you today?", "starter")
    timings = MessageTimings(prompt_tokens=10, completion_tokens=5, ttft_ms=12.5)
    store.add_message(
        conversation.id, "assistant", "Fine.", "starter", finish_reason="stop", timings=timings
    )
    other = sqlite3.connect(path)
    rows = other.execute(
        "select role, content, specialist_id, ttft_ms from messages order by position"
    ).fetchall()
    assert rows == [
        ("user", "Hello there, how are you today?", "starter", 0),
        ("assistant", "Fine.", "starter", 12.5),
    ]


def test_store_round_trip_and_titles(tmp_path: Path) -> None:
    store = ConversationStore(open_database(None))
    conversation = store.create("code")
    long_text = "Explain " + "very " * 30 + "carefully"
    store.add_message(conversation.id, "user", long_text, "code")
    store.add_message(
        conversation.id, "assistant", "Sure.", "code", timings=MessageTimings(completion_tokens=2)
    )
    messages = store.messages(conversation.id)
    assert [m.position for m in messages] == [0, 1]
    assert messages[1].timings.completion_tokens == 2
    title = store.get(conversation.id).title
    assert title.startswith("Explain very") and title.endswith("…") and len(title) <= 60
    assert [c.id for c in store.recent()] == [conversation.id]


def test_store_is_safe_to_use_from_two_threads(tmp_path: Path) -> None:
    import threading

    store = ConversationStore(open_database(tmp_path / "cadre.db"))
    conversation = store.create("starter")

    def write(role: str) -> None:
        for i in range(50):
            store.add_message(conversation.id, role, f"{role} {i}", "starter")

    threads = [threading.Thread(target=write, args=(role,)) for role in ("user", "assistant")]
    for thread in threads:
        thread.start()
    for _ in range(50):
        store.recent()
    for thread in threads:
        thread.join()
    positions = [m.position for m in store.messages(conversation.id)]
    assert positions == list(range(100))


def _open_and_close(path: str) -> str:
    try:
        open_database(Path(path)).close()
    except StorageError as exc:
        return exc.message
    return "ok"


def test_several_processes_can_create_the_database_at_once(tmp_path: Path) -> None:
    """The CLI and the window may start together on a new data folder: nobody gets "locked"."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        for attempt in range(8):
            path = str(tmp_path / f"race-{attempt}.db")
            assert pool.map(_open_and_close, [path] * 4) == ["ok"] * 4
