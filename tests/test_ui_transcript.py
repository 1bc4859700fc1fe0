"""The transcript with pytest-qt: Markdown and code rendering, links that may and may not open,
copying code and replies, streaming, and the per-message actions (real stored messages)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from PySide6.QtCore import QObject, Qt, QUrl, Slot
from PySide6.QtGui import (
    QDesktopServices,
    QGuiApplication,
    QTextBlock,
    QTextCharFormat,
    QTextCursor,
)
from pytestqt.qtbot import QtBot

from app.core.documents.passage import Citation
from app.core.service import CadreService
from app.core.storage import StoredMessage
from app.core.storage.conversations import RouteRecord
from app.ui.markdown_html import DARK, LIGHT, Colours
from app.ui.theme import palette_for
from app.ui.transcript import TranscriptView
from tests.ui_helpers import shown_transcript

CODE = 'def greet(name: str) -> str:\n    """Say hello."""\n\n    return f"hi {name}"'
REPLY = f"""Use **bold** words.

- first
- second

| key | value |
|-----|------:|
| a   | 1     |

```python
{CODE}
```

Raw <b>html</b> <script>alert(1)</script> stays text.
[web](https://example.com/page) [js](javascript:alert(1)) [file](file:///etc/passwd) \
[ours](cadre:edit/abc) ![pic](file:///tmp/x.png) ![remote](https://example.com/a.png)
"""
ROUTED = RouteRecord("tiny", "code", 0.82, "general", "code (82%)")
PICKED = RouteRecord("tiny", "general", 1.0, "", "chosen by you (@tiny)", forced=True)


@pytest.fixture
def view(qtbot: QtBot) -> Iterator[TranscriptView]:
    yield shown_transcript(qtbot)


@pytest.fixture
def stored(service: CadreService) -> list[StoredMessage]:
    """Two turns in a real conversation store: the first routed, the second picked."""
    store = service.conversations
    conversation = store.create("tiny")
    return [
        store.add_message(conversation.id, "user", "Show me code", "tiny"),
        store.add_message(conversation.id, "assistant", REPLY, "tiny", route=ROUTED),
        store.add_message(conversation.id, "user", "Thanks", "tiny"),
        store.add_message(conversation.id, "assistant", "You're welcome.", "tiny", route=PICKED),
    ]


class Opened(QObject):
    """Receives what QDesktopServices.openUrl is asked to open, per scheme."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url.toString())


@pytest.fixture
def opened() -> Iterator[Opened]:
    receiver = Opened()
    schemes = ("http", "https", "file", "javascript")
    for scheme in schemes:
        QDesktopServices.setUrlHandler(scheme, receiver, "open")
    yield receiver
    for scheme in schemes:
        QDesktopServices.unsetUrlHandler(scheme)


def anchors(view: TranscriptView) -> dict[str, list[int]]:
    """Each link target in the document and the positions of the links to it."""
    found: dict[str, list[int]] = {}
    block = view.document().begin()
    while block.isValid():
        iterator = block.begin()
        while not iterator.atEnd():
            fragment = iterator.fragment()
            if fragment.charFormat().isAnchor():
                href = fragment.charFormat().anchorHref()
                found.setdefault(href, []).append(fragment.position())
            iterator += 1
        block = block.next()
    return found


def click(qtbot: QtBot, view: TranscriptView, position: int) -> None:
    """Click the character after ``position`` as a user would (scrolled into view first)."""
    cursor = QTextCursor(view.document())
    cursor.setPosition(position)
    view.setTextCursor(cursor)
    view.ensureCursorVisible()
    rect = view.cursorRect(cursor)
    point = rect.center()
    point.setX(point.x() + 3)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)


def click_href(qtbot: QtBot, view: TranscriptView, href: str) -> None:
    positions = anchors(view)[href]
    assert len(positions) == 1, f"{href} appears {len(positions)} times"
    click(qtbot, view, positions[0])


def plain(view: TranscriptView) -> str:
    """The transcript's text with runs of spaces (and no-break spaces) as one space."""
    return re.sub(r"[ \xa0]+", " ", view.toPlainText())


def shading(block: QTextBlock) -> str:
    """The colour of the box a code line sits in: its frame's (see app.ui.markdown_html)."""
    frame = QTextCursor(block).currentFrame()
    assert frame is not block.document().rootFrame(), f"{block.text()!r} is not in a code box"
    return frame.frameFormat().background().color().name()


def formats_of(view: TranscriptView, text: str) -> tuple[QTextCharFormat, QTextBlock]:
    found = view.document().find(text)
    assert not found.isNull(), f"{text!r} is not in the transcript"
    cursor = QTextCursor(view.document())
    cursor.setPosition(found.selectionStart() + 1)
    return cursor.charFormat(), cursor.block()


def test_markdown_renders_bold_lists_tables_and_coloured_code(
    view: TranscriptView, stored: list[StoredMessage]
) -> None:
    view.show_conversation(stored, lambda specialist: "Tiny")
    document = view.document()
    bold, _ = formats_of(view, "bold")
    assert bold.fontWeight() >= 700
    _, item = formats_of(view, "first")
    assert item.textList() is not None
    table = QTextCursor(document.find("value")).currentTable()
    assert table is not None and table.rows() == 2 and table.columns() == 2
    keyword, line = formats_of(view, "def greet")
    assert keyword.foreground().color().name() == "#008000"
    assert shading(line) == LIGHT.code_background
    assert "python · Copy" in plain(view)


def test_raw_html_and_unsafe_links_in_a_reply_stay_text(
    qtbot: QtBot, view: TranscriptView, stored: list[StoredMessage], opened: Opened
) -> None:
    view.show_conversation(stored, lambda specialist: "Tiny")
    text = view.toPlainText()
    assert "Raw <b>html</b> <script>alert(1)</script> stays text." in text
    targets = anchors(view)
    assert "https://example.com/page" in targets
    assert not [href for href in targets if href.startswith(("javascript:", "file:"))]
    assert "cadre:edit/abc" not in targets  # the model cannot forge our actions
    assert "<img" not in view.toHtml()  # images are never loaded, local or remote
    assert "![pic](file:///tmp/x.png)" in text and "[image: remote]" in text
    view.anchorClicked.emit(QUrl("file:///etc/passwd"))  # not a cited source: not opened
    view.anchorClicked.emit(QUrl("javascript:alert(1)"))
    assert opened.urls == []
    click_href(qtbot, view, "https://example.com/page")
    assert opened.urls == ["https://example.com/page"]


def test_cited_sources_ask_for_the_viewer_and_other_files_do_not(
    qtbot: QtBot, view: TranscriptView, service: CadreService, opened: Opened
) -> None:
    store = service.conversations
    conversation = store.create("tiny")
    source = {"number": 1, "path": "/docs/lease.txt", "place": "p. 2"}  # stored before fingerprints
    question = store.add_message(conversation.id, "user", "Notice?", "tiny")
    answer = store.add_message(
        conversation.id, "assistant", "Two months [1].", "tiny", sources=(source,)
    )
    requested: list[Citation] = []
    view.source_requested.connect(requested.append)
    view.show_conversation([question, answer], lambda specialist: "Tiny")
    assert "Sources: [1] lease.txt, p. 2" in view.toPlainText()
    (link,) = [href for href in anchors(view) if href.startswith("file:")]
    click_href(qtbot, view, link)
    assert requested == [Citation("/docs/lease.txt", page=2)]
    view.anchorClicked.emit(QUrl.fromLocalFile("/docs/other.txt"))
    view.anchorClicked.emit(QUrl("file:///docs/other.txt#page=2"))
    assert len(requested) == 1 and opened.urls == []  # nothing else opens, nothing goes outside


def test_copy_puts_exactly_the_code_or_the_whole_reply_on_the_clipboard(
    qtbot: QtBot, view: TranscriptView, stored: list[StoredMessage]
) -> None:
    view.show_conversation(stored, lambda specialist: "Tiny")
    reply = stored[1]
    clipboard = QGuiApplication.clipboard()
    clipboard.clear()
    click_href(qtbot, view, f"cadre:copy-code/{reply.id}/0")
    assert clipboard.text() == CODE
    click_href(qtbot, view, f"cadre:copy/{reply.id}")
    assert clipboard.text() == REPLY


def test_actions_are_emitted_with_message_ids_and_regenerate_is_on_the_last_reply_only(
    qtbot: QtBot, view: TranscriptView, stored: list[StoredMessage]
) -> None:
    view.show_conversation(stored, lambda specialist: "Tiny")
    first_question, first_reply, second_question, last_reply = stored
    targets = anchors(view)
    assert [href for href in targets if href.startswith("cadre:regenerate/")] == [
        f"cadre:regenerate/{last_reply.id}"
    ]
    for href, expected in [
        (f"cadre:edit/{first_question.id}", ("edit", first_question.id)),
        (f"cadre:edit/{second_question.id}", ("edit", second_question.id)),
        (f"cadre:route/{first_reply.id}", ("route", first_reply.id)),
        (f"cadre:regenerate/{last_reply.id}", ("regenerate", last_reply.id)),
    ]:
        with qtbot.waitSignal(view.action_requested, timeout=2000) as emitted:
            click_href(qtbot, view, href)
        assert tuple(emitted.args) == expected


def test_the_routing_chip_shows_the_domain_and_confidence_or_picked(
    view: TranscriptView, stored: list[StoredMessage]
) -> None:
    view.show_conversation(stored, lambda specialist: "Tiny")
    text = plain(view)
    assert "Tiny Code · 82% " in text
    assert "Tiny picked " in text
    assert "code (82%)" in text  # the router's reason stays visible as a note


def test_a_streaming_unclosed_fence_renders_as_a_code_block_in_progress(
    view: TranscriptView,
) -> None:
    view.add_user("Write a function")
    view.begin_reply("Tiny")
    for piece in ["Here it is:\n\n", "```python\n", "def greet(name):\n", "    return na"]:
        view.add_reply_text(piece)
        view.flush()
    text = plain(view)
    assert "python · Copy\ndef greet(name):\n return na" in text
    keyword, line = formats_of(view, "def greet")
    assert keyword.foreground().color().name() == "#008000"
    assert shading(line) == LIGHT.code_background
    view.add_reply_text("me\n```\n\nDone.")
    view.end_reply("3 tokens")
    whole = TranscriptView()
    whole.setPalette(palette_for("light"))
    whole.add_user("Write a function")
    whole.begin_reply("Tiny")
    whole.add_reply_text(view.reply_text)
    whole.end_reply("3 tokens")
    assert view.toHtml() == whole.toHtml()  # streamed in pieces, painted as if whole
    whole.deleteLater()


def test_code_sits_inset_in_its_box_streamed_or_whole(view: TranscriptView) -> None:
    """Qt draws a block's own shading from where its text starts, so the box is a frame and its
    lines are inset: the text keeps clear of the box's edge, which lines up with the prose."""
    code = "\n".join(f"def step_{n}(x):\n    return x * {n}" for n in range(30))
    reply = f"Intro.\n\n```python\n{code}\n```\n\nBetween.\n\n```\nplain\n```\n\nEnd."
    view.add_user("Write code")
    view.begin_reply("Tiny")
    for start in range(0, len(reply), 7):  # small pieces: fences open and close mid-flush
        view.add_reply_text(reply[start : start + 7])
        view.flush()
    view.end_reply("3 tokens")
    layout = view.document().documentLayout()
    _, intro = formats_of(view, "Intro.")
    for text in ("def step_29", "plain"):
        _, line = formats_of(view, text)
        box = layout.frameBoundingRect(QTextCursor(line).currentFrame())
        assert box.left() == layout.blockBoundingRect(intro).left()
        inset = line.layout().position().x() + line.layout().lineAt(0).x()  # from the box's edge
        assert inset >= 10
    whole = TranscriptView()
    whole.setPalette(palette_for("light"))
    whole.add_user("Write code")
    whole.begin_reply("Tiny")
    whole.add_reply_text(reply)
    whole.end_reply("3 tokens")
    assert view.toHtml() == whole.toHtml()
    whole.deleteLater()


def test_finish_turn_gives_the_live_turn_its_ids(
    qtbot: QtBot, view: TranscriptView, service: CadreService
) -> None:
    store = service.conversations
    conversation = store.create("tiny")
    view.add_user("Hello")
    view.add_note("code (82%)")
    view.begin_reply("Tiny")
    view.add_reply_text("Hi **there**.")
    view.end_reply("2 tokens")
    assert not [href for href in anchors(view) if href.startswith(("cadre:edit", "cadre:regen"))]
    user = store.add_message(conversation.id, "user", "Hello", "tiny")
    reply = store.add_message(conversation.id, "assistant", "Hi **there**.", "tiny", route=ROUTED)
    view.finish_turn(user, reply, lambda specialist: "Tiny")
    targets = anchors(view)
    for href in (f"cadre:edit/{user.id}", f"cadre:route/{reply.id}"):
        assert href in targets
    assert f"cadre:regenerate/{reply.id}" in targets
    text = plain(view)
    assert text.startswith("You Edit\nHello\ncode (82%)\nTiny Code · 82% \nHi there.")
    view.add_user("Next question")  # the earlier reply is no longer the last one
    assert f"cadre:regenerate/{reply.id}" not in anchors(view)


@pytest.mark.parametrize(("scheme", "colours"), [("light", LIGHT), ("dark", DARK)])
def test_both_themes_render_code_in_their_colours(
    view: TranscriptView, stored: list[StoredMessage], scheme: str, colours: Colours
) -> None:
    other = "dark" if scheme == "light" else "light"
    view.setPalette(palette_for(other))
    view.show_conversation(stored, lambda specialist: "Tiny")
    view.setPalette(palette_for(scheme))  # a theme switch re-renders in the new colours
    _, line = formats_of(view, "def greet")
    assert shading(line) == colours.code_background
    keyword, _ = formats_of(view, "def greet")
    expected = "#008000" if scheme == "light" else "#c678dd"
    assert keyword.foreground().color().name() == expected


def _inked_rows(view: TranscriptView) -> list[int]:
    """The viewport's pixel rows that have anything drawn on them."""
    image = view.viewport().grab().toImage()
    background = image.pixelColor(image.width() - 2, image.height() - 2)
    return [
        y
        for y in range(0, image.height(), 2)
        if any(image.pixelColor(x, y) != background for x in range(0, image.width(), 3))
    ]


def test_an_empty_chat_explains_itself_in_full(view: TranscriptView) -> None:
    """All of the guidance shows, not just its first line (as Qt's placeholder text would)."""
    line = view.fontMetrics().lineSpacing()
    assert max(_inked_rows(view)) > 4 * line  # the third paragraph is drawn
    view.add_user("Hello")
    view.flush()
    assert max(_inked_rows(view)) < 4 * line  # the chat replaces it
