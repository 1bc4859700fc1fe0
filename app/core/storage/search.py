"""Full-text search over every stored message (the FTS5 index of migration m006)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import sqlite_utils

HIGHLIGHT = ("«", "»")  # around each matched word in a snippet
SNIPPET_WORDS = 12

_WORD = re.compile(r"\w+")

_SEARCH_SQL = """
select m.conversation_id, c.title, m.id,
       snippet(messages_fts, 0, ?, ?, '…', ?), c.updated_at
from messages_fts
join messages m on m.rowid = messages_fts.rowid
join conversations c on c.id = m.conversation_id
where messages_fts match ?
order by bm25(messages_fts)
limit ?
"""


@dataclass(frozen=True)
class SearchResult:
    conversation_id: str
    title: str
    message_id: str
    snippet: str
    updated_at: str


def match_expression(query: str) -> str:
    """The user's words as FTS5 strings, all required, the last one as a prefix (it may still be
    being typed). Each word is quoted, so FTS5 syntax in the query (``OR``, ``*``, ``"``, ``NEAR``,
    column filters) is searched for as text, never interpreted. Empty when there is no word."""
    words = _WORD.findall(query)
    if not words:
        return ""
    quoted = [f'"{word}"' for word in words]  # \\w+ holds no quote to escape
    quoted[-1] += "*"
    return " ".join(quoted)


def search_messages(db: sqlite_utils.Database, query: str, limit: int = 50) -> list[SearchResult]:
    """Messages matching ``query``, best first (bm25)."""
    expression = match_expression(query)
    if not expression:
        return []
    rows = db.execute(_SEARCH_SQL, [*HIGHLIGHT, SNIPPET_WORDS, expression, limit]).fetchall()
    return [SearchResult(*row) for row in rows]
