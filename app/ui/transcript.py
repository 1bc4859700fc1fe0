"""The conversation transcript. Streamed text is buffered and painted on a ~40 ms timer, so a fast
model cannot flood the GUI thread with one repaint per token."""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence

from PySide6.QtCore import QTimer, QUrl
from PySide6.QtGui import QDesktopServices, QTextCursor
from PySide6.QtWidgets import QTextBrowser, QWidget

from app.core.documents.grounding import Source
from app.core.storage import StoredMessage
from app.core.tasks import ReplyTidier

FLUSH_INTERVAL_MS = 40


class TranscriptView(QTextBrowser):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(False)
        self.setOpenLinks(False)  # a source link opens its file; the transcript stays put
        self.anchorClicked.connect(open_local_file)
        self.setPlaceholderText("Ask anything. Replies are written on this computer, offline.")
        self._pending: list[str] = []
        self._timer = QTimer(self)
        self._timer.setInterval(FLUSH_INTERVAL_MS)
        self._timer.timeout.connect(self.flush)
        self.reply_text = ""
        self._tidy = ReplyTidier()

    def add_user(self, text: str) -> None:
        self._append_block("You", text, "#3b6fd8")

    def begin_reply(self, speaker: str) -> None:
        self.reply_text = ""
        self._tidy = ReplyTidier()
        self._append_block(speaker, "", "#2f8f5b")
        self._timer.start()

    def add_reply_text(self, text: str) -> None:
        self._pending.append(text)

    def flush(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        text = self._tidy.feed(text)
        self.reply_text += text
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        self.ensureCursorVisible()

    def add_note(self, text: str) -> None:
        """A small grey line: why the reply went where it went."""
        self.append(f'<p style="color:#888; font-size:small">{html.escape(text)}</p>')

    def add_sources(self, sources: Sequence[tuple[str, str]]) -> None:
        """A grey line under a grounded reply: each (label, path) links to its file."""
        links = " · ".join(
            f'<a href="{html.escape(QUrl.fromLocalFile(path).toString())}">{html.escape(label)}</a>'
            for label, path in sources
        )
        self.append(f'<p style="color:#888; font-size:small">Sources: {links}</p>')

    def end_reply(self, footer: str, sources: Sequence[tuple[str, str]] = ()) -> None:
        self.flush()
        self._timer.stop()
        if sources:
            self.add_sources(sources)
        if footer:
            self.add_note(footer)

    def show_conversation(
        self, messages: Sequence[StoredMessage], speaker: Callable[[str], str]
    ) -> None:
        """Replace the transcript with a stored conversation, as it looked when it was live:
        routing notes, replies named by ``speaker(specialist_id)``, sources and footers."""
        self._timer.stop()
        self._pending.clear()
        self.clear()
        self.reply_text = ""
        for message in messages:
            if message.role == "user":
                self.add_user(message.content)
                continue
            if message.route is not None and message.route.reason:
                self.add_note(message.route.reason)
            self._append_block(speaker(message.specialist_id), message.content, "#2f8f5b")
            self.end_reply(footer_for(message), source_links(message))

    def _append_block(self, speaker: str, text: str, colour: str) -> None:
        body = html.escape(text).replace("\n", "<br>")
        self.append(f'<p><b style="color:{colour}">{html.escape(speaker)}</b><br>{body}</p>')


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


def open_local_file(url: QUrl) -> None:
    """Open a cited file in the system's viewer; other links are not followed."""
    if url.isLocalFile():
        QDesktopServices.openUrl(url)
