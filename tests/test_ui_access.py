"""Keyboard and screen-reader access: Tab walks each window in the order it is laid out, every stop
is an enabled control a screen reader can name, Escape closes the dialogs, and a reply's links
(Edit, the routing chip, Copy, a source) are reached and followed from the keyboard."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QMenu, QWidget
from pytestqt.qtbot import QtBot

from app.core.documents.passage import fingerprint
from app.core.service import CadreService
from app.core.storage.conversations import MessageTimings, RouteRecord
from app.ui.access import accessible_name, control, describe, unnamed_controls
from app.ui.chat_window import ChatWindow
from app.ui.settings_dialog import SettingsDialog
from tests.ui_helpers import shown_window

QUESTION = "How do I sum a column of a CSV file?"
ANSWER = "Use the csv module:\n\n```python\nimport csv\n```\n\nThat is all."
NOTES = "line one\nline two\nthe cited line\nline four\n"
ROUTE = RouteRecord("starter", "code", 0.82, "general", "Routed to Starter: a code question")


@pytest.fixture
def service(cadre_home: Path, tmp_path: Path) -> CadreService:
    """A stored conversation (a routed reply with a code block and a source) and a collection
    of documents, not indexed yet."""
    service = CadreService()
    notes = tmp_path / "notes.txt"
    notes.write_text(NOTES)
    source = {
        "number": 1,
        "path": str(notes),
        "place": "line 3",
        "line_start": 3,
        "line_end": 3,
        "fingerprint": fingerprint("the cited line"),
    }
    store = service.conversations
    chat = store.create("starter")
    store.add_message(chat.id, "user", QUESTION, "starter")
    timings = MessageTimings(12, 0, 20, 150.0, 30.0, 700.0)
    store.add_message(
        chat.id, "assistant", ANSWER, "starter", route=ROUTE, timings=timings, sources=(source,)
    )
    service.documents.add("Library", [tmp_path])
    return service


@pytest.fixture
def window(qtbot: QtBot, service: CadreService) -> Iterator[ChatWindow]:
    """The chat window on ``service``, active; the window closes the service afterwards."""
    with shown_window(qtbot, service) as shown:
        shown.activateWindow()
        qtbot.waitUntil(lambda: shown.conversation_list.list.count() == 1)
        yield shown


def walk(qtbot: QtBot, window: QWidget, limit: int = 80) -> list[QWidget]:
    """Press Tab from the focused control until the focus comes back to it: the controls it
    stopped on, in order (a control that keeps the focus for a few presses counts once)."""
    window.activateWindow()  # an active window gives its first control the focus
    qtbot.waitUntil(lambda: window.focusWidget() is not None)
    start = window.focusWidget()
    assert start is not None
    stops = [start]
    for _ in range(limit):
        focused = window.focusWidget()
        assert focused is not None
        qtbot.keyClick(focused, Qt.Key.Key_Tab)
        now = window.focusWidget()
        if now is start:
            return [control(stop) for stop in stops]
        if now is not stops[-1]:
            stops.append(now)
    raise AssertionError(f"Tab never came back: {[describe(s) for s in stops]}")


def assert_named_stops(stops: list[QWidget], expected: list[str]) -> None:
    """Each stop is enabled, named, and the names come in the order of the layout."""
    for stop in stops:
        assert stop.isEnabled() and accessible_name(stop), describe(stop)
    assert [accessible_name(stop) for stop in stops] == expected


def open_reply(window: ChatWindow) -> None:
    conversation = window.controller.conversation_id or ""
    if not conversation:
        item = window.conversation_list.list.item(0)
        conversation = str(item.data(Qt.ItemDataRole.UserRole))
    window.open_conversation(conversation)


def test_the_chat_window_opens_in_the_message_box(window: ChatWindow) -> None:
    assert window.focusWidget() is window.input
    assert accessible_name(window.input) == "Message"


def test_tab_walks_the_chat_window_in_layout_order(qtbot: QtBot, window: ChatWindow) -> None:
    stops = walk(qtbot, window)
    assert_named_stops(
        stops,
        [
            "Message",
            "Send",
            "Search all messages",
            "Conversations",
            "Import…",
            "Specialist:",
            "Documents:",
            "New chat",
            "Specialists…",
            "Documents…",
            "Conversation",
        ],
    )


def test_alt_keys_reach_the_pickers(qtbot: QtBot, window: ChatWindow) -> None:
    qtbot.keyClick(window.input, Qt.Key.Key_S, Qt.KeyboardModifier.AltModifier)
    assert window.focusWidget() is window.specialists
    qtbot.keyClick(window.specialists, Qt.Key.Key_O, Qt.KeyboardModifier.AltModifier)
    assert window.focusWidget() is window.collections


def tab_to_link(qtbot: QtBot, window: ChatWindow, prefix: str) -> str:
    """Tab through the transcript's links to the first whose address starts with ``prefix``."""
    view = window.transcript
    view.setFocus()
    view.moveCursor(QTextCursor.MoveOperation.Start)  # from the first link again
    for _ in range(12):
        qtbot.keyClick(view, Qt.Key.Key_Tab)
        href = view.textCursor().charFormat().anchorHref()
        if window.focusWidget() is view and href.startswith(prefix):
            return href
    raise AssertionError(f"no link {prefix!r} reached by Tab")


def test_tab_reaches_each_link_of_a_reply_then_leaves_the_transcript(
    qtbot: QtBot, window: ChatWindow
) -> None:
    open_reply(window)
    view = window.transcript
    view.setFocus()
    links = []
    while True:
        qtbot.keyClick(view, Qt.Key.Key_Tab)
        if window.focusWidget() is not view:
            break
        links.append(view.textCursor().selectedText().strip("\xa0 "))
    assert links == ["Edit", "Code · 82%", "Copy", "[1] notes.txt, line 3", "Copy", "Regenerate"]
    assert window.focusWidget() is window.input


def test_enter_follows_copy_edit_and_a_source(qtbot: QtBot, window: ChatWindow) -> None:
    open_reply(window)
    tab_to_link(qtbot, window, "cadre:copy/")
    qtbot.keyClick(window.transcript, Qt.Key.Key_Return)
    assert QApplication.clipboard().text() == ANSWER
    tab_to_link(qtbot, window, "cadre:edit/")
    qtbot.keyClick(window.transcript, Qt.Key.Key_Return)
    assert window.input.toPlainText() == QUESTION and window.edit_banner.isVisible()
    assert window.focusWidget() is window.input
    qtbot.keyClick(window.input, Qt.Key.Key_Escape)  # cancels the edit
    assert not window.edit_banner.isVisible()
    tab_to_link(qtbot, window, "file:")
    qtbot.keyClick(window.transcript, Qt.Key.Key_Return)
    viewer = window.source_viewer
    qtbot.waitUntil(lambda: viewer.highlighted_text() == "the cited line")
    assert viewer.isVisible()
    qtbot.keyClick(viewer.text, Qt.Key.Key_Escape)
    assert not viewer.isVisible()


def test_the_routing_chip_opens_its_menu_under_the_chip(qtbot: QtBot, window: ChatWindow) -> None:
    open_reply(window)
    tab_to_link(qtbot, window, "cadre:route/")
    view = window.transcript
    chip = view.cursorRect(view.textCursor())
    chip_at = view.viewport().mapToGlobal(chip.bottomLeft())
    shown: list[tuple[list[str], int, int]] = []

    def look_and_close() -> None:
        menu = QApplication.activePopupWidget()
        assert isinstance(menu, QMenu)
        texts = [action.text() for action in menu.actions() if action.text()]
        shown.append((texts, menu.x(), menu.y()))
        menu.close()

    QTimer.singleShot(200, look_and_close)
    qtbot.keyClick(view, Qt.Key.Key_Return)  # runs the menu until it is closed
    assert shown and shown[0][0][0] == "Answered by Starter · 82%"
    _, x, y = shown[0]
    assert abs(y - chip_at.y()) <= chip.height() and x <= chip_at.x()


def test_f2_and_delete_act_on_the_current_conversation(
    qtbot: QtBot, window: ChatWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    sidebar = window.conversation_list
    sidebar.list.setFocus()
    sidebar.list.setCurrentRow(0)
    monkeypatch.setattr(sidebar, "ask_title", lambda current: "Sums")
    qtbot.keyClick(sidebar.list, Qt.Key.Key_F2)
    assert sidebar.list.item(0).text().startswith("Sums\n")
    monkeypatch.setattr(sidebar, "confirm_delete", lambda title: title == "Sums")
    sidebar.list.setCurrentRow(0)
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Delete)
    assert sidebar.list.count() == 0


def assert_escape_closes(qtbot: QtBot, dialog: QDialog) -> None:
    focused = dialog.focusWidget() or dialog
    qtbot.keyClick(focused, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


def test_the_specialists_window_and_its_forms(qtbot: QtBot, window: ChatWindow) -> None:
    specialists = window.open_specialists()
    qtbot.waitUntil(lambda: len(specialists.cards) >= 6 and "Download Code" in names(specialists))
    stops = walk(qtbot, specialists)
    assert_named_stops(
        stops,
        [
            "Specialists",
            "Customise Starter",
            *(f"Download {name}" for name in ("Code", "General", "Legal", "Math", "Medical")),
            "Add a specialist…",
            "Close",
        ],
    )
    form = specialists.open_add_dialog()
    assert form.focusWidget() is form.repo
    hub = ["Repository:", "File:", "Revision:", "Id:", "Domain:", "Name:", "OK", "Cancel"]
    assert_named_stops(walk(qtbot, form), [*hub, "From the Hugging Face hub"])
    assert_default_and_order(form.buttons, QDialogButtonBox.StandardButton.Ok)
    assert_escape_closes(qtbot, form)
    customise = specialists.open_customise_dialog("starter")
    fields = ["Temperature:", "Top K:", "Repeat penalty:", "Top P:", "Min P:", "Max reply tokens:"]
    buttons = [accessible_name(b) for b in visual_order(customise.buttons)]
    assert_named_stops(
        walk(qtbot, customise), ["System prompt:", *fields, "Context size:", *buttons]
    )
    assert_default_and_order(customise.buttons, QDialogButtonBox.StandardButton.Save)
    assert_escape_closes(qtbot, customise)
    assert_escape_closes(qtbot, specialists)


def names(window: QWidget) -> set[str]:
    return {accessible_name(widget) for widget in window.findChildren(QWidget)}


def visual_order(box: QDialogButtonBox) -> list[QWidget]:
    return sorted(box.buttons(), key=lambda button: button.x())


def assert_default_and_order(
    box: QDialogButtonBox, default: QDialogButtonBox.StandardButton
) -> None:
    """Enter presses ``default``; Tab visits the buttons left to right, as they are shown."""
    assert box.button(default).isDefault()
    order = visual_order(box)
    for before, after in itertools.pairwise(order):
        assert before.nextInFocusChain() is after, describe(after)


def test_the_documents_window(qtbot: QtBot, window: ChatWindow) -> None:
    documents = window.open_documents()
    qtbot.waitUntil(lambda: documents.table.rowCount() == 1)
    documents.table.setFocus()
    documents.table.selectRow(0)
    qtbot.waitUntil(documents.remove_button.isEnabled)
    stops = walk(qtbot, documents)
    expected = ["Collections", "New collection…", "Add folder…", "Re-index", "Remove…"]
    assert_named_stops(stops, [*expected, "Files that could not be indexed"])
    assert_escape_closes(qtbot, documents)


def test_the_settings_dialog(qtbot: QtBot, window: ChatWindow, service: CadreService) -> None:
    dialog = SettingsDialog(service.settings, [], window, api_token="t" * 43)
    qtbot.addWidget(dialog)
    dialog.show()
    fields = ["Default specialist:", "Theme:", "Threads:", "GPU offload:", "Context size:"]
    fields += ["Memory for models:", "Data folder:", "Browse for the data folder"]
    api = ["Serve the local API (this computer only)", "Token:"]
    api += ["Show the API token", "Copy the API token"]
    buttons = [accessible_name(b) for b in visual_order(dialog.buttons)]
    assert_named_stops(walk(qtbot, dialog), [*fields, *api, *buttons])
    assert_default_and_order(dialog.buttons, QDialogButtonBox.StandardButton.Ok)
    qtbot.keyClick(dialog.focusWidget(), Qt.Key.Key_T, Qt.KeyboardModifier.AltModifier)
    assert dialog.focusWidget() is dialog.theme
    assert_escape_closes(qtbot, dialog)


def test_no_window_has_a_control_without_a_name(
    qtbot: QtBot, window: ChatWindow, service: CadreService
) -> None:
    open_reply(window)
    assert [describe(w) for w in unnamed_controls(window)] == []
    specialists = window.open_specialists()
    qtbot.waitUntil(lambda: len(specialists.cards) >= 6)
    forms: list[QWidget] = [
        specialists,
        specialists.open_add_dialog(),
        specialists.open_customise_dialog("starter"),
        window.open_documents(),
        SettingsDialog(service.settings, [], window, api_token="t" * 43),
    ]
    for form in forms:
        form.show()
        assert [describe(w) for w in unnamed_controls(form)] == [], form.windowTitle()
        form.close()
    tab_to_link(qtbot, window, "file:")
    qtbot.keyClick(window.transcript, Qt.Key.Key_Return)
    viewer = window.source_viewer
    qtbot.waitUntil(lambda: viewer.highlighted_text() != "")
    assert [describe(w) for w in unnamed_controls(viewer)] == []
