"""The chat window's sidebar: recent conversations, full-text search over every message (Ctrl+K),
and rename, delete, export and import. The prompts are small methods that tests replace.

The list holds a page of conversations at a time (:data:`PAGE`) and reads the next when it is
scrolled to its end, so thousands of them cost nothing until they are looked at. A search runs on
its own thread (a word found in every message takes tens of milliseconds); only the results of the
latest query are shown: a newer query, or a cleared box, makes those under way out of date."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import partial
from pathlib import Path

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QFileDialog,
    QInputDialog,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import CadreError
from app.core.storage import Conversation, ConversationStore, SearchResult
from app.core.storage.archive import read_document
from app.core.tasks import CancelToken, Job, Progress
from app.ui.access import named
from app.ui.errors import show_bug, show_known_error
from app.ui.runner import JobRunner

SEARCH_DELAY_MS = 150  # search once the user pauses, not on every key
PAGE = 100  # conversations read at a time (~25 ms with layout); more at the list's end
_ID_ROLE = Qt.ItemDataRole.UserRole


class ConversationList(QWidget):
    opened = Signal(str)  # conversation id: show it and continue it
    deleted = Signal(str)  # conversation id
    listed = Signal()  # the list was filled again: the latest conversations, or search results

    def __init__(self, store: ConversationStore, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._store = store
        self._current: str | None = None
        self._locked: str | None = None  # being answered now: not to be deleted
        self._recent = False  # the list shows recent conversations (not search results)
        self._oldest: Conversation | None = None  # the last listed: the next page follows it
        self._more = False  # there may be older conversations than those listed
        self._query = 0  # the latest search's number: the results of an earlier one are dropped
        self._open_when_listed = False  # Enter in the search box: open the first result
        self._searches = JobRunner("search", max_threads=1, parent=self)
        self.search_box = QLineEdit()
        self.search_box.setPlaceholderText("Search all messages (Ctrl+K)")
        self.search_box.setClearButtonEnabled(True)
        named(self.search_box, "Search all messages")
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setSpacing(3)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        named(self.list, "Conversations", "Enter opens one; F2 renames it, Delete deletes it")
        self.import_button = QPushButton("Import…")
        self.import_button.setToolTip("Add a conversation exported from Cadre as JSON")
        self._search_timer = QTimer(self)
        self._search_timer.setSingleShot(True)
        self._search_timer.setInterval(SEARCH_DELAY_MS)
        self._build()
        self.refresh()

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(9, 9, 0, 9)  # in line with the chat beside it
        layout.addWidget(self.search_box)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.import_button)
        self.setMinimumWidth(220)
        self.search_box.textChanged.connect(lambda _text: self._search_timer.start())
        self.search_box.returnPressed.connect(self._open_first)
        self._search_timer.timeout.connect(self.refresh)
        self.list.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self.list.itemClicked.connect(self._on_item_clicked)
        self.list.itemActivated.connect(self._on_item_clicked)
        self.list.customContextMenuRequested.connect(self._show_menu)
        self.import_button.clicked.connect(self.import_file)
        for key, act in ((Qt.Key.Key_F2, self.rename), (Qt.Key.Key_Delete, self.delete)):
            shortcut = QShortcut(
                QKeySequence(key), self.list, lambda act=act: self._on_current(act)
            )
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)

    @property
    def searching(self) -> bool:
        return bool(self.search_box.text().strip())

    def focus_search(self) -> None:
        self.search_box.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.search_box.selectAll()

    def refresh(self) -> None:
        """The latest conversations (a page), or the messages matching the search box's words:
        those are listed when the search, on its thread, has found them."""
        self._search_timer.stop()
        self._query += 1  # whatever search is under way is out of date
        self._searches.cancel_all()
        if self.searching:
            self._search(self._query, self.search_box.text())
            return
        self._recent = False  # clearing scrolls to the top: no page is to follow the old ones
        self.list.clear()
        self._recent, self._oldest, self._more = True, None, True
        self._add_page()
        self._listed()

    def _add_page(self) -> None:
        """The next page of older conversations, below those listed."""
        page = self._store.recent(PAGE, after=self._oldest)
        self._more = len(page) == PAGE
        for conversation in page:
            self.list.addItem(_recent_item(conversation))
        if page:
            self._oldest = page[-1]
        if self._current is not None and self.list.currentItem() is None:
            self.select(self._current)  # the conversation shown was further down

    def _on_scrolled(self, value: int) -> None:
        bar = self.list.verticalScrollBar()
        if self._recent and self._more and value >= bar.maximum() - bar.pageStep() // 2:
            self._add_page()

    def _search(self, number: int, query: str) -> None:
        store = self._store

        def job(token: CancelToken) -> Job[list[SearchResult]]:
            yield Progress("Searching…")
            token.raise_if_cancelled()  # a newer query came before this one started
            return store.search(query)

        self._searches.start(
            job,
            succeeded=lambda results: self._found(number, results),
            failed=lambda exc: self._search_failed(number, exc),
        )

    def _found(self, number: int, results: list[SearchResult]) -> None:
        if number != self._query:
            return  # out of date: a newer query, or the box was cleared
        self._recent = False
        self.list.clear()
        for result in results:
            title = result.title or "Untitled"
            self.list.addItem(_item(f"{title}\n{result.snippet}", result.conversation_id))
        self._listed()

    def _search_failed(self, number: int, exc: BaseException) -> None:
        if number != self._query:
            return
        if isinstance(exc, CadreError):
            self.show_error(exc)
        else:
            show_bug(self, exc)

    def _listed(self) -> None:
        self.select(self._current)
        if self._open_when_listed and self.list.count():
            self._on_item_clicked(self.list.item(0))
        self._open_when_listed = False
        self.listed.emit()

    def touched(self, conversation_id: str | None) -> None:
        """A conversation was written to (or made): it goes to the top of the recent list, with
        its title and date; search results are found again."""
        if not self._recent or self.searching or conversation_id is None:
            self.refresh()
            return
        self._take(conversation_id)
        self.list.insertItem(0, _recent_item(self._store.get(conversation_id)))
        self.select(self._current)

    def _take(self, conversation_id: str) -> int | None:
        """Remove the conversation's row from the list; the row it was on."""
        for row in range(self.list.count()):
            if self.list.item(row).data(_ID_ROLE) == conversation_id:
                self.list.takeItem(row)
                return row
        return None

    def shutdown(self) -> None:
        self._query += 1
        self._searches.cancel_all()
        self._searches.wait()

    def select(self, conversation_id: str | None) -> None:
        """Mark the conversation shown in the chat (``None``: a new, unsaved one)."""
        self._current = conversation_id
        self.list.setCurrentRow(-1)
        for row in range(self.list.count()):
            item = self.list.item(row)
            if item.data(_ID_ROLE) == conversation_id:
                self.list.setCurrentItem(item)
                return

    def set_locked(self, conversation_id: str | None) -> None:
        self._locked = conversation_id

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        self.opened.emit(str(item.data(_ID_ROLE)))

    def _on_current(self, action: Callable[[str], None]) -> None:
        """F2 and Delete act on the conversation the keyboard is on."""
        item = self.list.currentItem()
        if item is not None:
            action(str(item.data(_ID_ROLE)))

    def _open_first(self) -> None:
        self._open_when_listed = True
        self.refresh()

    def context_menu(self, conversation_id: str) -> QMenu:
        menu = QMenu(self)
        for text, key, act in (("Rename…", "F2", self.rename), ("Delete…", "Del", self.delete)):
            action = menu.addAction(text, partial(act, conversation_id))
            action.setShortcut(QKeySequence(key))  # shown in the menu; the list's own keys act
            action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)  # (see _build)
        menu.addSeparator()
        menu.addAction("Export Markdown…", lambda: self.export_markdown(conversation_id))
        menu.addAction("Export JSON…", lambda: self.export_json(conversation_id))
        return menu

    def _show_menu(self, pos: QPoint) -> None:
        item = (
            self.list.itemAt(pos) or self.list.currentItem()
        )  # the Menu key: where the keyboard is
        if item is not None:
            self.context_menu(str(item.data(_ID_ROLE))).exec(self.list.mapToGlobal(pos))

    def rename(self, conversation_id: str) -> None:
        title = self.ask_title(self._store.get(conversation_id).title)
        if title is not None and title.strip():
            self._store.rename(conversation_id, title)
            if not self._recent:
                self.refresh()  # search results: found again
                return
            row = self._take(conversation_id)
            if row is not None:
                self.list.insertItem(row, _recent_item(self._store.get(conversation_id)))
                self.select(self._current)

    def delete(self, conversation_id: str) -> None:
        if conversation_id == self._locked:
            self.show_error(
                CadreError("This conversation is being answered: stop the reply first.")
            )
            return
        if self.confirm_delete(self._store.get(conversation_id).title or "Untitled"):
            self._store.delete(conversation_id)
            if conversation_id == self._current:
                self._current = None
            if self._recent:
                self._take(conversation_id)
                self.select(self._current)
            else:
                self.refresh()  # search results: found again
            self.deleted.emit(conversation_id)

    def export_markdown(self, conversation_id: str) -> None:
        name = _file_name(self._store.get(conversation_id).title) + ".md"
        path = self.ask_save_path("Export as Markdown", name, "Markdown (*.md)")
        if path is not None:
            self._write(path, self._store.export_markdown(conversation_id))

    def export_json(self, conversation_id: str) -> None:
        name = _file_name(self._store.get(conversation_id).title) + ".json"
        path = self.ask_save_path("Export as JSON", name, "Cadre conversation (*.json)")
        if path is not None:
            doc = self._store.export_json(conversation_id)
            self._write(path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")

    def _write(self, path: Path, text: str) -> None:
        try:
            path.write_text(text, encoding="utf-8")
        except OSError as exc:
            self.show_error(CadreError(f"{path} cannot be written: {exc.strerror or exc}"))

    def import_file(self) -> None:
        path = self.ask_open_path()
        if path is None:
            return
        try:
            conversation = self._store.import_json(read_document(path))
        except CadreError as exc:
            self.show_error(exc)
            return
        self.search_box.clear()
        self._current = conversation.id
        self.refresh()
        self.opened.emit(conversation.id)

    # The prompts: tests replace these.

    def ask_title(self, current: str) -> str | None:
        title, ok = QInputDialog.getText(self, "Rename conversation", "Title:", text=current)
        return title if ok else None

    def confirm_delete(self, title: str) -> bool:
        answer = QMessageBox.question(
            self, "Delete conversation", f"Delete “{title}” and all its messages?"
        )
        return answer == QMessageBox.StandardButton.Yes

    def ask_save_path(self, caption: str, suggested: str, filters: str) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(self, caption, str(Path.home() / suggested), filters)
        return Path(path) if path else None

    def ask_open_path(self) -> Path | None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Import a conversation", str(Path.home()), "Cadre conversation (*.json)"
        )
        return Path(path) if path else None

    def show_error(self, exc: CadreError) -> None:
        show_known_error(self, exc)


def _item(text: str, conversation_id: str) -> QListWidgetItem:
    item = QListWidgetItem(text)
    item.setData(_ID_ROLE, conversation_id)
    item.setToolTip(text)
    return item


def _recent_item(conversation: Conversation) -> QListWidgetItem:
    title = conversation.title or "Untitled"
    return _item(f"{title}\n{_local_date(conversation.updated_at)}", conversation.id)


def _local_date(stamp: str) -> str:
    try:
        return datetime.fromisoformat(stamp).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def _file_name(title: str) -> str:
    return re.sub(r"[^\w\- ]+", "", title).strip()[:60] or "conversation"
