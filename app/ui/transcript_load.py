"""A stored conversation into the transcript without stalling the window, however long it is.

Rendering a reply to HTML is pure Python (~20 ms for one with a 40-line code block) and Qt takes
about as long again to insert and lay it out, so a 400-message conversation shown in one go held
the GUI thread for seconds. Instead its latest messages (:data:`TAIL_CHARS` of text, usually the
whole of a short conversation) are rendered and inserted at once; the earlier ones are rendered off
the GUI thread, newest first (:func:`app.ui.transcript_jobs.render_job`), and inserted a few at a
time, one slice of about :data:`SLICE_MS` per turn of the event loop, each above the last. So the
end shows at once, and the reader stays where they are while the rest arrives above.

Rendering and inserting take turns: the worker renders a batch (:data:`RENDER_MS` of work), the
GUI thread inserts it, then the worker renders the next. A worker rendering Python while the GUI
thread inserts would hold the GIL against it, each of its many Qt calls waiting for its turn
(measured: 100-400 ms stalls).

A long conversation's earlier messages are also read from the database off the GUI thread
(``Loading.earlier``, once those given have been inserted): the window reads only its latest.

Everything is inserted after an empty first block, the anchor (:func:`insert_joined` at the
document's start); when all is in, the anchor goes and the first message's header takes its place,
in its own format: the document then reads exactly as one whole render would.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import QObject, QTimer, QUrl
from PySide6.QtGui import QTextCursor as Cursor
from PySide6.QtGui import QTextDocument

from app.core.documents.grounding import Source
from app.core.documents.passage import Citation
from app.core.storage import StoredMessage
from app.core.tasks import CancelToken
from app.core.units import human_bytes
from app.ui.live_reply import insert_joined
from app.ui.markdown_html import Colours
from app.ui.runner import JobRunner, RunningJob
from app.ui.transcript_items import FooterItem, Item, ReplyItem, UserItem, stored_items
from app.ui.transcript_jobs import log_load_failure, render_job

TAIL_CHARS = 1500  # text shown at once: a screenful (~15 ms to render and insert)
SLICE_MS = 6.0  # inserting in one turn of the event loop (Qt's layout after it takes as long)
RENDER_MS = 100.0  # rendering a batch off the GUI thread (a reply with code takes ~20 ms)


@dataclass(eq=False)
class Loading:
    """A conversation being shown: the items still to insert, oldest first, and those rendered
    off the GUI thread and waiting, newest first."""

    waiting: list[Item]
    regenerate: Item | None  # the footer that offers Regenerate, wherever it is
    earlier: Callable[[], list[Item]] | None = None  # reads the items before ``waiting``'s
    rendered: deque[tuple[Item, str]] = field(default_factory=deque)
    job: RunningJob | None = None
    cancelled: bool = False  # the view moved on: nothing more of it is inserted

    def tail_length(self) -> int:
        """How many of the latest items to show at once: :data:`TAIL_CHARS` of text or more, and
        at least one."""
        size, cut = 0, len(self.waiting)
        while cut > 0 and (size < TAIL_CHARS or cut == len(self.waiting)):
            cut -= 1
            size += len(item_text(self.waiting[cut]))
        return len(self.waiting) - cut

    def cancel(self) -> None:
        self.cancelled = True
        if self.job is not None:
            self.job.cancel()


class Loader:
    """Brings in the earlier items of a :class:`Loading`, a batch rendered on ``renders``, then
    inserted by ``insert(load, until)`` a slice per turn of the event loop, then the next batch;
    ``finish(load)`` once all are in (or rendering failed: a bug, logged)."""

    def __init__(
        self,
        owner: QObject,
        renders: JobRunner,
        insert: Callable[[Loading, float], None],
        finish: Callable[[Loading], None],
    ) -> None:
        self._owner, self._renders = owner, renders
        self._insert, self._finish = insert, finish

    def start(self, load: Loading, colours: Colours) -> None:
        if not load.waiting and load.earlier is not None:
            self._fetch(load, load.earlier, colours)
            return
        load.job = self._renders.start(
            render_job(load.waiting, colours, load.regenerate, RENDER_MS / 1000),
            succeeded=lambda rendered: self._rendered(load, rendered, colours),
            failed=lambda exc: self._failed(load, exc),
        )

    def _fetch(self, load: Loading, earlier: Callable[[], list[Item]], colours: Colours) -> None:
        def fetch(token: CancelToken) -> Generator[None, None, list[Item]]:
            yield from ()
            return earlier()

        load.job = self._renders.start(
            fetch,
            succeeded=lambda items: self._fetched(load, items, colours),
            failed=lambda exc: self._failed(load, exc),
        )

    def _fetched(self, load: Loading, items: list[Item], colours: Colours) -> None:
        if load.cancelled:
            return
        load.earlier = None
        load.waiting[:0] = items
        if load.waiting:
            self.start(load, colours)
        else:
            self._finish(load)

    def _rendered(self, load: Loading, rendered: list[tuple[Item, str]], colours: Colours) -> None:
        if not load.cancelled:
            load.rendered.extend(rendered)
            self._next_slice(load, colours)

    def _next_slice(self, load: Loading, colours: Colours) -> None:
        """A timer, not a zero one: Qt runs zero timers one after another before due timers."""
        QTimer.singleShot(1, self._owner, lambda: self._slice(load, colours))

    def _slice(self, load: Loading, colours: Colours) -> None:
        if load.cancelled:
            return
        self._insert(load, time.perf_counter() + SLICE_MS / 1000)
        if not load.waiting and load.earlier is None:
            self._finish(load)
        elif load.rendered:
            self._next_slice(load, colours)
        else:
            self.start(load, colours)

    def _failed(self, load: Loading, exc: BaseException) -> None:
        log_load_failure(exc)
        if not load.cancelled:
            load.waiting.clear()
            load.earlier = None
            self._finish(load)


def item_text(item: Item) -> str:
    if isinstance(item, ReplyItem):
        return item.markdown
    return item.text


def conversation_items(
    messages: Sequence[StoredMessage], speaker: Callable[[str], str]
) -> list[Item]:
    """A stored conversation as the view shows it: routing notes, replies named by
    ``speaker(specialist_id)``, their sources and footers."""
    items: list[Item] = []
    for message in messages:
        name = speaker(message.specialist_id)
        items += stored_items(message, name, footer_for(message), source_links(message))
    return items


def regenerable(items: Sequence[Item]) -> int | None:
    """The index of the footer that offers Regenerate: the last reply's, when it is stored
    and nothing has been asked since."""
    for index in range(len(items) - 1, -1, -1):
        item = items[index]
        if isinstance(item, UserItem | ReplyItem):
            return None
        if isinstance(item, FooterItem) and item.reply is not None:
            return index if item.reply.message_id else None
    return None


def insert_above(
    document: QTextDocument, load: Loading, until: float | None
) -> list[tuple[Item, int]]:
    """Insert the items ``load`` has rendered, newest first, each after the anchor (above the
    items shown), until the time ``until`` (None: all); each item inserted, and its size."""
    inserted = []
    cursor = Cursor(document)
    cursor.beginEditBlock()  # one layout pass for the slice
    while load.rendered and (until is None or time.perf_counter() < until):
        item, html = load.rendered.popleft()
        assert item is load.waiting.pop(), "rendered out of order"
        before = document.characterCount()
        cursor.setPosition(0)
        insert_joined(cursor, html)
        inserted.append((item, document.characterCount() - before))
    cursor.endEditBlock()
    return inserted


def remove_anchor(document: QTextDocument) -> None:
    """The first item's header takes the anchor's place, in its own format (Qt would give the
    merged block the anchor's)."""
    header = document.findBlockByNumber(1)
    block_format, char_format = header.blockFormat(), header.charFormat()
    cursor = Cursor(document)
    cursor.beginEditBlock()  # one change for Qt to lay out: otherwise the header is left unlaid
    cursor.setPosition(1, Cursor.MoveMode.KeepAnchor)
    cursor.removeSelectedText()
    cursor.setBlockFormat(block_format)
    cursor.setBlockCharFormat(char_format)
    cursor.endEditBlock()


def footer_for(message: StoredMessage) -> str:
    if message.finish_reason == "no_sources":
        return ""  # answered without the model: the reply itself says nothing matched
    t = message.timings
    return (
        f"{t.completion_tokens} tokens · {t.decode_tokens_per_s:.1f} tokens/s · "
        f"first token {t.ttft_ms / 1000:.2f} s"
        + (f" · peak {human_bytes(t.peak_memory_bytes)}" if t.peak_memory_bytes else "")
        + (" · stopped" if message.finish_reason == "cancelled" else "")
    )


def source_links(message: StoredMessage) -> list[tuple[str, str]]:
    """(label, link) of each document excerpt the reply was given: "[1] lease.pdf, p. 3" and the
    file's URL with the citation (place and fingerprint) in its fragment."""
    links = []
    for stored in message.sources:
        citation = Citation.from_stored(stored)
        place = str(stored.get("place", "")) or citation.place()
        label = Source(int(stored.get("number", 0)), citation.path, place, "", 0.0).label()
        url = QUrl.fromLocalFile(citation.path)
        url.setFragment(citation.as_query())
        links.append((label, url.toString(QUrl.ComponentFormattingOption.FullyEncoded)))
    return links
