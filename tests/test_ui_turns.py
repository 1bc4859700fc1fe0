"""Regenerate, edit and resend, and the routing chip's menu in the window, with pytest-qt, on tiny
real models and the real store."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot

from app.core import fit
from app.core.embedder import Embedder
from app.core.paths import DataPaths
from app.core.service import CadreService
from app.core.storage import StoredMessage
from app.core.tasks import CancelToken, run_job
from app.core.turns import RerunOption
from app.ui.chat_window import ChatWindow
from app.ui.route_menu import AUTOMATIC, ONLY_LAST, RERUN, option_label
from tests.conftest import SQL_QUESTION
from tests.ui_helpers import shown_window

REPLY_TIMEOUT_MS = 60_000


@pytest.fixture
def window(
    qtbot: QtBot, paths: DataPaths, tiny_coder: str, embedder: Embedder, routing_ready: Path
) -> Iterator[ChatWindow]:
    with shown_window(qtbot, CadreService(paths, embedder=embedder)) as win:
        yield win


def send(qtbot: QtBot, window: ChatWindow, text: str) -> StoredMessage:
    window.input.setPlainText(text)
    with qtbot.waitSignal(window.controller.reply_finished, timeout=REPLY_TIMEOUT_MS) as done:
        window.send()
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=5000)
    message: StoredMessage = done.args[0]
    assert message is not None
    return message


def click(qtbot: QtBot, window: ChatWindow, action: str, message_id: str) -> StoredMessage:
    """A link in the transcript (as TranscriptView emits it), and the reply it starts."""
    with qtbot.waitSignal(window.controller.reply_finished, timeout=REPLY_TIMEOUT_MS) as done:
        window.transcript.action_requested.emit(action, message_id)
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=5000)
    message: StoredMessage = done.args[0]
    assert message is not None
    return message


def stored(window: ChatWindow) -> list[StoredMessage]:
    conversation_id = window.controller.conversation_id
    assert conversation_id is not None
    return window._service.conversations.messages(conversation_id)


def test_regenerate_replaces_the_last_reply_in_store_and_view(
    qtbot: QtBot, window: ChatWindow
) -> None:
    first = send(qtbot, window, "hello world")
    assert f"cadre:regenerate/{first.id}" in window.transcript.toHtml()
    again = click(qtbot, window, "regenerate", first.id)
    assert [m.id for m in stored(window)][1:] == [again.id] and again.id != first.id
    assert stored(window)[0].content == "hello world"
    page = window.transcript.toHtml()
    assert f"cadre:regenerate/{again.id}" in page and first.id not in page
    assert window.transcript.toPlainText().count("hello world") == 1


def test_a_regenerate_stopped_before_any_text_shows_the_earlier_reply_again(
    qtbot: QtBot, window: ChatWindow
) -> None:
    first = send(qtbot, window, "hello world")
    turns = window._service.turns
    conversation_id = window.controller.conversation_id
    assert conversation_id is not None
    retry = turns.drop_reply(conversation_id, first.id)
    window.controller.rewound.emit(retry.question)  # the view as the controller leaves it
    stopped = CancelToken()
    stopped.cancel()
    assert run_job(turns.answer_again(retry, stopped)) is None
    window.controller.reply_finished.emit(None)
    assert [m.content for m in stored(window)] == ["hello world", first.content]
    assert window.transcript.toPlainText().count(first.content) == 1
    assert "Stopped" not in window.transcript.toPlainText()
    assert window.statusBar().currentMessage() == "Stopped: the earlier reply is kept."


def test_nothing_is_regenerated_while_a_reply_streams(qtbot: QtBot, window: ChatWindow) -> None:
    first = send(qtbot, window, "hello world")
    window.input.setPlainText("and another")
    with qtbot.waitSignal(window.controller.reply_finished, timeout=REPLY_TIMEOUT_MS):
        window.send()
        assert window.controller.busy
        assert not window.controller.regenerate(first.id)
        window.transcript.action_requested.emit("regenerate", first.id)
        assert "Wait for the reply" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=5000)
    assert first.id in [m.id for m in stored(window)]


def test_edit_and_resend_replaces_the_message_and_what_followed(
    qtbot: QtBot, window: ChatWindow
) -> None:
    send(qtbot, window, "first question")
    send(qtbot, window, "second question")
    first_question = stored(window)[0]
    window.transcript.action_requested.emit("edit", first_question.id)
    assert window.input.toPlainText() == "first question"
    assert window.edit_banner.isVisible()
    window.input.setPlainText("first question, put better")
    reply = send(qtbot, window, "first question, put better")
    assert not window.edit_banner.isVisible()
    messages = stored(window)
    assert [(m.role, m.content) for m in messages] == [
        ("user", "first question, put better"),
        ("assistant", reply.content),
    ]
    shown = window.transcript.toPlainText()
    assert "first question, put better" in shown and "second question" not in shown
    assert f"cadre:edit/{messages[0].id}" in window.transcript.toHtml()


def test_escape_cancels_an_edit(qtbot: QtBot, window: ChatWindow) -> None:
    send(qtbot, window, "first question")
    question = stored(window)[0]
    window.start_edit(question.id)
    assert window.edit_banner.isVisible()
    window._on_escape()
    assert not window.edit_banner.isVisible() and window.input.toPlainText() == ""
    assert [m.id for m in stored(window)] == [question.id, stored(window)[1].id]


def fits_found(qtbot: QtBot, window: ChatWindow) -> None:
    """The memory fits the menu shows are found on the routing thread after each reply."""
    qtbot.waitUntil(lambda: window.controller._fits_job is None, timeout=10_000)


def menu_texts(menu: QMenu) -> list[str]:
    return [action.text() for action in menu.actions() if action.text()]


def rerun_menu(menu: QMenu) -> QMenu:
    action = next(a for a in menu.actions() if a.text() == RERUN)
    submenu = action.menu()
    assert isinstance(submenu, QMenu)
    return submenu


def test_the_chip_menu_names_the_runner_up_and_reruns_with_another_specialist(
    qtbot: QtBot, window: ChatWindow
) -> None:
    routed = send(qtbot, window, SQL_QUESTION)
    assert routed.specialist_id == "tiny-coder" and routed.route is not None
    route = routed.route
    fits_found(qtbot, window)
    menu = window.route_menu(routed.id)
    assert menu is not None
    runner_up = f"Runner-up: {route.runner_up.capitalize()} · {route.scores[route.runner_up]:.0%}"
    assert menu_texts(menu) == [
        f"Answered by Tiny-Coder · {route.confidence:.0%}",
        runner_up,
        route.reason,
        RERUN,
    ]
    assert not any(a.isEnabled() for a in menu.actions()[:3])
    options = rerun_menu(menu)
    automatic, *others = [a for a in options.actions() if a.text()]
    assert automatic.text() == AUTOMATIC and not automatic.isEnabled()
    assert f"Tiny · {route.scores['general']:.0%}" in [a.text() for a in others]
    assert not any(a.text().startswith("Tiny-Coder") for a in others)
    tiny: QAction = next(a for a in others if a.text().startswith("Tiny ·"))
    with qtbot.waitSignal(window.controller.reply_finished, timeout=REPLY_TIMEOUT_MS) as done:
        tiny.trigger()
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=5000)
    again = done.args[0]
    assert again is not None and again.specialist_id == "tiny"
    assert [m.id for m in stored(window)] == [stored(window)[0].id, again.id]
    assert window._service.routing._corrections.all() == [(SQL_QUESTION, "tiny", "general")]
    picked = window.route_menu(again.id)
    assert picked is not None
    assert menu_texts(picked) == ["Answered by Tiny · chosen by you", RERUN]
    assert next(a for a in rerun_menu(picked).actions() if a.text() == AUTOMATIC).isEnabled()


def test_an_earlier_reply_explains_its_route_but_cannot_be_rerun(
    qtbot: QtBot, window: ChatWindow
) -> None:
    first = send(qtbot, window, SQL_QUESTION)
    send(qtbot, window, "And how do I count the rows?")
    menu = window.route_menu(first.id)
    assert menu is not None
    assert menu_texts(menu)[-2:] == [RERUN, ONLY_LAST]
    assert not rerun_menu(menu).isEnabled()


def test_the_chip_menu_reads_no_model_file_on_the_gui_thread(
    qtbot: QtBot, window: ChatWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    on_gui_thread: list[bool] = []  # one entry per model header read for a memory fit
    read = fit.read_gguf_header

    def watched(path: Path) -> object:
        on_gui_thread.append(threading.current_thread() is threading.main_thread())
        return read(path)

    monkeypatch.setattr(fit, "read_gguf_header", watched)
    routed = send(qtbot, window, SQL_QUESTION)
    fits_found(qtbot, window)
    assert on_gui_thread and not any(on_gui_thread)  # found after the reply, off the GUI thread
    read_before = len(on_gui_thread)
    menu = window.route_menu(routed.id)
    assert menu is not None and len(on_gui_thread) == read_before
    labels = [a.text() for a in rerun_menu(menu).actions()]
    assert any(label.startswith("Tiny ·") and "(" not in label for label in labels)


def test_a_specialist_whose_fit_is_not_known_yet_says_so() -> None:
    assert option_label(RerunOption("tiny", "Tiny", 0.45, None)) == "Tiny · 45% (checking memory…)"
    assert option_label(RerunOption("tiny", "Tiny", None, fit.Verdict.TIGHT)) == "Tiny (tight now)"
