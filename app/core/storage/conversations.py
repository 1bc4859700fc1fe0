"""Conversations and their messages. Each message is committed the moment it is complete."""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

import sqlite_utils

from app.core.storage.db import utc_now
from app.core.storage.search import SearchResult, search_messages

TITLE_LENGTH = 60


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    specialist_id: str
    created_at: str
    updated_at: str
    collection: str | None = None  # the document collection its questions are answered from


@dataclass(frozen=True)
class MessageTimings:
    """Figures for one reply; zeros for user messages."""

    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    ttft_ms: float = 0.0
    decode_tokens_per_s: float = 0.0
    total_ms: float = 0.0
    peak_memory_bytes: int = 0  # Cadre's resident memory (with its engine worker) at its highest


@dataclass(frozen=True)
class RouteRecord:
    """Why a reply went to its specialist: kept with the message."""

    specialist: str
    domain: str
    confidence: float
    runner_up: str
    reason: str
    scores: dict[str, float] = field(default_factory=dict)
    forced: bool = False  # the user chose the specialist (or domain); the router did not


_ROUTE_COLUMNS = ("specialist", "domain", "confidence", "runner_up", "reason", "scores", "forced")


@dataclass(frozen=True)
class StoredMessage:
    id: str
    conversation_id: str
    position: int
    role: str
    content: str
    specialist_id: str
    created_at: str
    finish_reason: str = ""
    timings: MessageTimings = field(default_factory=MessageTimings)
    route: RouteRecord | None = None
    sources: tuple[dict[str, Any], ...] = ()  # documents the reply drew on: number, path, place


def _title_from(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= TITLE_LENGTH else line[: TITLE_LENGTH - 1].rstrip() + "…"


class ConversationStore:
    """Thread-safe: the window reads on the GUI thread while a reply is stored from a worker thread,
    over one connection, so each operation (and its transaction) holds the store's lock."""

    def __init__(self, db: sqlite_utils.Database, lock: threading.RLock | None = None) -> None:
        self._db = db
        self._lock = lock or threading.RLock()

    def create(
        self, specialist_id: str, title: str = "", collection: str | None = None
    ) -> Conversation:
        now = utc_now()
        conversation = Conversation(uuid.uuid4().hex, title, specialist_id, now, now, collection)
        with self._lock:
            self._db.table("conversations").insert(asdict(conversation))
        return conversation

    def get(self, conversation_id: str) -> Conversation:
        with self._lock:
            row = self._db.table("conversations").get(conversation_id)
        return Conversation(**row)

    def recent(self, limit: int = 200, after: Conversation | None = None) -> list[Conversation]:
        """The most recently updated conversations, newest first; with ``after``, the page that
        follows it (a list pages in older ones as it is scrolled; ties are broken by id)."""
        where, args = None, []
        if after is not None:
            where, args = "(updated_at, id) < (?, ?)", [after.updated_at, after.id]
        with self._lock:
            rows = list(
                self._db.table("conversations").rows_where(
                    where, args, order_by="updated_at desc, id desc", limit=limit
                )
            )
        return [Conversation(**row) for row in rows]

    def messages(
        self, conversation_id: str, *, before: int | None = None, last: int | None = None
    ) -> list[StoredMessage]:
        """The conversation's messages in order: those before position ``before`` (all: None),
        the ``last`` of them only when given (a long conversation opens with its latest)."""
        where, args = "conversation_id = ?", [conversation_id]
        if before is not None:
            where += " and position < ?"
            args.append(str(before))  # SQLite compares it as the integer column's type
        order = "position" if last is None else "position desc"
        with self._lock:
            rows = list(
                self._db.table("messages").rows_where(where, args, order_by=order, limit=last)
            )
        if last is not None:
            rows.reverse()
        return [_message_from_row(row) for row in rows]

    def message(self, conversation_id: str, message_id: str) -> StoredMessage | None:
        """One message of a conversation (None: not one of its messages)."""
        with self._lock:
            rows = list(
                self._db.table("messages").rows_where(
                    "id = ? and conversation_id = ?", [message_id, conversation_id]
                )
            )
        return _message_from_row(rows[0]) if rows else None

    def add_message(
        self,
        conversation_id: str,
        role: str,
        content: str,
        specialist_id: str,
        *,
        finish_reason: str = "",
        timings: MessageTimings | None = None,
        route: RouteRecord | None = None,
        sources: tuple[dict[str, Any], ...] = (),
    ) -> StoredMessage:
        """Append and commit one complete message; titles an untitled conversation from its first."""
        with self._lock, self._db.atomic():
            position = self._next_position(conversation_id)
            message = StoredMessage(
                id=uuid.uuid4().hex,
                conversation_id=conversation_id,
                position=position,
                role=role,
                content=content,
                specialist_id=specialist_id,
                created_at=utc_now(),
                finish_reason=finish_reason,
                timings=timings or MessageTimings(),
                route=route,
                sources=sources,
            )
            self._db.table("messages").insert(_row_from_message(message))
            self._touch(conversation_id, first_text=content if role == "user" else "")
        return message

    def rename(self, conversation_id: str, title: str) -> None:
        with self._lock, self._db.atomic():
            self._db.table("conversations").update(conversation_id, {"title": title.strip()})

    def delete(self, conversation_id: str) -> None:
        """Remove the conversation and its messages, in one transaction."""
        with self._lock, self._db.atomic():
            self._db.execute("delete from messages where conversation_id = ?", [conversation_id])
            self._db.execute("delete from conversations where id = ?", [conversation_id])

    def truncate(self, conversation_id: str, message_id: str) -> list[StoredMessage]:
        """Delete ``message_id`` and every later message of its conversation, in one transaction
        (the search index drops their words through its triggers); returns what was deleted:
        nothing when the message is not in that conversation. A title made from a deleted first
        question is cleared with them, so that the question sent in its place titles it."""
        with self._lock, self._db.atomic():
            row = self._db.execute(
                "select position from messages where id = ? and conversation_id = ?",
                [message_id, conversation_id],
            ).fetchone()
            if row is None:
                return []
            where, args = "conversation_id = ? and position >= ?", [conversation_id, row[0]]
            rows = list(self._db.table("messages").rows_where(where, args, order_by="position"))
            self._db.execute(f"delete from messages where {where}", args)
            updates = {"updated_at": utc_now()}
            if self._lost_its_title_message(conversation_id, rows):
                updates["title"] = ""  # the next first message titles it (add_message)
            self._db.table("conversations").update(conversation_id, updates)
        return [_message_from_row(row) for row in rows]

    def _lost_its_title_message(self, conversation_id: str, deleted: list[dict[str, Any]]) -> bool:
        """The first message the user wrote was deleted, and the title is still the one made from
        it (a title the user gave is kept)."""
        first = next((row for row in deleted if row["role"] == "user"), None)
        if (
            first is None
            or self._db.execute(
                "select 1 from messages where conversation_id = ? and role = 'user'",
                [conversation_id],
            ).fetchone()
        ):
            return False
        return self.get(conversation_id).title == _title_from(first["content"])

    def search(self, query: str, limit: int = 50) -> list[SearchResult]:
        """Messages of every conversation matching the words of ``query``, best first."""
        with self._lock:
            return search_messages(self._db, query, limit)

    def export_markdown(self, conversation_id: str) -> str:
        from app.core.storage import archive  # archive builds on this module's records

        return archive.to_markdown(self.get(conversation_id), self.messages(conversation_id))

    def export_json(self, conversation_id: str) -> dict[str, Any]:
        from app.core.storage import archive

        return archive.to_json(self.get(conversation_id), self.messages(conversation_id))

    def import_json(self, doc: object) -> Conversation:
        """A new conversation (new ids: nothing is overwritten) from an exported document;
        :class:`CadreError` when the document is not one."""
        from app.core.storage import archive

        conversation, messages = archive.from_json(doc)
        with self._lock, self._db.atomic():
            self._db.table("conversations").insert(asdict(conversation))
            for message in messages:
                self._db.table("messages").insert(_row_from_message(message))
        return conversation

    def _next_position(self, conversation_id: str) -> int:
        row = self._db.execute(
            "select coalesce(max(position), -1) + 1 from messages where conversation_id = ?",
            [conversation_id],
        ).fetchone()
        return int(row[0])

    def _touch(self, conversation_id: str, first_text: str) -> None:
        updates: dict[str, Any] = {"updated_at": utc_now()}
        if first_text and not self.get(conversation_id).title:
            updates["title"] = _title_from(first_text)
        self._db.table("conversations").update(conversation_id, updates)


def _row_from_message(message: StoredMessage) -> dict[str, Any]:
    row = asdict(message)
    row.update(row.pop("timings"))
    row["sources"] = json.dumps(list(row["sources"])) if row["sources"] else None
    route = row.pop("route")
    if route is not None:
        route["scores"] = json.dumps(route["scores"])
        row.update({f"route_{name}": route[name] for name in _ROUTE_COLUMNS})
    return row


def _message_from_row(row: dict[str, Any]) -> StoredMessage:
    timing_names = MessageTimings.__dataclass_fields__
    timings = MessageTimings(**{name: row.pop(name) or 0 for name in timing_names})
    route_values = {name: row.pop(f"route_{name}", None) for name in _ROUTE_COLUMNS}
    route = None
    if route_values["specialist"]:
        route_values["scores"] = json.loads(route_values["scores"] or "{}")
        route_values["forced"] = bool(route_values["forced"])
        route = RouteRecord(**route_values)
    sources = tuple(json.loads(row.pop("sources", None) or "[]"))
    return StoredMessage(**row, timings=timings, route=route, sources=sources)
