"""The Specialists window: what is installed, what fits this computer, download, cancel, remove.

A view over :class:`ModelOps`: it lays out the table and buttons and shows what the signals say.
"""

from __future__ import annotations

from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.core.downloads.transfer import DownloadProgress
from app.core.fit import Verdict
from app.core.service import SpecialistStatus
from app.core.tasks import Progress
from app.core.units import human_bytes
from app.ui.model_ops import ModelOps

COLUMNS = ("Specialist", "Domain", "Size", "Memory", "Status")
_STATUS = COLUMNS.index("Status")
_VERDICT_MARK = {Verdict.FITS: "✓", Verdict.TIGHT: "!", Verdict.WONT_FIT: "✗"}


class SpecialistsDialog(QDialog):
    def __init__(self, ops: ModelOps, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Specialists")
        self.resize(980, 420)
        self._ops = ops
        self._rows: list[SpecialistStatus] = []
        self._live: dict[str, str] = {}  # specialist id -> progress text while downloading
        self.confirmation: QMessageBox | None = None
        self.table = QTableWidget(0, len(COLUMNS))
        self.download_button = QPushButton("Download")
        self.cancel_button = QPushButton("Cancel download")
        self.remove_button = QPushButton("Remove…")
        self.memory_label = QLabel()
        self._build()
        self._connect()
        ops.refresh()

    def _build(self) -> None:
        table = self.table
        table.setHorizontalHeaderLabels(COLUMNS)
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        table.verticalHeader().hide()
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(_STATUS, QHeaderView.ResizeMode.Stretch)
        buttons = QHBoxLayout()
        buttons.addWidget(self.memory_label, 1)
        for button in (self.download_button, self.cancel_button, self.remove_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(table, 1)
        layout.addLayout(buttons)
        self._update_buttons()

    def _connect(self) -> None:
        ops = self._ops
        ops.overview_ready.connect(self._show_overview)
        ops.progress.connect(self._on_progress)
        ops.download_ended.connect(self._on_download_ended)
        ops.catalog_changed.connect(ops.refresh)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.download_button.clicked.connect(lambda: self._with_selected(ops.download))
        self.cancel_button.clicked.connect(lambda: self._with_selected(ops.cancel))
        self.remove_button.clicked.connect(lambda: self._with_selected(self._confirm_removal))

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows()
        if not rows or rows[0].row() >= len(self._rows):
            return None
        return self._rows[rows[0].row()].entry.manifest.id

    def _with_selected(self, action: object) -> None:
        specialist_id = self.selected_id()
        if specialist_id is not None and callable(action):
            action(specialist_id)
            self._update_buttons()

    def _show_overview(self, rows: list[SpecialistStatus]) -> None:
        selected = self.selected_id()
        self._rows = rows
        self.table.setRowCount(len(rows))
        for index, status in enumerate(rows):
            for column, text in enumerate(self._cells(status)):
                item = QTableWidgetItem(text)
                if column == COLUMNS.index("Memory"):
                    item.setToolTip(status.fit.summary)
                self.table.setItem(index, column, item)
            if status.entry.manifest.id == selected:
                self.table.selectRow(index)
        if rows:
            memory = rows[0].fit.memory
            text = f"{human_bytes(memory.available_ram)} RAM free"
            if memory.free_vram is not None:
                text += f" · {human_bytes(memory.free_vram)} free on {memory.gpu_name}"
            self.memory_label.setText(text)
        self._update_buttons()

    def _cells(self, status: SpecialistStatus) -> tuple[str, ...]:
        manifest, fit = status.entry.manifest, status.fit
        model = manifest.model
        size = human_bytes(model.size_bytes) if model.size_bytes else "?"
        memory = f"{_VERDICT_MARK[fit.verdict]} {fit.verdict.value} (~{human_bytes(fit.need.total_bytes)})"
        name = f"{manifest.name} · {model.parameters} {model.quantization}".strip(" ·")
        state = self._live.get(manifest.id, status.state)
        return name, manifest.domain, size, memory, state

    def _row_of(self, specialist_id: str) -> int:
        ids = [status.entry.manifest.id for status in self._rows]
        return ids.index(specialist_id) if specialist_id in ids else -1

    def _set_status(self, specialist_id: str, text: str) -> None:
        row = self._row_of(specialist_id)
        if row >= 0:
            self.table.setItem(row, _STATUS, QTableWidgetItem(text))

    def _on_progress(self, specialist_id: str, report: Progress) -> None:
        text = report.message
        if report.fraction is not None:
            text = f"{report.message.split(' ')[0]} {report.fraction:.0%}"
        if isinstance(report, DownloadProgress):
            text += f" · {report.describe()}"
        self._live[specialist_id] = text
        self._set_status(specialist_id, text)

    def _on_download_ended(self, specialist_id: str, outcome: str) -> None:
        self._live.pop(specialist_id, None)
        self._set_status(specialist_id, outcome)
        self._update_buttons()
        self._ops.refresh()

    def _confirm_removal(self, specialist_id: str) -> None:
        plan = self._ops.plan_removal(specialist_id)
        if plan.empty:
            QMessageBox.information(self, "Cadre", f"{plan.name} has no downloaded model.")
            return
        lines = plan.describe()
        box = QMessageBox(QMessageBox.Icon.Question, "Remove model?", lines[0], parent=self)
        box.setInformativeText("\n".join(line.strip() for line in lines[1:]))
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        self.confirmation = box  # tests answer it
        if box.exec() == QMessageBox.StandardButton.Yes:
            self._ops.remove(plan)

    def _update_buttons(self) -> None:
        specialist_id = self.selected_id()
        row = self._row_of(specialist_id) if specialist_id else -1
        downloading = bool(specialist_id) and self._ops.is_downloading(specialist_id or "")
        source = self._rows[row].entry.manifest.model.source if row >= 0 else ""
        state = self._rows[row].state if row >= 0 else ""
        self.download_button.setEnabled(source == "huggingface" and not downloading)
        self.download_button.setText("Check for update" if state == "installed" else "Download")
        self.cancel_button.setEnabled(downloading)
        self.remove_button.setEnabled(row >= 0 and not downloading and state != "not installed")
