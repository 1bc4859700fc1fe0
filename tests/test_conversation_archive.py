"""Rename, delete, full-text search, export and import of conversations, on real SQLite."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlite_utils

from app.core.errors import CadreError
from app.core.storage import ConversationStore, open_database
from app.core.storage.archive import FORMAT, read_document
from app.core.storage.conversations import MessageTimings, RouteRecord
from app.core.storage.migrations import MIGRATIONS
from app.core.storage.search import match_expression

ROUTE = RouteRecord("code", "programming", 0.91, "starter", "Looks like code.", {"code": 0.91})
SOURCES = ({"number": 1, "path": "/docs/lease.pdf", "place": "p. 3"},)


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    return ConversationStore(open_database(tmp_path / "cadre.db"))


def chat(store: ConversationStore, question: str, answer: str) -> str:
    conversation = store.create("starter")
    store.add_message(conversation.id, "user", question, "starter")
    store.add_message(
        conversation.id,
        "assistant",
        answer,
        "code",
        finish_reason="stop",
        timings=MessageTimings(prompt_tokens=7, completion_tokens=3, ttft_ms=12.5),
        route=ROUTE,
        sources=SOURCES,
    )
    return conversation.id


def test_rename(store: ConversationStore) -> None:
    cid = chat(store, "How do I sort a list?", "Use sorted().")
    store.rename(cid, "  Sorting  ")
    assert store.get(cid).title == "Sorting"


def test_delete_removes_the_conversation_and_its_messages(store: ConversationStore) -> None:
    kept = chat(store, "keep this one", "kept")
    gone = chat(store, "remove this zebra", "zebra answer")
    store.delete(gone)
    assert [c.id for c in store.recent()] == [kept]
    assert store.messages(gone) == []
    assert store.search("zebra") == []  # the index forgot them too
    assert len(store.messages(kept)) == 2


def test_search_finds_words_in_any_message_best_first(store: ConversationStore) -> None:
    weak = chat(store, "Tell me about gardens", "Gardens like tomatoes, and water.")
    strong = chat(store, "tomatoes tomatoes", "Tomatoes need sun; tomatoes need water.")
    results = store.search("tomatoes")
    assert [r.conversation_id for r in results][:2] == [strong, strong]
    assert weak in {r.conversation_id for r in results}
    assert "«Tomatoes»" in results[0].snippet or "«tomatoes»" in results[0].snippet
    assert results[0].title == "tomatoes tomatoes"
    assert {r.conversation_id for r in store.search("toma")} == {weak, strong}  # prefix
    assert [r.conversation_id for r in store.search("sun water")] == [strong]  # all words
    assert store.search("") == [] and store.search("  ?! ") == []
    assert len(store.search("tomatoes", limit=1)) == 1


@pytest.mark.parametrize(
    "query", ['"a" OR b*', "NEAR(a b)", "content:secret", 'unbalanced "quote', "-x AND", "*", "^a"]
)
def test_fts_syntax_in_a_query_is_searched_as_text(store: ConversationStore, query: str) -> None:
    chat(store, "a b secret x", "nothing here")
    store.search(query)  # never an FTS5 syntax error


def test_match_expression_quotes_every_word() -> None:
    assert match_expression('"a" OR b*') == '"a" "OR" "b"*'
    assert match_expression("") == ""


def test_migration_indexes_the_messages_of_an_existing_database(tmp_path: Path) -> None:
    path = tmp_path / "cadre.db"
    old = sqlite_utils.Database(path)
    for name, func in MIGRATIONS[:5]:
        func(old)
        old["_migrations"].insert({"name": name, "applied_at": "2026-01-01"})
    assert MIGRATIONS[5][0] == "m006_message_search"
    old.conn.commit()
    old["conversations"].insert({"id": "c", "title": "", "specialist_id": "starter"})
    old["messages"].insert(  # as that schema's Cadre stored it (today's store writes more columns)
        {"id": "m", "conversation_id": "c", "position": 0, "role": "user"}
        | {"content": "an old walrus question", "specialist_id": "starter"}
    )
    old.close()
    store = ConversationStore(open_database(path))
    assert [r.snippet for r in store.search("walrus")] == ["an old «walrus» question"]


def test_export_markdown(store: ConversationStore) -> None:
    cid = chat(store, "How do I sort a list?", "Use sorted().")
    text = store.export_markdown(cid)
    assert text.startswith("# How do I sort a list?\n")
    assert "## You\n\nHow do I sort a list?" in text
    assert "## Assistant — code\n\n> Looks like code.\n\nUse sorted()." in text
    assert "- [1] /docs/lease.pdf, p. 3" in text


def test_export_json_keeps_every_stored_field(store: ConversationStore) -> None:
    cid = chat(store, "How do I sort a list?", "Use sorted().")
    doc = store.export_json(cid)
    assert doc["format"] == FORMAT and doc["version"] == 1
    assert doc["conversation"]["id"] == cid
    reply = doc["messages"][1]
    assert reply["timings"]["ttft_ms"] == 12.5 and reply["finish_reason"] == "stop"
    assert reply["route"]["reason"] == "Looks like code." and reply["sources"] == list(SOURCES)
    json.dumps(doc)  # serialisable as is


def test_import_round_trip_makes_a_new_conversation(store: ConversationStore) -> None:
    cid = chat(store, "How do I sort a list?", "Use sorted().")
    doc = json.loads(json.dumps(store.export_json(cid)))
    imported = store.import_json(doc)
    assert imported.id != cid and imported.title == store.get(cid).title
    before, after = store.messages(cid), store.messages(imported.id)
    assert [m.id for m in before] != [m.id for m in after]
    strip = [(m.role, m.content, m.timings, m.route, m.sources, m.position) for m in before]
    assert strip == [(m.role, m.content, m.timings, m.route, m.sources, m.position) for m in after]
    assert len(store.search("sorted")) == 2  # the imported messages are searchable
    store.import_json(doc)  # again: yet another conversation, nothing overwritten
    assert len(store.recent()) == 3


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ([], "not a JSON object"),
        ({"format": "other", "version": 1}, "not a Cadre conversation"),
        ({"format": FORMAT, "version": 99}, "version 99"),
        ({"format": FORMAT, "version": 1, "conversation": {}}, 'no "title"'),
        ({"format": FORMAT, "version": 1, "conversation": "x"}, "not a JSON object"),
    ],
)
def test_a_bad_document_is_refused_clearly(
    store: ConversationStore, doc: object, message: str
) -> None:
    with pytest.raises(CadreError, match=message):
        store.import_json(doc)
    assert store.recent() == []


def test_a_bad_message_refuses_the_whole_import(store: ConversationStore) -> None:
    doc = store.export_json(chat(store, "question", "answer"))
    doc["messages"][1]["timings"]["ttft_ms"] = "fast"
    with pytest.raises(CadreError, match=r"message 2 has a \"ttft_ms\" of the wrong type"):
        store.import_json(doc)
    doc["messages"][1]["timings"]["ttft_ms"] = 1
    doc["messages"][0]["role"] = "robot"
    with pytest.raises(CadreError, match="unknown role"):
        store.import_json(doc)
    assert len(store.recent()) == 1


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text("{not json")
    with pytest.raises(CadreError, match="cannot be read as a conversation"):
        read_document(path)
