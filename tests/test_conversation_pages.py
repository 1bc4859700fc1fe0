"""The conversation store read a page at a time and a message at a time (real SQLite)."""

from __future__ import annotations

from pathlib import Path

from app.core.storage import ConversationStore, open_database


def test_recent_pages_reach_every_conversation_once_newest_first(tmp_path: Path) -> None:
    store = ConversationStore(open_database(tmp_path / "cadre.db"))
    ids = [store.create("tiny", title=f"chat {n}").id for n in range(23)]
    for n in range(0, 23, 4):  # several with the same updated_at: ties broken by id
        store._db.table("conversations").update(ids[n], {"updated_at": "2024-01-01T00:00:00"})
    pages = [store.recent(limit=5)]
    while pages[-1]:
        pages.append(store.recent(limit=5, after=pages[-1][-1]))
    listed = [c for page in pages for c in page]
    assert sorted(c.id for c in listed) == sorted(ids)  # each once
    keys = [(c.updated_at, c.id) for c in listed]
    assert keys == sorted(keys, reverse=True)
    assert [len(page) for page in pages] == [5, 5, 5, 5, 3, 0]


def test_one_message_by_id_within_its_conversation(tmp_path: Path) -> None:
    store = ConversationStore(open_database(tmp_path / "cadre.db"))
    first, other = store.create("tiny"), store.create("tiny")
    added = [store.add_message(first.id, "user", f"Question {n}?", "tiny") for n in range(5)]
    assert store.message(first.id, added[3].id) == added[3]
    assert store.message(other.id, added[3].id) is None  # not one of its messages
    assert store.message(first.id, "no-such-id") is None


def test_the_latest_messages_then_those_before_them(tmp_path: Path) -> None:
    store = ConversationStore(open_database(tmp_path / "cadre.db"))
    conversation = store.create("tiny")
    added = [store.add_message(conversation.id, "user", f"Q{n}", "tiny") for n in range(7)]
    latest = store.messages(conversation.id, last=3)
    assert latest == added[4:]
    assert store.messages(conversation.id, before=latest[0].position) == added[:4]
    assert store.messages(conversation.id, before=2, last=5) == added[:2]
    assert store.messages(conversation.id) == added
