"""The conversation transcript: replies rendered as Markdown, with code blocks that copy and links
for each message's actions.

The view keeps its content as a list of items (:mod:`app.ui.transcript_items`) and the document
position where each one starts. Content only changes at the end, so re-rendering "from item i to the
end" is enough for everything: a streaming reply (re-rendered whole on a ~40 ms timer, never per
token), a finished turn getting its message ids, the last reply's Regenerate link moving on, and a
theme switch (from the first item). The exception is a stored conversation being shown: its earlier
messages arrive above the later ones (:mod:`app.ui.transcript_load`).

(Over 400 lines: the view's item bookkeeping is one piece; the rendering, loading and link pieces
live in their own modules.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from PySide6.QtCore import QEvent, Qt, QTimer, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication, QPainter, QPaintEvent, QPalette
from PySide6.QtGui import QTextCursor as Cursor
from PySide6.QtWidgets import QTextBrowser, QWidget

from app.core.documents.passage import Citation
from app.core.storage import StoredMessage
from app.core.tasks import ReplyTidier
from app.ui.live_reply import LiveRender, insert_html, insert_joined
from app.ui.markdown_html import DARK, LIGHT, Blocks, Colours, safe_link
from app.ui.runner import JobRunner
from app.ui.theme import is_dark
from app.ui.transcript_items import (
    ACTION_SCHEME,
    FooterItem,
    Item,
    NoteItem,
    ReplyItem,
    UserItem,
    copy_code_href,
    item_html,
    reply_header,
    reply_header_html,
    user_header,
)
from app.ui.transcript_jobs import (
    ReplyCheck,
    log_bug,
    log_warm_up_failure,
    warm_up_job,
)
from app.ui.transcript_load import (
    Loader,
    Loading,
    conversation_items,
    footer_for,
    insert_above,
    regenerable,
    remove_anchor,
    source_links,
)

__all__ = ["TranscriptView", "footer_for", "source_links"]

FLUSH_INTERVAL_MS = 40
WARM_UP_DELAY_MS = 500  # after start-up, not competing with it
EMPTY_CHAT = (
    "Ask anything. Replies are written on this computer, offline.\n\n"
    "Each message goes to the best installed specialist; the picker above can pin one. The "
    "built-in Starter answers right away. Specialists… adds models for code, maths, medicine and "
    "law, and says which fit this computer.\n\n"
    "To answer from your own files, add a folder under Documents… and pick its collection above."
)
ACTIONS = ("edit", "regenerate", "route")  # emitted as action_requested(action, message_id)


class TranscriptView(QTextBrowser):
    action_requested = Signal(str, str)  # (action, message_id)
    source_requested = Signal(object)  # a Citation: one of the replies' sources was clicked
    reply_checked = Signal(int)  # a finished reply reads as its whole render: pieces repainted
    conversation_shown = Signal()  # all of a stored conversation is in (see show_conversation)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(False)
        self.setOpenLinks(False)  # every link is handled by _on_anchor; the transcript stays put
        self.anchorClicked.connect(self._on_anchor)
        self.document().setUndoRedoEnabled(False)
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
        self._painter = LiveRender(lambda n: "")
        self._checks: list[ReplyCheck] = []  # finished replies being rendered whole
        self._load: Loading | None = None  # a stored conversation still arriving
        self._dark = self._is_dark()
        self._renders = JobRunner("transcript", max_threads=1, parent=self)
        self._loader = Loader(self, self._renders, self._insert_earlier, self._finish_load)
        QTimer.singleShot(WARM_UP_DELAY_MS, self, self._warm_up)

    def _warm_up(self) -> None:
        self._renders.start(warm_up_job, failed=log_warm_up_failure)

    # -- a live turn ----------------------------------------------------------------------------

    def add_user(self, text: str) -> None:
        self._turn_start = len(self._items)
        self._append(UserItem(text))

    def begin_reply(self, speaker: str) -> None:
        self.reply_text = ""
        self._tidy = ReplyTidier()
        self._replies += 1
        self._live = ReplyItem(f"live-{self._replies}", speaker)
        key = self._live.key
        self._painter = LiveRender(lambda n: copy_code_href(key, n))
        self._append(self._live)
        self._timer.start()

    def add_reply_text(self, text: str) -> None:
        self._pending.append(text)

    def flush(self) -> None:
        """Paint what arrived since the last flush: the live reply's tail, re-rendered."""
        if not self._pending:
            return
        text = self._tidy.feed("".join(self._pending))
        self._pending.clear()
        self.reply_text += text
        live = self._live
        if not text or live is None or live not in self._items:
            return
        live.markdown = self.reply_text
        if self._items[-1] is live:
            with self._following():
                self._painter.update(self.document(), live.markdown, self._colours())
            live.code = self._painter.code
        else:  # something was added after it: paint it and what follows afresh
            self._render_from(self._items.index(live))

    def add_note(self, text: str) -> None:
        """A small grey line: why the reply went where it went."""
        self._append(NoteItem(text))

    def end_reply(self, footer: str, sources: Sequence[tuple[str, str]] = ()) -> None:
        """The live reply's footer: its sources, Copy, and ``footer`` (figures, or "Stopped.")."""
        self.flush()
        self._timer.stop()
        live, self._live = self._live, None
        self._append(FooterItem(live, footer, tuple(sources)))
        if live is not None and live.markdown:
            self._check_whole(live)

    def _check_whole(self, reply: ReplyItem) -> None:
        """Render the finished reply whole, off the GUI thread, then repaint the pieces that
        streaming painted otherwise (usually none): it then reads as it will when reopened."""
        check = ReplyCheck(reply, self._painter)
        self._checks.append(check)
        self._renders.start(
            check.job(self._colours()),
            succeeded=lambda whole: self._repair(check, whole),
            failed=log_bug,
        )

    def _repair(self, check: ReplyCheck, whole: Blocks) -> None:
        """Unless the user has moved on and the reply was painted afresh or is gone."""
        if check in self._checks:
            check.reply.code = whole.code
            check.stretches = check.painter.differences(whole)
            check.repainted = len(check.stretches)
            self._repaint(check)

    def _repaint(self, check: ReplyCheck) -> None:
        """One stretch a turn of the event loop: Qt lays the document out again after each
        change (~3 ms in a long transcript), so many in one go would stall the window."""
        if check not in self._checks:
            return
        if not check.stretches:
            self._checks.remove(check)
            self.reply_checked.emit(check.repainted)
            return
        index = next(n for n, item in enumerate(self._items) if item is check.reply)
        start = self._starts[index]
        header = self.document().findBlock(start + 1 if start else 0)
        check.painter.origin = header.position() + header.length() - 1  # where the body starts
        end = self.document().characterCount() - 1
        if index + 1 < len(self._starts):
            end = self._starts[index + 1]
        before = self.document().characterCount()
        with self._following():
            check.painter.replace(self.document(), check.stretches.pop(), end)
        self._shift(index + 1, self.document().characterCount() - before)
        QTimer.singleShot(0, self, lambda: self._repaint(check))

    def finish_turn(
        self, user: StoredMessage, reply: StoredMessage | None, speaker: Callable[[str], str]
    ) -> None:
        """Give the live turn its stored ids, so its links work: the user's Edit, the reply's
        chip and Regenerate. What is already painted stays, unless the stored text differs."""
        start, self._turn_start = self._turn_start, None
        if start is None or not isinstance(self._items[start], UserItem):
            return
        self._items[start] = asked = UserItem(user.content, user.id)
        self._swap_header(start, user_header(asked, self._colours()))
        if reply is None:
            return
        footer = FooterItem(None, footer_for(reply), tuple(source_links(reply)))
        index = self._last_reply()
        live = self._items[index] if index is not None and index > start else None
        if not isinstance(live, ReplyItem) or live.markdown != reply.content:
            notes = [item for item in self._items[start:] if isinstance(item, NoteItem)]
            footer.reply = ReplyItem(reply.id, speaker(reply.specialist_id), reply.content)
            footer.reply.message_id, footer.reply.route = reply.id, reply.route
            self._items[start + 1 :] = [*notes, footer.reply, footer]
            self._render_from(start + 1)
            return
        live.message_id, live.route = reply.id, reply.route
        live.speaker = speaker(reply.specialist_id)
        self._swap_header(self._items.index(live), reply_header(live, self._colours()))
        footer.reply = live
        self._items[self._items.index(live) + 1 :] = [footer]
        self._render_from(len(self._items) - 1)

    def _last_reply(self) -> int | None:
        indexes = [i for i, item in enumerate(self._items) if isinstance(item, ReplyItem)]
        return indexes[-1] if indexes else None

    # -- whole conversations --------------------------------------------------------------------

    def show_conversation(
        self,
        messages: Sequence[StoredMessage],
        speaker: Callable[[str], str],
        earlier: Callable[[], Sequence[StoredMessage]] | None = None,
    ) -> None:
        """Replace the transcript with a stored conversation, as it looked when it was live:
        routing notes, replies named by ``speaker(specialist_id)``, sources and footers. Its end
        shows at once; the earlier messages of a long one arrive above it, rendered off the GUI
        thread (:mod:`app.ui.transcript_load`), and ``conversation_shown`` says when all are in.
        ``messages`` may be the latest only: ``earlier()`` (on a worker thread) reads the rest."""
        self.clear()
        items = conversation_items(messages, speaker)
        index = regenerable(items)  # the same as over all: the last message decides
        load = self._load = Loading(items, None if index is None else items[index])
        if earlier is not None:
            load.earlier = lambda: conversation_items(earlier(), speaker)
        colours = self._colours()
        for item in reversed(items[len(items) - load.tail_length() :]):
            load.rendered.append((item, item_html(item, colours, item is load.regenerate)))
        self._insert_earlier(load)
        if load.waiting or load.earlier is not None:
            self._loader.start(load, colours)
        else:
            self._finish_load(load)

    def _insert_earlier(self, load: Loading, until: float | None = None) -> None:
        """Insert the items rendered, each above those shown, until the time ``until``."""
        with self._keeping_place():
            inserted = insert_above(self.document(), load, until)
        for item, size in inserted:
            self._shift(0, size)
            self._items.insert(0, item)
            self._starts.insert(0, 0)  # the anchor's end
        if self._turn_start is not None:
            self._turn_start += len(inserted)

    def _finish_load(self, load: Loading) -> None:
        """All is in: the anchor goes, and the items after the first move up by its line."""
        if self._items:  # load is self._load: a load moved on from is cancelled
            with self._keeping_place():
                remove_anchor(self.document())
            self._shift(1, -1)
        self._load = None
        self.conversation_shown.emit()

    def clear(self) -> None:
        if self._load is not None:
            self._load.cancel()
            self._load = None
        self._checks.clear()
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
        return regenerable(self._items)

    def _render_from(self, index: int) -> None:
        """Replace items ``index``.. in the document (everything after them is theirs)."""
        colours = self._colours()
        regenerate = self._regenerable()
        kept = self._items[:index]  # a reply after these is painted afresh here, whole, or gone
        self._checks = [check for check in self._checks if check.reply in kept]
        cursor = Cursor(self.document())
        with self._following():
            cursor.beginEditBlock()  # one layout pass for the whole change
            if index < len(self._starts):
                cursor.setPosition(self._starts[index])
                cursor.movePosition(Cursor.MoveOperation.End, Cursor.MoveMode.KeepAnchor)
                cursor.removeSelectedText()
            cursor.movePosition(Cursor.MoveOperation.End)
            del self._starts[index:]
            for position in range(index, len(self._items)):
                item = self._items[position]
                self._starts.append(cursor.position())
                if item is self._live:  # painted in pieces, so that flushes replace only its tail
                    insert_html(cursor, reply_header_html(item, colours))
                    self._painter.insert(cursor, item.markdown, colours)
                    item.code = self._painter.code
                else:
                    insert = insert_joined if self._load is not None else insert_html
                    insert(cursor, item_html(item, colours, position == regenerate))  # anchored
            cursor.endEditBlock()

    def _swap_header(self, index: int, header: str) -> None:
        """Replace the first line of item ``index`` (its header) with ``header``, in place. (Qt
        drops the format of the document's first block when all of its text is replaced.)"""
        start = self._starts[index]
        block = self.document().findBlock(start + 1 if start else 0)
        block_format = block.blockFormat()
        cursor = Cursor(block)
        cursor.movePosition(Cursor.MoveOperation.EndOfBlock, Cursor.MoveMode.KeepAnchor)
        before = self.document().characterCount()
        cursor.insertHtml(header)
        cursor.setBlockFormat(block_format)
        self._shift(index + 1, self.document().characterCount() - before)

    def _shift(self, index: int, by: int) -> None:
        """Items ``index``.. moved by ``by`` characters (something before them changed size)."""
        self._starts[index:] = [position + by for position in self._starts[index:]]
        if self._live is not None:
            self._painter.origin += by

    @contextmanager
    def _keeping_place(self) -> Iterator[None]:
        """Keep what is in view in view while items are inserted above it (the end, if the end
        was in view)."""
        bar = self.verticalScrollBar()
        from_bottom = bar.maximum() - bar.value()
        yield
        bar.setValue(bar.maximum() - from_bottom)

    @contextmanager
    def _following(self) -> Iterator[None]:
        """Keep the end of the transcript in view while it changes, if it was in view."""
        bar = self.verticalScrollBar()
        following = bar.value() >= bar.maximum() - 4
        yield
        if following:
            bar.setValue(bar.maximum())

    def _colours(self) -> Colours:
        return DARK if self._is_dark() else LIGHT

    def _is_dark(self) -> bool:
        return is_dark(self.palette())

    def paintEvent(self, event: QPaintEvent) -> None:
        """An empty chat explains itself. (Qt's placeholder text shows only its first line.)"""
        super().paintEvent(event)
        if not self.document().isEmpty():
            return
        painter = QPainter(self.viewport())
        painter.setPen(self.palette().color(QPalette.ColorRole.PlaceholderText))
        margin = round(self.document().documentMargin())
        area = self.viewport().rect().adjusted(margin, margin, -margin, -margin)
        flags = Qt.AlignmentFlag.AlignTop | Qt.TextFlag.TextWordWrap
        painter.drawText(area, int(flags), EMPTY_CHAT)
        painter.end()

    def changeEvent(self, event: QEvent) -> None:
        """A theme switch re-renders everything in the new colours (code styles included)."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange and self._dark != self._is_dark():
            self._dark = self._is_dark()
            self._render_from(0)
            load = self._load
            if load is not None:  # what is still to come, in the new colours
                load.cancel()
                self._load = Loading(load.waiting, load.regenerate, earlier=load.earlier)
                self._loader.start(self._load, self._colours())

    # -- links ----------------------------------------------------------------------------------

    def _on_anchor(self, url: QUrl) -> None:
        """Our actions; a cited file (to the window's source viewer, at the place its link's
        fragment names); an http(s) link in the browser. Nothing else is followed."""
        if url.scheme() == ACTION_SCHEME:
            self._on_action(url.path())
        elif url.isLocalFile():
            path = url.toLocalFile()
            if path in self._source_paths():
                fragment = url.fragment(QUrl.ComponentFormattingOption.FullyEncoded)
                self.source_requested.emit(Citation.from_query(path, fragment))
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
        """The files the replies cite: only these open from a link."""
        footers = (item for item in self._items if isinstance(item, FooterItem))
        return {QUrl(link).toLocalFile() for footer in footers for _, link in footer.sources}
