"""The conversation sidebar, with pytest-qt: list, search (Ctrl+K), open, rename, delete, export."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QListWidget
from pytestqt.qtbot import QtBot

from app.core.embedder import Embedder
from app.core.service import CadreService
from app.core.storage.conversations import RouteRecord
from app.ui.chat_window import ChatWindow

ROUTE = RouteRecord("tiny", "general", 0.8, "starter", "Routed to Tiny: general question.")


@pytest.fixture
def service(
    tiny_specialist: str, embedder: Embedder, routing_ready: Path
) -> Iterator[CadreService]:
    service = CadreService(embedder=embedder)
    store = service.conversations
    for question, answer in [
        ("How tall is Everest?", "About 8849 metres."),
        ("Best pasta shape?", "Rigatoni holds the sauce well."),
        ("Plan a garden", "Plant tomatoes near basil."),
    ]:
        conversation = store.create("tiny")
        store.add_message(conversation.id, "user", question, "tiny")
        store.add_message(
            conversation.id,
            "assistant",
            answer,
            "tiny",
            route=ROUTE,
            sources=({"number": 1, "path": "/docs/notes.txt", "place": "p. 2"},),
        )
    yield service
    service.close()


@pytest.fixture
def window(qtbot: QtBot, service: CadreService) -> Iterator[ChatWindow]:
    win = ChatWindow(service)
    qtbot.addWidget(win)
    win.show()
    qtbot.waitExposed(win)
    yield win
    win.close()


def texts(listing: QListWidget) -> list[str]:
    return [listing.item(row).text() for row in range(listing.count())]


def click_row(qtbot: QtBot, listing: QListWidget, row: int) -> None:
    rect = listing.visualItemRect(listing.item(row))
    qtbot.mouseClick(listing.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_the_list_shows_recent_conversations(window: ChatWindow) -> None:
    titles = [text.split("\n")[0] for text in texts(window.conversation_list.list)]
    assert titles == ["Plan a garden", "Best pasta shape?", "How tall is Everest?"]


def test_ctrl_k_focuses_search(qtbot: QtBot, window: ChatWindow) -> None:
    window.activateWindow()
    window.input.setFocus()
    qtbot.waitUntil(window.input.hasFocus, timeout=5000)
    qtbot.keyClick(window.input, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)
    qtbot.waitUntil(window.conversation_list.search_box.hasFocus, timeout=5000)


def test_a_search_result_opens_its_conversation(qtbot: QtBot, window: ChatWindow) -> None:
    sidebar = window.conversation_list
    sidebar.search_box.setText("rigatoni")
    qtbot.waitUntil(lambda: sidebar.list.count() == 1, timeout=5000)
    assert "«Rigatoni»" in sidebar.list.item(0).text()
    click_row(qtbot, sidebar.list, 0)
    shown = window.transcript.toPlainText()
    assert "Best pasta shape?" in shown and "Rigatoni holds the sauce well." in shown
    assert ROUTE.reason in shown and "[1] notes.txt" in shown
    assert window.controller.conversation_id == sidebar.list.item(0).data(Qt.ItemDataRole.UserRole)
    sidebar.search_box.clear()
    qtbot.waitUntil(lambda: sidebar.list.count() == 3, timeout=5000)
    assert sidebar.list.currentItem().text().startswith("Best pasta shape?")


def test_new_chat_leaves_the_opened_conversation(qtbot: QtBot, window: ChatWindow) -> None:
    click_row(qtbot, window.conversation_list.list, 0)
    assert window.controller.conversation_id is not None
    window.new_chat()
    assert window.controller.conversation_id is None
    assert window.transcript.toPlainText() == ""
    assert window.conversation_list.list.currentItem() is None


def test_opening_a_conversation_selects_its_collection(
    qtbot: QtBot, window: ChatWindow, service: CadreService, tmp_path: Path
) -> None:
    (tmp_path / "lease.txt").write_text("The rent is due on the first day of the month.")
    service.documents.add("lease", [tmp_path])
    window.document_ops.refresh()
    qtbot.waitUntil(lambda: window.collections.findData("lease") > 0, timeout=10_000)
    grounded = service.conversations.create("tiny", collection="lease")
    service.conversations.add_message(grounded.id, "user", "When is the rent due?", "tiny")
    window.conversation_list.refresh()
    window.open_conversation(grounded.id)
    assert window.collections.currentData() == "lease"
    window.open_conversation(service.conversations.recent()[-1].id)  # one without documents
    assert window.collections.currentData() is None


def test_rename_and_delete_through_the_prompts(
    qtbot: QtBot, window: ChatWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    sidebar = window.conversation_list
    first = sidebar.list.item(0).data(Qt.ItemDataRole.UserRole)
    menu = sidebar.context_menu(first)
    assert [a.text() for a in menu.actions() if a.text()] == [
        "Rename…",
        "Delete…",
        "Export Markdown…",
        "Export JSON…",
    ]
    monkeypatch.setattr(sidebar, "ask_title", lambda current: "Vegetables")
    menu.actions()[0].trigger()
    assert sidebar.list.item(0).text().startswith("Vegetables\n")
    click_row(qtbot, sidebar.list, 0)
    monkeypatch.setattr(sidebar, "confirm_delete", lambda title: title == "Vegetables")
    sidebar.delete(first)
    assert sidebar.list.count() == 2
    assert window.controller.conversation_id is None  # the open one went: a new chat
    assert window.transcript.toPlainText() == ""


def test_export_and_import(
    qtbot: QtBot, window: ChatWindow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sidebar = window.conversation_list
    first = sidebar.list.item(0).data(Qt.ItemDataRole.UserRole)
    target = tmp_path / "garden.json"
    monkeypatch.setattr(sidebar, "ask_save_path", lambda *args: target)
    sidebar.export_json(first)
    assert json.loads(target.read_text())["format"] == "cadre-conversation"
    markdown = tmp_path / "garden.md"
    monkeypatch.setattr(sidebar, "ask_save_path", lambda *args: markdown)
    sidebar.export_markdown(first)
    assert markdown.read_text().startswith("# Plan a garden")
    monkeypatch.setattr(sidebar, "ask_open_path", lambda: target)
    sidebar.import_file()
    assert sidebar.list.count() == 4
    assert window.controller.conversation_id not in (None, first)
    assert "Plant tomatoes near basil." in window.transcript.toPlainText()


def test_a_bad_import_shows_a_clear_error(
    window: ChatWindow, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sidebar = window.conversation_list
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    errors: list[str] = []
    monkeypatch.setattr(sidebar, "ask_open_path", lambda: bad)
    monkeypatch.setattr(sidebar, "show_error", lambda exc: errors.append(exc.message))
    sidebar.import_file()
    assert errors and "not a Cadre conversation" in errors[0]
    assert sidebar.list.count() == 3
