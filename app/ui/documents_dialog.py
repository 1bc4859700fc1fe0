"""The Documents window: collections of folders that replies can be grounded in, their counts, live
indexing progress, and the files that could not be indexed (and why).

A view over :class:`DocumentOps`: it lays out the tables and buttons and shows what the signals say.
Every question it asks the user goes through a small method (``ask_folder``,
``ask_collection_name``, ``confirm_removal``) that tests replace.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QStackedWidget,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.documents.indexer import IndexProgress
from app.core.documents.library import CollectionStatus
from app.core.tasks import Progress
from app.core.units import human_duration
from app.ui.access import named
from app.ui.document_ops import DocumentOps

COLUMNS = ("Collection", "Documents", "Chunks", "Folders", "Last indexed", "Status")
_STATUS = COLUMNS.index("Status")
EMPTY_TEXT = (
    "No collections yet. Add a folder to answer questions from your own documents.\n\n"
    "Click “New collection…”, or drop a folder on this window."
)
REMOVING = "Removing…"
DROP_HINT = "Drop folders or files here: they join the selected collection, or a new one."
_NUMBERS = (COLUMNS.index("Documents"), COLUMNS.index("Chunks"))
_RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def live_text(report: Progress) -> str:
    """'Indexing 12 of 300 files · 840 chunks · 1m20s left', or the report's own message."""
    if not isinstance(report, IndexProgress) or not report.files_total:
        return report.message
    text = (
        f"Indexing {report.files_done} of {report.files_total} files · {report.chunks_done} chunks"
    )
    if report.eta_s is not None:
        text += f" · {human_duration(report.eta_s)} left"
    return text


def _when(iso: str | None) -> str:
    if not iso:
        return "never"
    return datetime.fromisoformat(iso).astimezone().strftime("%Y-%m-%d %H:%M")


def _folders(status: CollectionStatus) -> str:
    names = [
        Path(source).name + (" (missing)" if source in status.missing_sources else "")
        for source in status.sources
    ]
    return ", ".join(names) or "none"


def short_path(path: str, sources: Sequence[str]) -> str:
    """A file as seen from its collection: 'contracts/2024/lease.pdf' for a folder 'contracts'."""
    file = Path(path)
    for source in map(Path, sources):
        if file == source:
            return file.name
        if source in file.parents:
            return str(Path(source.name) / file.relative_to(source))
    return path


def _idle_text(status: CollectionStatus) -> str:
    if status.missing_sources:
        return "Not found: " + ", ".join(status.missing_sources)
    return "Ready" if status.documents else "Not indexed yet"


class DocumentsDialog(QDialog):
    def __init__(self, ops: DocumentOps, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Documents")
        self.resize(980, 560)
        self.setAcceptDrops(True)
        self._ops = ops
        self._rows: list[CollectionStatus] = []
        self._live: dict[str, Progress] = {}  # collection -> latest progress while indexing
        self._outcome: dict[str, str] = {}  # collection -> how its last run here ended
        self._select_next: str | None = None  # a collection just created here: select it
        self.table = QTableWidget(0, len(COLUMNS))
        self.empty_label = QLabel(EMPTY_TEXT)
        self._stack = QStackedWidget()
        self.new_button = QPushButton("New collection…")
        self.add_button = QPushButton("Add folder…")
        self.reindex_button = QPushButton("Re-index")
        self.cancel_button = QPushButton("Cancel")
        self.remove_button = QPushButton("Remove…")
        self.skipped_label = QLabel()
        self.skipped = QTableWidget(0, 2)
        self._build()
        self._connect()
        ops.refresh()

    def _build(self) -> None:
        self._build_tables()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self._stack.addWidget(self.empty_label)
        self._stack.addWidget(self.table)
        hint = QLabel(DROP_HINT)
        hint.setStyleSheet("color: gray")
        buttons = QHBoxLayout()
        buttons.addWidget(hint, 1)
        for button in self._buttons():
            buttons.addWidget(button)
        self.skipped_label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self._stack, 3)
        layout.addLayout(buttons)
        layout.addSpacing(6)
        layout.addWidget(self.skipped_label)
        layout.addWidget(self.skipped, 2)
        named(self.table, "Collections", "Select one to add folders to it, re-index or remove it")
        named(self.skipped, "Files that could not be indexed")
        chain = (self.table, *self._buttons(), self.skipped)  # as laid out: top to bottom
        for before, after in itertools.pairwise(chain):
            QWidget.setTabOrder(before, after)
        self._update_buttons()
        self._show_skipped()

    def _buttons(self) -> tuple[QPushButton, ...]:
        return (
            self.new_button,
            self.add_button,
            self.reindex_button,
            self.cancel_button,
            self.remove_button,
        )

    def _build_tables(self) -> None:
        for table, labels in (
            (self.table, COLUMNS),
            (self.skipped, ("File", "Why it was skipped")),
        ):
            table.setHorizontalHeaderLabels(labels)
            table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
            table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
            table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
            table.verticalHeader().hide()
            table.setTabKeyNavigation(False)  # Tab moves on; the arrows move between rows
            table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(_STATUS, QHeaderView.ResizeMode.Stretch)
        skipped_header = self.skipped.horizontalHeader()
        skipped_header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        skipped_header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.skipped.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.skipped.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)

    def _connect(self) -> None:
        ops = self._ops
        ops.status_ready.connect(self._show_status)
        ops.progress.connect(self._on_progress)
        ops.index_queued.connect(self._on_index_queued)
        ops.index_ended.connect(self._on_index_ended)
        self.table.itemSelectionChanged.connect(self._on_selection)
        self.new_button.clicked.connect(self.new_collection)
        self.add_button.clicked.connect(self.add_folder)
        self.reindex_button.clicked.connect(lambda: self._with_selected(ops.index))
        self.cancel_button.clicked.connect(lambda: self._with_selected(ops.cancel))
        self.remove_button.clicked.connect(lambda: self._with_selected(self._remove))

    # Questions to the user: one small method each, so tests can answer them.

    def ask_folder(self) -> Path | None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of documents")
        return Path(folder) if folder else None

    def ask_collection_name(self, suggested: str) -> str | None:
        name, ok = QInputDialog.getText(
            self, "New collection", "Name of the new collection:", text=suggested
        )
        return name.strip() if ok and name.strip() else None

    def confirm_removal(self, name: str) -> bool:
        answer = QMessageBox.question(
            self,
            "Remove collection?",
            f"Remove the collection {name!r} and its search index?\n\n"
            "Your files are untouched: only Cadre's index of them is deleted.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No,
        )
        return answer == QMessageBox.StandardButton.Yes

    # Actions.

    def new_collection(self) -> None:
        folder = self.ask_folder()
        if folder is not None:
            self._add_to_new(folder.name, [folder])

    def add_folder(self) -> None:
        name = self.selected_name()
        folder = self.ask_folder() if name is not None else None
        if name is not None and folder is not None:
            self._ops.add_folders(name, [folder])

    def add_paths(self, paths: Sequence[Path]) -> None:
        """Add dropped folders or files to the selected collection, or to a new one."""
        if not paths:
            return
        name = self.selected_name()
        if name is None:
            self._add_to_new(paths[0].stem or paths[0].name, paths)
        else:
            self._ops.add_folders(name, paths)

    def _add_to_new(self, suggested: str, paths: Sequence[Path]) -> None:
        name = self.ask_collection_name(suggested)
        if name is not None:
            self._select_next = name
            self._ops.add_folders(name, paths)

    def _remove(self, name: str) -> None:
        if self.confirm_removal(name):
            self._live.pop(name, None)
            self._outcome[name] = REMOVING
            self._set_status(name)
            self._ops.remove(name)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if any(url.isLocalFile() for url in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [Path(url.toLocalFile()) for url in event.mimeData().urls() if url.isLocalFile()]
        if paths:
            event.acceptProposedAction()
            self.add_paths(paths)

    # What the operations say.

    def selected_name(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self._rows):
            return None
        return self._rows[rows[0].row()].name

    def _with_selected(self, action: object) -> None:
        name = self.selected_name()
        if name is not None and callable(action):
            action(name)
            self._update_buttons()

    def _show_status(self, rows: list[CollectionStatus]) -> None:
        selected = self._select_next or self.selected_name()
        self._rows = rows
        names = {status.name for status in rows}
        for gone in (self._live.keys() | self._outcome.keys()) - names:
            self._live.pop(gone, None)
            self._outcome.pop(gone, None)
        self._stack.setCurrentWidget(self.table if rows else self.empty_label)
        self.table.setRowCount(len(rows))
        for index, status in enumerate(rows):
            self.table.removeCellWidget(index, _STATUS)
            for column, text in enumerate(self._cells(status)):
                item = QTableWidgetItem(text)
                if column == COLUMNS.index("Folders"):
                    item.setToolTip("\n".join(status.sources))
                elif column in _NUMBERS:
                    item.setTextAlignment(_RIGHT)
                self.table.setItem(index, column, item)
            self._set_status(status.name)
            if status.name == selected:
                self.table.selectRow(index)
                self._select_next = None
        self._on_selection()

    def _cells(self, status: CollectionStatus) -> tuple[str, ...]:
        return (
            status.name,
            str(status.documents),
            str(status.chunks),
            _folders(status),
            _when(status.last_indexed),
            "",
        )

    def _row_of(self, name: str) -> int:
        names = [status.name for status in self._rows]
        return names.index(name) if name in names else -1

    def _set_status(self, name: str) -> None:
        """The status cell: a progress bar while indexing, else the last outcome or the state."""
        row = self._row_of(name)
        if row < 0:
            return
        report = self._live.get(name)
        if report is None:
            self.table.removeCellWidget(row, _STATUS)
            text = self._outcome.get(name) or _idle_text(self._rows[row])
            self.table.setItem(row, _STATUS, QTableWidgetItem(text))
            return
        bar = self.table.cellWidget(row, _STATUS)
        if not isinstance(bar, QProgressBar):
            bar = QProgressBar()
            bar.setRange(0, 1000)
            self.table.setCellWidget(row, _STATUS, bar)
        bar.setValue(round((report.fraction or 0.0) * 1000))
        bar.setFormat(live_text(report))

    def _on_index_queued(self, name: str) -> None:
        self._outcome[name] = "Waiting to index…"
        self._set_status(name)
        self._update_buttons()

    def _on_progress(self, name: str, report: Progress) -> None:
        first = name not in self._live
        self._live[name] = report
        self._outcome.pop(name, None)
        self._set_status(name)
        if first:
            self._update_buttons()

    def _on_index_ended(self, name: str, outcome: str) -> None:
        self._live.pop(name, None)
        if self._outcome.get(name) != REMOVING:  # its run was cancelled to remove it
            self._outcome[name] = outcome
        self._set_status(name)
        self._update_buttons()
        self._ops.refresh()

    def _on_selection(self) -> None:
        self._update_buttons()
        self._show_skipped()

    def _show_skipped(self) -> None:
        name = self.selected_name()
        row = self._row_of(name) if name is not None else -1
        skipped = self._rows[row].skipped if row >= 0 else ()
        sources = self._rows[row].sources if row >= 0 else ()
        self.skipped_label.setVisible(bool(self._rows))
        self.skipped.setVisible(bool(self._rows))
        if row < 0:
            text = "Select a collection to see the files it could not index."
        elif skipped:
            text = f"Files in {name!r} that could not be indexed ({len(skipped)}):"
        else:
            text = f"Every file found in {name!r} could be indexed: nothing was skipped."
        self.skipped_label.setText(text)
        self.skipped.setRowCount(len(skipped))
        for index, (path, reason) in enumerate(skipped):
            item = QTableWidgetItem(short_path(path, sources))
            item.setToolTip(path)
            self.skipped.setItem(index, 0, item)
            self.skipped.setItem(index, 1, QTableWidgetItem(reason))

    def _update_buttons(self) -> None:
        name = self.selected_name()
        indexing = name is not None and self._ops.is_indexing(name)
        self.add_button.setEnabled(name is not None)
        self.reindex_button.setEnabled(name is not None and not indexing)
        self.cancel_button.setEnabled(indexing)
        self.remove_button.setEnabled(name is not None)
