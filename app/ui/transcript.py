"""The conversation transcript: replies rendered as Markdown, with code blocks that copy and links
for each message's actions.

The view keeps its content as a list of items (:mod:`app.ui.transcript_items`) and the document
position where each one starts. Content only changes at the end, so re-rendering "from item i to the
end" is enough for everything: a streaming reply (re-rendered whole on a ~40 ms timer, never per
token), a finished turn getting its message ids, the last reply's Regenerate link moving on, and a
theme switch (from the first item).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QEvent, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QTextBlockFormat, QTextCharFormat
from PySide6.QtGui import QTextCursor as Cursor
from PySide6.QtWidgets import QTextBrowser, QWidget

from app.core.documents.grounding import Source
from app.core.storage import StoredMessage
from app.core.tasks import ReplyTidier
from app.ui.markdown_html import DARK, LIGHT, Colours, safe_link
from app.ui.theme import is_dark
from app.ui.transcript_items import (
    ACTION_SCHEME,
    FooterItem,
    Item,
    NoteItem,
    ReplyItem,
    UserItem,
    item_html,
    stored_items,
    top_margin,
)

FLUSH_INTERVAL_MS = 40
ACTIONS = ("edit", "regenerate", "route")  # emitted as action_requested(action, message_id)


class TranscriptView(QTextBrowser):
    action_requested = Signal(str, str)  # (action, message_id)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(False)
        self.setOpenLinks(False)  # every link is handled by _on_anchor; the transcript stays put
        self.anchorClicked.connect(self._on_anchor)
        self.document().setUndoRedoEnabled(False)
        self.setPlaceholderText("Ask anything. Replies are written on this computer, offline.")
        self._pending: list[str] = []
        self._timer = QTimer(self)
        self._timer.setInterval(FLUSH_INTERVAL_MS)
        self._timer.timeout.connect(self.flush)
        self.reply_text = ""
        self._tidy = ReplyTidier()
        self._items: list[Item] = []
        self._starts: list[int] = []  # document position where each item starts
        self._live: ReplyItem | None = None  # the reply being written
        self._turn_start: int | None = None  # index of the live turn's user item
        self._replies = 0
        self._dark = self._is_dark()

    # -- a live turn ----------------------------------------------------------------------------

    def add_user(self, text: str) -> None:
        self._turn_start = len(self._items)
        self._append(UserItem(text))

    def begin_reply(self, speaker: str) -> None:
        self.reply_text = ""
        self._tidy = ReplyTidier()
        self._replies += 1
        self._live = ReplyItem(f"live-{self._replies}", speaker)
        self._append(self._live)
        self._timer.start()

    def add_reply_text(self, text: str) -> None:
        self._pending.append(text)

    def flush(self) -> None:
        """Paint what arrived since the last flush: the live reply's Markdown, re-rendered."""
        if not self._pending:
            return
        text = self._tidy.feed("".join(self._pending))
        self._pending.clear()
        self.reply_text += text
        if text and self._live is not None and self._live in self._items:
            self._live.markdown = self.reply_text
            self._render_from(self._items.index(self._live))

    def add_note(self, text: str) -> None:
        """A small grey line: why the reply went where it went."""
        self._append(NoteItem(text))

    def end_reply(self, footer: str, sources: Sequence[tuple[str, str]] = ()) -> None:
        """The live reply's footer: its sources, Copy, and ``footer`` (figures, or "Stopped.")."""
        self.flush()
        self._timer.stop()
        self._append(FooterItem(self._live, footer, tuple(sources)))
        self._live = None

    def finish_turn(
        self, user: StoredMessage, reply: StoredMessage | None, speaker: Callable[[str], str]
    ) -> None:
        """Re-render the live turn from its stored messages, so its links carry their ids; the
        live routing notes stay as they were (they may say more than the stored reason)."""
        start = self._turn_start
        if start is None:
            return
        live = self._items[start:]
        items: list[Item] = [UserItem(user.content, user.id)]
        items += [item for item in live if isinstance(item, NoteItem)]
        if reply is not None:
            stored = stored_items(
                reply, speaker(reply.specialist_id), footer_for(reply), source_links(reply)
            )
            items += [item for item in stored if not isinstance(item, NoteItem)]
        else:
            items += [item for item in live if isinstance(item, ReplyItem | FooterItem)]
        self._items[start:] = items
        self._turn_start = None
        self._render_from(start)

    # -- whole conversations --------------------------------------------------------------------

    def show_conversation(
        self, messages: Sequence[StoredMessage], speaker: Callable[[str], str]
    ) -> None:
        """Replace the transcript with a stored conversation, as it looked when it was live:
        routing notes, replies named by ``speaker(specialist_id)``, sources and footers."""
        self.clear()
        for message in messages:
            name = speaker(message.specialist_id)
            self._items += stored_items(message, name, footer_for(message), source_links(message))
        self._render_from(0)

    def clear(self) -> None:
        self._timer.stop()
        self._pending.clear()
        self.reply_text = ""
        self._items.clear()
        self._starts.clear()
        self._live = None
        self._turn_start = None
        super().clear()

    # -- rendering ------------------------------------------------------------------------------

    def _append(self, item: Item) -> None:
        before = self._regenerable()
        self._items.append(item)
        start = len(self._items) - 1
        if before is not None and before != self._regenerable():
            start = min(start, before)  # that footer loses its Regenerate link
        self._render_from(start)

    def _regenerable(self) -> int | None:
        """The index of the footer that offers Regenerate: the last reply's, when it is stored
        and nothing has been asked since."""
        for index in range(len(self._items) - 1, -1, -1):
            item = self._items[index]
            if isinstance(item, UserItem | ReplyItem):
                return None
            if isinstance(item, FooterItem) and item.reply is not None:
                return index if item.reply.message_id else None
        return None

    def _render_from(self, index: int) -> None:
        bar = self.verticalScrollBar()
        following = bar.value() >= bar.maximum() - 4  # keep the end in view, if it was
        colours = self._colours()
        regenerate = self._regenerable()
        cursor = Cursor(self.document())
        cursor.beginEditBlock()  # one layout pass for the whole change
        if index < len(self._starts):
            cursor.setPosition(self._starts[index])
            cursor.movePosition(Cursor.MoveOperation.End, Cursor.MoveMode.KeepAnchor)
            cursor.removeSelectedText()
        del self._starts[index:]
        for position in range(index, len(self._items)):
            item = self._items[position]
            self._starts.append(cursor.position())
            _open_block(cursor, top_margin(item))
            cursor.insertHtml(item_html(item, colours, position == regenerate))
        cursor.endEditBlock()
        if following:
            bar.setValue(bar.maximum())

    def _colours(self) -> Colours:
        return DARK if self._is_dark() else LIGHT

    def _is_dark(self) -> bool:
        return is_dark(self.palette())

    def changeEvent(self, event: QEvent) -> None:
        """A theme switch re-renders everything in the new colours (code styles included)."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._dark != self._is_dark():
            self._dark = self._is_dark()
            self._render_from(0)

    # -- links ----------------------------------------------------------------------------------

    def _on_anchor(self, url: QUrl) -> None:
        """Our actions; a cited file; an http(s) link in the browser. Nothing else is followed."""
        if url.scheme() == ACTION_SCHEME:
            self._on_action(url.path())
        elif url.isLocalFile():
            if url.toLocalFile() in self._source_paths():
                QDesktopServices.openUrl(url)
        elif safe_link(url.toString()):
            QDesktopServices.openUrl(url)

    def _on_action(self, path: str) -> None:
        action, _, rest = path.partition("/")
        if action in ACTIONS and rest:
            self.action_requested.emit(action, rest)
        elif action == "copy":
            reply = self._reply(rest)
            if reply is not None:
                QGuiApplication.clipboard().setText(reply.markdown)
        elif action == "copy-code":
            key, _, number = rest.rpartition("/")
            reply = self._reply(key)
            if reply is not None and number.isdigit() and int(number) < len(reply.code):
                QGuiApplication.clipboard().setText(reply.code[int(number)])

    def _reply(self, key: str) -> ReplyItem | None:
        return next((i for i in self._items if isinstance(i, ReplyItem) and i.key == key), None)

    def _source_paths(self) -> set[str]:
        return {
            path for item in self._items if isinstance(item, FooterItem) for _, path in item.sources
        }


def _open_block(cursor: Cursor, margin: int) -> None:
    """Start an item on a block of its own (reusing the empty one a table leaves behind), with
    plain formats: a new block would otherwise inherit the list or heading it follows."""
    block = QTextBlockFormat()
    block.setTopMargin(margin)
    if cursor.position() == 0 or cursor.block().length() == 1:
        cursor.setBlockFormat(block)
        cursor.setBlockCharFormat(QTextCharFormat())
    else:
        cursor.insertBlock(block, QTextCharFormat())


def footer_for(message: StoredMessage) -> str:
    if message.finish_reason == "no_sources":
        return ""  # answered without the model: the reply itself says nothing matched
    t = message.timings
    return (
        f"{t.completion_tokens} tokens · {t.decode_tokens_per_s:.1f} tokens/s · "
        f"first token {t.ttft_ms / 1000:.2f} s"
        + (" · stopped" if message.finish_reason == "cancelled" else "")
    )


def source_links(message: StoredMessage) -> list[tuple[str, str]]:
    """(label, path) of each document excerpt the reply was given, as "[1] lease.pdf, p. 3"."""
    links = []
    for stored in message.sources:
        path = str(stored.get("path", ""))
        source = Source(int(stored.get("number", 0)), path, str(stored.get("place", "")), "", 0.0)
        links.append((source.label(), path))
    return links
