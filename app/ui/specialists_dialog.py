"""The Specialists window: a card per specialist (what it is, its licence, whether it fits this
computer), download / cancel / resume / delete with live progress, and adding your own.

A view over :class:`ModelOps`: it lays out cards and shows what the signals say.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from app.core.fit import MemorySnapshot
from app.core.service import SpecialistStatus
from app.core.tasks import Progress
from app.core.units import human_bytes
from app.ui.access import named
from app.ui.add_specialist_dialog import AddSpecialistDialog
from app.ui.customise_dialog import CustomiseDialog
from app.ui.model_ops import AddRequest, ModelOps
from app.ui.specialist_card import SpecialistCard

INTRO = (
    "Each specialist is a small model that is good at one domain. The starter is built in and "
    "answers offline; download others and Cadre sends each question to the best one installed. "
    "Each card says how big the model is, its licence, and whether it fits this computer's memory."
)


def memory_text(memory: MemorySnapshot) -> str:
    text = f"This computer: {human_bytes(memory.available_ram)} RAM free"
    if memory.free_vram is not None:
        return text + f" · {human_bytes(memory.free_vram)} free on {memory.gpu_name}"
    return text + " · no NVIDIA GPU found (models run on the CPU)"


class SpecialistsDialog(QDialog):
    def __init__(self, ops: ModelOps, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Specialists")
        self.resize(760, 640)
        self._ops = ops
        self.cards: dict[str, SpecialistCard] = {}
        self.confirmation: QMessageBox | None = None
        self.add_dialog: AddSpecialistDialog | None = None
        self.customise_dialog: CustomiseDialog | None = None
        self.memory_label = QLabel()
        self.add_button = QPushButton("Add a specialist…")
        self.close_button = QPushButton("Close")
        self._list = QVBoxLayout()
        self._build()
        self._connect()
        ops.refresh()

    def _build(self) -> None:
        intro = QLabel(INTRO)
        intro.setWordWrap(True)
        self._list.setSpacing(8)
        self._list.addStretch(1)
        body = QWidget()
        body.setLayout(self._list)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        named(scroll, "Specialists", "Tab moves through each card's buttons")
        self.add_button.setToolTip("Any GGUF model from the Hugging Face hub, or a file you have")
        self.close_button.clicked.connect(self.close)
        bottom = QHBoxLayout()
        bottom.addWidget(self.memory_label, 1)
        bottom.addWidget(self.add_button)
        bottom.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addWidget(scroll, 1)
        layout.addLayout(bottom)

    def _connect(self) -> None:
        ops = self._ops
        ops.overview_ready.connect(self._show_overview)
        ops.progress.connect(self._on_progress)
        ops.download_ended.connect(self._on_download_ended)
        ops.catalog_changed.connect(ops.refresh)
        self.add_button.clicked.connect(self.open_add_dialog)

    def card(self, specialist_id: str) -> SpecialistCard:
        card = self.cards.get(specialist_id)
        if card is None:
            card = self.cards[specialist_id] = SpecialistCard(specialist_id)
            card.download_requested.connect(self._ops.download)
            card.cancel_requested.connect(self._ops.cancel)
            card.remove_requested.connect(self._confirm_removal)
            card.customise_requested.connect(self.open_customise_dialog)
            self._list.insertWidget(self._list.count() - 1, card)  # above the stretch
            card.show()  # now, not on the layout's queued show: callers read its buttons' state
        return card

    def _show_overview(self, rows: list[SpecialistStatus]) -> None:
        """Installed specialists first, then the rest, each group in catalog order."""
        ordered = sorted(rows, key=lambda row: row.state not in ("installed", "embedded"))
        for status in ordered:
            card = self.card(status.entry.manifest.id)
            card.downloading = self._ops.is_downloading(status.entry.manifest.id)
            card.show_status(status)
            self._list.removeWidget(card)
            self._list.insertWidget(self._list.count() - 1, card)
        known = {status.entry.manifest.id for status in rows}
        for specialist_id in [i for i in self.cards if i not in known]:
            if not self._ops.is_downloading(specialist_id):  # removed, or an add that failed
                self.cards.pop(specialist_id).deleteLater()
        if rows:
            self.memory_label.setText(memory_text(rows[0].fit.memory))
        self._order_tabs()

    def _order_tabs(self) -> None:
        """Tab goes down the cards as they are shown, then to the buttons under them (cards
        come and go and move, after the buttons were made)."""
        items = (self._list.itemAt(i) for i in range(self._list.count()))
        cards = [item.widget() for item in items if item is not None]
        chain = [b for c in cards if isinstance(c, SpecialistCard) for b in c.buttons]
        chain += [self.add_button, self.close_button]
        for before, after in itertools.pairwise(chain):
            QWidget.setTabOrder(before, after)

    def _on_progress(self, specialist_id: str, report: Progress) -> None:
        self.card(specialist_id).show_progress(report)

    def _on_download_ended(self, specialist_id: str, outcome: str) -> None:
        if specialist_id in self.cards:
            self.cards[specialist_id].show_outcome(outcome)
        self._ops.refresh()

    def open_add_dialog(self) -> AddSpecialistDialog:
        """The form to add a specialist; on OK its card appears and shows the download."""
        dialog = self.add_dialog = AddSpecialistDialog(self)
        dialog.accepted.connect(lambda: self._add(dialog.request))
        dialog.open()
        return dialog

    def open_customise_dialog(self, specialist_id: str) -> CustomiseDialog:
        """The specialist's prompt, sampling and context size; Save writes them and the cards
        and the chat follow once the catalog has reloaded. The model's trained context shows
        once its header is read."""
        defaults, current = self._ops.customising(specialist_id)
        dialog = self.customise_dialog = CustomiseDialog(
            defaults,
            current,
            lambda wanted: self._ops.customise(specialist_id, wanted),
            self,
            context_cap=self._ops.context_cap,
        )
        dialog.open()
        self._ops.find_trained_context(specialist_id, dialog.show_trained_context)
        return dialog

    def _add(self, request: AddRequest | None) -> None:
        if request is None:
            return
        card = self.card(request.new.id)
        if not card.downloading:
            card.show_pending(request.new.name or request.new.id, request.describe())
        self._ops.add(request)

    def _confirm_removal(self, specialist_id: str) -> None:
        status = self.cards[specialist_id].status
        user_added = status is not None and status.user_added  # its manifest goes too
        plan = self._ops.plan_removal(specialist_id, forget=user_added)
        if plan.empty:
            QMessageBox.information(self, "Cadre", f"{plan.name} has no downloaded model.")
            return
        lines = plan.describe()
        box = QMessageBox(QMessageBox.Icon.Question, "Delete?", lines[0], parent=self)
        box.setInformativeText("\n".join(line.strip() for line in lines[1:]))
        box.setStandardButtons(QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No)
        box.setDefaultButton(QMessageBox.StandardButton.No)
        self.confirmation = box  # tests answer it
        if box.exec() == QMessageBox.StandardButton.Yes:
            self._ops.remove(plan)
