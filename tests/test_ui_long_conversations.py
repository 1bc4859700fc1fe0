"""Long conversations in the transcript, with pytest-qt and a real conversation store: the end shows
at once, the earlier messages arrive above it (rendered off the GUI thread) until the whole reads as
one render would; switching conversations or writing a reply meanwhile mixes nothing up."""

from __future__ import annotations

import re

import pytest
from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from app.core.service import CadreService
from app.core.storage import StoredMessage
from app.core.storage.conversations import RouteRecord
from app.ui import transcript_load
from app.ui.transcript import TranscriptView
from tests.test_ui_transcript import click_href
from tests.ui_helpers import shown_transcript, shown_window

ROUTED = RouteRecord("tiny", "code", 0.82, "general", "code (82%)")
TURNS = 30
SPEAKER = "Tiny"


def reply(turn: int) -> str:
    code = "\n".join(f"    total += values[{n}] * {turn}" for n in range(25))
    return (
        f"## Part {turn}\n\nThe **answer** to question {turn}, with `code`.\n\n"
        f"| turn | value |\n|---|--:|\n| {turn} | {turn * 7} |\n\n"
        f"```python\ndef part_{turn}(values):\n    total = 0\n{code}\n    return total\n```\n"
    )


def long_conversation(service: CadreService, turns: int = TURNS) -> list[StoredMessage]:
    store = service.conversations
    conversation = store.create("tiny")
    messages = []
    for turn in range(turns):
        messages.append(store.add_message(conversation.id, "user", f"Question {turn}?", "tiny"))
        messages.append(
            store.add_message(conversation.id, "assistant", reply(turn), "tiny", route=ROUTED)
        )
    return messages


@pytest.fixture
def view(qtbot: QtBot) -> TranscriptView:
    return shown_transcript(qtbot)


def questions(view: TranscriptView) -> list[int]:
    return [int(n) for n in re.findall(r"Question (\d+)\?", view.toPlainText())]


def at_end(view: TranscriptView) -> bool:
    bar = view.verticalScrollBar()
    return bar.value() == bar.maximum()


def test_a_long_conversation_shows_its_end_at_once_then_all_of_it_in_order(
    qtbot: QtBot, view: TranscriptView, service: CadreService
) -> None:
    messages = long_conversation(service)
    with qtbot.waitSignal(view.conversation_shown, timeout=30_000):
        view.show_conversation(messages, lambda specialist: SPEAKER)
        shown = questions(view)
        assert shown and shown == list(range(TURNS - len(shown), TURNS))  # the latest, at once
        assert len(shown) < TURNS  # the rest is still to come
        assert f"part_{TURNS - 1}" in view.toPlainText() and at_end(view)
    assert questions(view) == list(range(TURNS))
    assert at_end(view)
    assert view.toPlainText().count("Regenerate") == 1
    assert "Copy · Regenerate" in view.toPlainText().rstrip().splitlines()[-1]  # the last reply


def test_it_reads_exactly_as_one_whole_render(
    qtbot: QtBot, view: TranscriptView, service: CadreService, monkeypatch: pytest.MonkeyPatch
) -> None:
    messages = long_conversation(service, turns=12)
    with qtbot.waitSignal(view.conversation_shown, timeout=30_000):
        view.show_conversation(messages, lambda specialist: SPEAKER)
    monkeypatch.setattr(transcript_load, "TAIL_CHARS", 10**9)  # all of it at once
    whole = shown_transcript(qtbot)
    whole.show_conversation(messages, lambda specialist: SPEAKER)
    assert view.toHtml() == whole.toHtml()


def test_its_links_act_on_their_own_messages(
    qtbot: QtBot, view: TranscriptView, service: CadreService
) -> None:
    messages = long_conversation(service, turns=12)
    with qtbot.waitSignal(view.conversation_shown, timeout=30_000):
        view.show_conversation(messages, lambda specialist: SPEAKER)
    first = messages[0]
    with qtbot.waitSignal(view.action_requested, timeout=2000) as signal:
        click_href(qtbot, view, f"cadre:edit/{first.id}")  # a click: laid out where it reads
    assert signal.args == ["edit", first.id]
    code = view.document().find("def part_0")
    copy = view.document().find("Copy", code.position() - 60)  # its code block's Copy link
    view.anchorClicked.emit(QUrl(copy.charFormat().anchorHref()))
    assert QGuiApplication.clipboard().text().startswith("def part_0(values):")


def test_switching_conversations_mid_load_shows_only_the_second(
    qtbot: QtBot, view: TranscriptView, service: CadreService
) -> None:
    first = long_conversation(service)
    store = service.conversations
    other = store.create("tiny")
    second = [
        store.add_message(other.id, "user", "Something else entirely?", "tiny"),
        store.add_message(other.id, "assistant", "Yes, " + reply(99), "tiny", route=ROUTED),
    ]
    view.show_conversation(first, lambda specialist: SPEAKER)
    assert questions(view) != list(range(TURNS))  # still loading
    with qtbot.waitSignal(view.conversation_shown, timeout=30_000):
        view.show_conversation(second, lambda specialist: SPEAKER)
    qtbot.wait(300)  # whatever of the first was under way has had its turn
    text = view.toPlainText()
    assert questions(view) == [] and "Something else entirely?" in text and "part_99" in text
    assert text.count("Regenerate") == 1


def test_a_reply_written_while_it_loads_stays_at_the_end(
    qtbot: QtBot, view: TranscriptView, service: CadreService
) -> None:
    messages = long_conversation(service)
    conversation_id = messages[0].conversation_id
    with qtbot.waitSignal(view.conversation_shown, timeout=30_000):
        view.show_conversation(messages, lambda specialist: SPEAKER)
        view.add_user("And the last one?")
        view.begin_reply(SPEAKER)
        view.add_reply_text("It is **this**.")
        view.flush()
        view.end_reply("3 tokens")
    store = service.conversations
    user = store.add_message(conversation_id, "user", "And the last one?", "tiny")
    answer = store.add_message(conversation_id, "assistant", "It is **this**.", "tiny")
    view.finish_turn(user, answer, lambda specialist: SPEAKER)
    text = view.toPlainText()
    assert questions(view) == list(range(TURNS))
    assert text.index(f"part_{TURNS - 1}") < text.index("And the last one?") < text.index("this")
    assert text.count("Regenerate") == 1 and "Regenerate" in text.rstrip().splitlines()[-1]
    edit = view.document().find("Edit", text.index("And the last one?") - 12)
    assert edit.charFormat().anchorHref() == f"cadre:edit/{user.id}"


def test_the_window_opens_a_long_conversation_and_search_finds_its_first_message(
    qtbot: QtBot, window_service: CadreService
) -> None:
    messages = long_conversation(window_service)
    with shown_window(qtbot, window_service) as window:
        sidebar = window.conversation_list
        sidebar.search_box.setText("question 0")
        qtbot.waitUntil(lambda: "«0»" in sidebar.list.item(0).text(), timeout=10_000)
        with qtbot.waitSignal(window.transcript.conversation_shown, timeout=30_000):
            sidebar.list.itemClicked.emit(sidebar.list.item(0))
        assert window.controller.conversation_id == messages[0].conversation_id
        assert questions(window.transcript) == list(range(TURNS))
        first = sidebar.list.item(0).data(Qt.ItemDataRole.UserRole)
        assert first == messages[0].conversation_id
