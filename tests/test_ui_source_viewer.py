"""The source viewer with pytest-qt: a click on a source link in a stored grounded conversation
opens it at the cited lines or page, highlighted; missing and changed files say so; its buttons;
light and dark colours; and the window's own wiring. Real files, a real conversation store."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices, QTextBlock, QTextFormat
from pytestqt.qtbot import QtBot

from app.core.documents.chunking import Chunk, chunk_document
from app.core.documents.extract import extract
from app.core.documents.grounding import ground
from app.core.documents.passage import CONTEXT_LINES, Citation
from app.core.documents.search import SearchHit
from app.core.documents.store import StoredChunk
from app.core.service import CadreService
from app.ui import reveal
from app.ui.chat_window import ChatWindow
from app.ui.source_viewer import CHANGED_LINES, CHANGED_TEXT, SourceViewer
from app.ui.theme import palette_for
from app.ui.transcript import TranscriptView
from tests.doc_fixtures import write_drawing_pdf, write_pdf
from tests.test_ui_transcript import Opened, anchors, click_href
from tests.ui_helpers import shown_transcript

LINE = "Line {n}: the tenant keeps the garden tidy and pays rent on day {n} of the month."


@pytest.fixture
def opened() -> Iterator[Opened]:
    receiver = Opened()
    QDesktopServices.setUrlHandler("file", receiver, "open")
    yield receiver
    QDesktopServices.unsetUrlHandler("file")


@pytest.fixture
def view(qtbot: QtBot) -> Iterator[TranscriptView]:
    yield shown_transcript(qtbot, height=500)


@pytest.fixture
def viewer(qtbot: QtBot, view: TranscriptView) -> SourceViewer:
    """Connected as the window connects it."""
    dialog = SourceViewer()
    dialog.setPalette(palette_for("light"))
    qtbot.addWidget(dialog)
    view.source_requested.connect(dialog.show_citation)
    return dialog


def stored_source(path: Path, chunk: Chunk, number: int = 1) -> dict[str, Any]:
    """The source a grounded reply stores for ``chunk`` (through ground() and its JSON)."""
    place = (chunk.page, chunk.first_line, chunk.last_line)
    hit = SearchHit(StoredChunk(number, str(path), chunk.ordinal, chunk.text, *place), 0.1, 0.9)
    (source,) = json.loads(ground("docs", [hit], budget_chars=100_000).sources_json())
    return {**source, "number": number}


def show_reply(service: CadreService, view: TranscriptView, *sources: dict[str, Any]) -> list[str]:
    """A stored grounded conversation in the transcript; the source links' targets."""
    store = service.conversations
    conversation = store.create("tiny")
    question = store.add_message(conversation.id, "user", "When is rent due?", "tiny")
    answer = store.add_message(
        conversation.id, "assistant", "On the day named [1].", "tiny", sources=sources
    )
    view.show_conversation([question, answer], lambda specialist: "Tiny")
    return [href for href in anchors(view) if href.startswith("file:")]


def lines_file(tmp_path: Path, count: int = 300) -> Path:
    path = tmp_path / "notes.md"
    path.write_text("".join(LINE.format(n=n) + "\n" for n in range(1, count + 1)))
    return path


def marked_blocks(viewer: SourceViewer) -> list[QTextBlock]:
    """The lines shown with a background: the cited ones."""
    blocks, block = [], viewer.text.document().begin()
    while block.isValid():
        if block.blockFormat().hasProperty(QTextFormat.Property.BackgroundBrush):
            blocks.append(block)
        block = block.next()
    return blocks


def read(qtbot: QtBot, viewer: SourceViewer) -> None:
    qtbot.waitUntil(lambda: viewer.message.text() != "Reading…", timeout=10_000)


def test_a_source_link_opens_the_viewer_at_the_cited_lines_highlighted(
    qtbot: QtBot, view: TranscriptView, viewer: SourceViewer, service: CadreService, tmp_path: Path
) -> None:
    notes = lines_file(tmp_path)
    chunk = next(c for c in chunk_document(extract(notes)) if (c.first_line or 0) > 150)
    assert chunk.first_line is not None and chunk.last_line is not None
    (link,) = show_reply(service, view, stored_source(notes, chunk))
    click_href(qtbot, view, link)
    assert viewer.isVisible() and viewer.message.text() == "Reading…"
    read(qtbot, viewer)
    place = f"lines {chunk.first_line}-{chunk.last_line}"
    assert viewer.title.text() == f"notes.md · {place}"
    assert viewer.path_label.text() == str(notes)
    assert viewer.message.isHidden()  # unchanged: nothing to warn about
    shown = f"{chunk.first_line - CONTEXT_LINES}-{chunk.last_line + CONTEXT_LINES}"
    assert viewer.extent.text() == f"Showing lines {shown} of 300"  # the cited ones, in context
    highlighted = viewer.highlighted_text().split("\n")
    numbers = range(chunk.first_line, chunk.last_line + 1)
    assert highlighted[0] == LINE.format(n=chunk.first_line)  # from the text, not its number
    assert highlighted[1:] == [f"{n}  {LINE.format(n=n)}" for n in numbers][1:]  # in the gutter
    marked = [block.text() for block in marked_blocks(viewer)]  # whole lines, edge to edge
    assert marked == [f"{n}  {LINE.format(n=n)}" for n in numbers]
    cursor = viewer.text.textCursor()
    assert viewer.text.verticalScrollBar().value() > 0  # scrolled down to it ...
    assert viewer.text.viewport().rect().contains(viewer.text.cursorRect(cursor))  # ... in view
    assert cursor.block().text() == f"{chunk.first_line}  {LINE.format(n=chunk.first_line)}"


def test_a_pdf_source_shows_its_page_with_the_excerpt_highlighted(
    qtbot: QtBot, view: TranscriptView, viewer: SourceViewer, service: CadreService, tmp_path: Path
) -> None:
    pages = [" ".join(LINE.format(n=n) for n in range(p * 10, p * 10 + 8)) for p in range(1, 5)]
    pdf = write_pdf(tmp_path / "lease.pdf", pages)
    chunk = next(c for c in chunk_document(extract(pdf)) if c.page == 3)
    (link,) = show_reply(service, view, stored_source(pdf, chunk))
    click_href(qtbot, view, link)
    read(qtbot, viewer)
    assert viewer.title.text() == "lease.pdf · p. 3"
    text = viewer.text.toPlainText()
    assert all(f"Page {n}" in text for n in (2, 3, 4)) and "Page 1" not in text
    assert viewer.highlighted_text() == chunk.text
    (selection,) = viewer.text.extraSelections()  # the excerpt itself, not whole lines
    assert selection.cursor.selectedText().replace("\u2029", "\n") == chunk.text
    assert viewer.extent.text() == "Showing pages 2-4 of 4"


def test_a_pdf_page_changed_since_the_reply_is_flagged_and_a_scan_says_why(
    qtbot: QtBot, view: TranscriptView, viewer: SourceViewer, service: CadreService, tmp_path: Path
) -> None:
    pages = [" ".join(LINE.format(n=n) for n in range(p * 10, p * 10 + 8)) for p in range(1, 4)]
    pdf = write_pdf(tmp_path / "lease.pdf", pages)
    chunk = next(c for c in chunk_document(extract(pdf)) if c.page == 2)
    write_pdf(pdf, [pages[0], pages[1].replace("garden", "hedge"), pages[2]])
    (link,) = show_reply(service, view, stored_source(pdf, chunk))
    click_href(qtbot, view, link)
    read(qtbot, viewer)
    assert viewer.message.isVisible() and viewer.message.text() == CHANGED_TEXT
    assert viewer.highlighted_text() == "" and "Page 2" in viewer.text.toPlainText()
    write_drawing_pdf(pdf)  # the same file name, now a scan without a text layer
    viewer.show_citation(Citation(str(pdf), page=2))
    read(qtbot, viewer)
    assert viewer.message.text() == "lease.pdf cannot be shown: no text layer (scanned PDF?)."
    assert viewer.text.isHidden() and viewer.folder_button.isEnabled()


def test_a_missing_file_says_so_and_still_offers_its_folder(
    qtbot: QtBot,
    *,
    view: TranscriptView,
    viewer: SourceViewer,
    service: CadreService,
    tmp_path: Path,
    opened: Opened,
) -> None:
    notes = lines_file(tmp_path, 20)
    source = stored_source(notes, chunk_document(extract(notes))[0])
    notes.unlink()
    (link,) = show_reply(service, view, source)
    click_href(qtbot, view, link)
    read(qtbot, viewer)
    assert viewer.message.text().startswith("notes.md is no longer in its folder.")
    assert "moved, renamed or deleted" in viewer.message.text()
    assert viewer.text.isHidden() and viewer.highlighted_text() == ""
    assert not viewer.open_button.isEnabled() and viewer.folder_button.isEnabled()
    viewer.folder_button.click()
    assert opened.urls == [QUrl.fromLocalFile(str(tmp_path)).toString()]
    viewer.show_citation(Citation(str(tmp_path / "gone" / "notes.md"), line_start=1))
    read(qtbot, viewer)
    assert "is gone too" in viewer.message.text() and not viewer.folder_button.isEnabled()


def test_a_file_changed_since_the_reply_is_flagged(
    qtbot: QtBot, view: TranscriptView, viewer: SourceViewer, service: CadreService, tmp_path: Path
) -> None:
    notes = lines_file(tmp_path, 40)
    source = stored_source(notes, chunk_document(extract(notes))[1])
    notes.write_text("A new first line.\n" + notes.read_text())
    (link,) = show_reply(service, view, source)
    click_href(qtbot, view, link)
    read(qtbot, viewer)
    assert viewer.message.isVisible() and viewer.message.text() == CHANGED_LINES
    assert viewer.highlighted_text()  # the cited lines are still shown, highlighted


def test_the_buttons_open_the_file_and_its_folder(
    qtbot: QtBot,
    viewer: SourceViewer,
    tmp_path: Path,
    opened: Opened,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Without a file manager that can select a file, Show in folder opens the folder."""
    monkeypatch.setattr(reveal, "_select", lambda path: False)  # no file manager in a test
    notes = lines_file(tmp_path, 5)
    viewer.show_citation(Citation(str(notes), line_start=2, line_end=3))
    assert not viewer.open_button.isEnabled()  # while reading
    read(qtbot, viewer)
    viewer.open_button.click()
    viewer.folder_button.click()
    expected = [QUrl.fromLocalFile(str(path)).toString() for path in (notes, tmp_path)]
    assert opened.urls == expected


def test_a_newer_click_wins_over_a_slower_older_one(
    qtbot: QtBot, viewer: SourceViewer, tmp_path: Path
) -> None:
    big = tmp_path / "big.txt"
    big.write_text("".join(LINE.format(n=n) + "\n" for n in range(1, 50_001)))
    small = lines_file(tmp_path, 5)
    viewer.show_citation(Citation(str(big), line_start=40_000))
    viewer.show_citation(Citation(str(small), line_start=4))
    read(qtbot, viewer)
    qtbot.wait(50)
    assert viewer.title.text() == "notes.md · line 4"
    assert viewer.highlighted_text() == LINE.format(n=4)
    viewer._runner.wait()
    qtbot.wait(50)  # the big file's result arrives, and is ignored
    assert viewer.highlighted_text() == LINE.format(n=4)


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_the_highlight_follows_the_theme(
    qtbot: QtBot, viewer: SourceViewer, tmp_path: Path, theme: str
) -> None:
    viewer.setPalette(palette_for("light" if theme == "dark" else "dark"))
    viewer.show_citation(Citation(str(lines_file(tmp_path, 5)), line_start=2, line_end=3))
    read(qtbot, viewer)
    viewer.setPalette(palette_for(theme))  # switched while it is open
    blocks = marked_blocks(viewer)
    assert len(blocks) == 2 and viewer.highlighted_text().endswith(LINE.format(n=3))
    text = viewer.palette().color(viewer.palette().ColorRole.Text)
    for block in blocks:
        background = block.blockFormat().background().color()
        assert (background.lightness() < 128) == (theme == "dark")
        assert abs(background.lightness() - text.lightness()) > 100  # the text stays readable


def test_the_window_opens_its_one_viewer_from_a_source_link(
    qtbot: QtBot, window_service: CadreService, tmp_path: Path
) -> None:
    notes = lines_file(tmp_path, 30)
    chunks = chunk_document(extract(notes))
    sources = [stored_source(notes, chunk, number) for number, chunk in enumerate(chunks[:2], 1)]
    store = window_service.conversations
    conversation = store.create("tiny")
    store.add_message(conversation.id, "user", "When is rent due?", "tiny")
    store.add_message(conversation.id, "assistant", "Day 3 [1][2].", "tiny", sources=sources)
    window = ChatWindow(window_service)
    qtbot.addWidget(window)
    window.show()
    window.open_conversation(conversation.id)
    links = [href for href in anchors(window.transcript) if href.startswith("file:")]
    assert len(links) == 2  # the same file, cited at two places
    for link, chunk in zip(links, chunks, strict=False):
        click_href(qtbot, window.transcript, link)
        read(qtbot, window.source_viewer)
        assert window.source_viewer.isVisible()
        assert window.source_viewer.highlighted_text().startswith(LINE.format(n=chunk.first_line))
    window.close()


@pytest.mark.skipif(sys.platform != "linux", reason="the freedesktop interface")
def test_without_a_session_bus_the_file_is_not_selected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from PySide6.QtDBus import QDBusConnection

    if QDBusConnection.sessionBus().isConnected():
        pytest.skip("a session bus is running: a file manager might open")
    notes = lines_file(tmp_path, 1)
    assert reveal._select(notes) is False
