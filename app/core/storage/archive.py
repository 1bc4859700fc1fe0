"""Conversations as files: Markdown to read, and a versioned JSON document that imports back.

An import always makes a new conversation with new ids, so a file can never overwrite a chat.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from app.core.errors import CadreError
from app.core.storage.conversations import (
    Conversation,
    MessageTimings,
    RouteRecord,
    StoredMessage,
)

FORMAT = "cadre-conversation"
VERSION = 1
_ROLES = ("user", "assistant", "system")


def to_markdown(conversation: Conversation, messages: list[StoredMessage]) -> str:
    lines = [f"# {conversation.title or 'Untitled conversation'}", ""]
    lines += [f"*Exported from Cadre. Started {conversation.created_at}.*", ""]
    for message in messages:
        lines += _message_markdown(message)
    return "\n".join(lines).rstrip() + "\n"


def _message_markdown(message: StoredMessage) -> list[str]:
    heading = "You" if message.role == "user" else message.role.title()
    if message.role == "assistant" and message.specialist_id:
        heading += f" — {message.specialist_id}"
    lines = [f"## {heading}", ""]
    if message.route is not None and message.route.reason:
        lines += [f"> {message.route.reason}", ""]
    lines += [message.content, ""]
    if message.sources:
        lines += ["Sources:", ""]
        lines += [f"- {_source_label(source)}" for source in message.sources]
        lines.append("")
    return lines


def _source_label(source: dict[str, Any]) -> str:
    label = f"[{source.get('number', '?')}] {source.get('path', '')}"
    return f"{label}, {source['place']}" if source.get("place") else label


def to_json(conversation: Conversation, messages: list[StoredMessage]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "conversation": asdict(conversation),
        "messages": [{**asdict(m), "sources": list(m.sources)} for m in messages],
    }


def read_document(path: Path) -> dict[str, Any]:
    """The JSON document in ``path``, or a :class:`CadreError` saying why it cannot be read."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CadreError(
            f"{path.name} cannot be read as a conversation: {exc}",
            hint="Choose a file that Cadre exported as JSON.",
        ) from exc
    return _mapping(doc, "the file")


def from_json(doc: object) -> tuple[Conversation, list[StoredMessage]]:
    """Check an exported document and give its conversation and messages under new ids."""
    root = _mapping(doc, "the file")
    if root.get("format") != FORMAT:
        raise _bad('it is not a Cadre conversation (no "format": "cadre-conversation")')
    if root.get("version") != VERSION:
        raise _bad(
            f"it has version {root.get('version')!r}; this Cadre reads version {VERSION}",
            hint="A file from a newer Cadre needs that version to import it.",
        )
    fields = _mapping(root.get("conversation"), "conversation")
    conversation = Conversation(
        id=uuid.uuid4().hex,
        title=_get(fields, "title", str, "conversation"),
        specialist_id=_get(fields, "specialist_id", str, "conversation"),
        created_at=_get(fields, "created_at", str, "conversation"),
        updated_at=_get(fields, "updated_at", str, "conversation"),
        collection=_get(fields, "collection", (str, type(None)), "conversation", None),
    )
    items = root.get("messages")
    if not isinstance(items, list):
        raise _bad('"messages" is not a list')
    messages = [_message(conversation.id, i, item) for i, item in enumerate(items)]
    return conversation, messages


def _message(conversation_id: str, position: int, item: object) -> StoredMessage:
    where = f"message {position + 1}"
    fields = _mapping(item, where)
    role = _get(fields, "role", str, where)
    if role not in _ROLES:
        raise _bad(f"{where} has the unknown role {role!r}")
    sources = _get(fields, "sources", list, where, [])
    if not all(isinstance(source, dict) for source in sources):
        raise _bad(f"{where} has a source that is not an object")
    return StoredMessage(
        id=uuid.uuid4().hex,
        conversation_id=conversation_id,
        position=position,
        role=role,
        content=_get(fields, "content", str, where),
        specialist_id=_get(fields, "specialist_id", str, where, ""),
        created_at=_get(fields, "created_at", str, where),
        finish_reason=_get(fields, "finish_reason", str, where, ""),
        timings=_timings(fields.get("timings"), where),
        route=_route(fields.get("route"), where),
        sources=tuple(sources),
    )


def _timings(value: object, where: str) -> MessageTimings:
    if value is None:
        return MessageTimings()
    fields = _mapping(value, f"{where} timings")
    names = MessageTimings.__dataclass_fields__
    unknown = set(fields) - set(names)
    if unknown:
        raise _bad(f"{where} timings has unknown fields: {', '.join(sorted(unknown))}")
    number = (int, float)
    values = {name: _get(fields, name, number, where, 0) for name in names}
    return MessageTimings(**values)


def _route(value: object, where: str) -> RouteRecord | None:
    if value is None:
        return None
    fields = _mapping(value, f"{where} route")
    scores = _get(fields, "scores", dict, where, {})
    if not all(isinstance(v, int | float) for v in scores.values()):
        raise _bad(f"{where} route has a score that is not a number")
    return RouteRecord(
        specialist=_get(fields, "specialist", str, where),
        domain=_get(fields, "domain", str, where, ""),
        confidence=float(_get(fields, "confidence", (int, float), where, 0.0)),
        runner_up=_get(fields, "runner_up", str, where, ""),
        reason=_get(fields, "reason", str, where, ""),
        scores={str(k): float(v) for k, v in scores.items()},
        forced=_get(fields, "forced", bool, where, False),
    )


_REQUIRED = object()


def _get(
    fields: dict[str, Any],
    name: str,
    kind: type | tuple[type, ...],
    where: str,
    default: Any = _REQUIRED,
) -> Any:
    if name not in fields:
        if default is _REQUIRED:
            raise _bad(f'{where} has no "{name}"')
        return default
    value = fields[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise _bad(f'{where} has a "{name}" of the wrong type ({type(value).__name__})')
    return value


def _mapping(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _bad(f"{where} is not a JSON object")
    return value


def _bad(reason: str, hint: str = "Choose a file that Cadre exported as JSON.") -> CadreError:
    return CadreError(f"This file cannot be imported: {reason}.", hint=hint)
