"""The sidebar with many conversations, with pytest-qt and a real store: it pages in older ones as
it is scrolled, keeps its marks and keys meanwhile, and shows only the latest search's results."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QListWidget
from pytestqt.qtbot import QtBot

from app.core.service import CadreService
from app.core.storage import ConversationStore, SearchResult
from app.ui import conversation_list
from app.ui.conversation_list import ConversationList
from tests.test_ui_long_conversations import long_conversation
from tests.ui_helpers import shown_window

MANY = 450


def ids(listing: QListWidget) -> list[str]:
    return [listing.item(row).data(Qt.ItemDataRole.UserRole) for row in range(listing.count())]


def fill(store: ConversationStore, count: int = MANY) -> list[str]:
    """``count`` conversations, the oldest first, each a day apart."""
    made = []
    for n in range(count):
        conversation = store.create("tiny", title=f"Chat {n}")
        stamp = f"20{20 + n // 336:02}-{n // 28 % 12 + 1:02}-{n % 28 + 1:02}T10:00:00+00:00"
        store._db.table("conversations").update(conversation.id, {"updated_at": stamp})
        made.append(conversation.id)
    return made


@pytest.fixture
def sidebar(qtbot: QtBot, service: CadreService) -> Iterator[ConversationList]:
    widget = ConversationList(service.conversations)
    widget.resize(300, 600)
    qtbot.addWidget(widget)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.shutdown()


def scroll_to_end(sidebar: ConversationList) -> None:
    """As the user does, until nothing more comes."""
    listing = sidebar.list
    while True:
        count = listing.count()
        listing.scrollToBottom()
        QApplication.processEvents()
        if listing.count() == count:
            return


def test_scrolling_reaches_the_oldest_conversation(
    sidebar: ConversationList, service: CadreService
) -> None:
    made = fill(service.conversations)
    sidebar.refresh()
    assert sidebar.list.count() == conversation_list.PAGE  # not all at once
    scroll_to_end(sidebar)
    assert ids(sidebar.list) == made[::-1]  # every one, once, newest first
    assert sidebar.list.item(MANY - 1).text().startswith("Chat 0\n")


def test_marks_and_keys_work_on_paged_in_rows(
    qtbot: QtBot,
    sidebar: ConversationList,
    service: CadreService,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = service.conversations
    made = fill(store)
    sidebar.refresh()
    sidebar.select(made[0])  # the conversation shown: the oldest, not listed yet
    assert sidebar.list.currentItem() is None
    scroll_to_end(sidebar)
    assert sidebar.list.currentItem().data(Qt.ItemDataRole.UserRole) == made[0]  # marked
    monkeypatch.setattr(sidebar, "ask_title", lambda current: "The oldest")
    sidebar.list.setFocus()
    qtbot.keyClick(sidebar.list, Qt.Key.Key_F2)
    assert sidebar.list.item(MANY - 1).text().startswith("The oldest\n")  # in its place
    monkeypatch.setattr(sidebar, "confirm_delete", lambda title: title == "Chat 1")
    sidebar.list.setCurrentRow(MANY - 2)
    qtbot.keyClick(sidebar.list, Qt.Key.Key_Delete)
    assert made[1] not in ids(sidebar.list) and sidebar.list.count() == MANY - 1
    assert store.recent(1, after=store.get(made[2]))[0].id == made[0]


def test_a_conversation_written_to_goes_to_the_top(
    sidebar: ConversationList, service: CadreService
) -> None:
    store = service.conversations
    made = fill(store)
    sidebar.refresh()
    scroll_to_end(sidebar)
    store.add_message(made[5], "user", "Back to this one?", "tiny")
    sidebar.select(made[5])
    sidebar.touched(made[5])
    assert ids(sidebar.list)[:2] == [made[5], made[-1]] and sidebar.list.count() == MANY
    assert sidebar.list.currentRow() == 0
    new = store.create("tiny")
    store.add_message(new.id, "user", "A new question", "tiny")
    sidebar.select(new.id)
    sidebar.touched(new.id)
    assert sidebar.list.item(0).text().startswith("A new question\n")
    assert sidebar.list.currentRow() == 0 and sidebar.list.count() == MANY + 1


class Gate:
    """The store's search held until the test lets each query through, so that the test decides
    when each result arrives."""

    def __init__(self, search: Callable[[str], list[SearchResult]]) -> None:
        self._search = search
        self._open: dict[str, threading.Event] = {}
        self.waiting: list[str] = []
        self.done: list[str] = []

    def __call__(self, query: str, limit: int = 50) -> list[SearchResult]:
        self.waiting.append(query)
        assert self._open.setdefault(query, threading.Event()).wait(10), "never let through"
        try:
            return self._search(query)
        finally:
            self.done.append(query)

    def let_through(self, query: str) -> None:
        self._open.setdefault(query, threading.Event()).set()


def searched_store(service: CadreService, monkeypatch: pytest.MonkeyPatch) -> Gate:
    store = service.conversations
    for question in ("Where do apples grow?", "How ripe is a banana?"):
        store.add_message(store.create("tiny").id, "user", question, "tiny")
    gate = Gate(store.search)
    monkeypatch.setattr(store, "search", gate)
    return gate


def test_an_out_of_date_search_never_replaces_the_newer_one(
    qtbot: QtBot, sidebar: ConversationList, service: CadreService, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = searched_store(service, monkeypatch)
    shown: list[list[str]] = []
    sidebar.listed.connect(lambda: shown.append([i.split("\n")[1] for i in texts(sidebar)]))
    sidebar.search_box.setText("apples")
    sidebar.refresh()  # as the timer would
    qtbot.waitUntil(lambda: gate.waiting == ["apples"], timeout=10_000)  # under way, held
    sidebar.search_box.setText("banana")
    with qtbot.waitSignal(sidebar.listed, timeout=10_000):
        sidebar.refresh()
        gate.let_through("apples")  # the older query's results arrive first
        qtbot.waitUntil(lambda: gate.done == ["apples"], timeout=10_000)
        gate.let_through("banana")
    assert shown == [["How ripe is a «banana»?"]]  # "apples" was never listed
    assert texts(sidebar) == ["How ripe is a banana?\nHow ripe is a «banana»?"]


def test_clearing_the_box_wins_over_a_search_under_way(
    qtbot: QtBot, sidebar: ConversationList, service: CadreService, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate = searched_store(service, monkeypatch)
    sidebar.search_box.setText("apples")
    sidebar.refresh()
    qtbot.waitUntil(lambda: gate.waiting == ["apples"], timeout=10_000)
    sidebar.search_box.clear()
    sidebar.refresh()  # at once: the latest conversations
    recent = texts(sidebar)
    assert [text.split("\n")[0] for text in recent] == [
        "How ripe is a banana?",
        "Where do apples grow?",
    ]
    gate.let_through("apples")
    qtbot.waitUntil(lambda: gate.done == ["apples"], timeout=10_000)
    sidebar.shutdown()  # its result is delivered, or dropped: nothing more is under way
    QApplication.processEvents()
    assert texts(sidebar) == recent


def texts(sidebar: ConversationList) -> list[str]:
    return [sidebar.list.item(row).text() for row in range(sidebar.list.count())]


def test_edit_and_the_chip_on_a_long_conversation(
    qtbot: QtBot, window_service: CadreService
) -> None:
    messages = long_conversation(window_service, turns=40)
    with shown_window(qtbot, window_service) as window:
        with qtbot.waitSignal(window.transcript.conversation_shown, timeout=30_000):
            window.open_conversation(messages[0].conversation_id)
        window.start_edit(messages[2].id)  # an early question
        assert window.input.toPlainText() == "Question 1?" and window.edit_banner.isVisibleTo(
            window
        )
        window.cancel_edit()
        menu = window.route_menu(messages[3].id)  # an early reply's chip
        assert menu is not None
        assert any("code (82%)" in action.text() for action in menu.actions())
        assert window.route_menu("no-such-message") is None
