"""Add a specialist of your own: any GGUF on the Hugging Face hub, or a GGUF file on this computer.

The form checks names with the same core checks the download and the import use, so a mistake is
shown beside the field before anything is fetched or written.
"""

from __future__ import annotations

import re
from pathlib import Path

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import CadreError
from app.core.safe_names import check_model_file_name, check_repo_id, check_revision
from app.core.user_manifests import NewSpecialist
from app.ui.access import buddy, named
from app.ui.model_ops import AddRequest
from specialists.loader import DOMAINS

HUB, FILE = 0, 1


def suggested_id(file_name: str) -> str:
    """ "Qwen2.5-Math-1.5B-Instruct-Q4_K_M.gguf" → "qwen2.5-math-1.5b-instruct-q4_k_m"."""
    stem = Path(file_name).stem.lower()
    return re.sub(r"[^a-z0-9._-]+", "-", stem).strip("-._")[:48]


class AddSpecialistDialog(QDialog):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add a specialist")
        self.resize(560, 0)
        self.tabs = QTabWidget()
        self.repo = QLineEdit()
        self.file = QLineEdit()
        self.revision = QLineEdit("main")
        self.path = QLineEdit()
        self.specialist_id = QLineEdit()
        self.domain = QComboBox()
        self.name = QLineEdit()
        self.error = QLabel()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.request: AddRequest | None = None
        self._build()

    def _build(self) -> None:
        self.repo.setPlaceholderText("owner/name, e.g. bartowski/Qwen2.5-Math-1.5B-Instruct-GGUF")
        self.file.setPlaceholderText("the .gguf file in that repository")
        hub = QFormLayout()
        hub.addRow("&Repository:", self.repo)  # a row's label names its field, & its Alt key
        hub.addRow("&File:", self.file)
        hub.addRow("Re&vision:", self.revision)
        browse = QPushButton("&Browse…")
        named(browse, "Browse for a GGUF file")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.path, 1)
        row.addWidget(browse)
        local = QFormLayout()
        local.addRow(buddy("&GGUF file:", self.path), row)
        local.addRow(QLabel("The file stays where it is; Cadre only reads it."))
        for layout, title in (
            (hub, "From the Hugging Face &hub"),
            (local, "A file on this &computer"),
        ):
            page = QWidget()
            page.setLayout(layout)
            self.tabs.addTab(page, title)
        self.domain.addItems(DOMAINS)
        self.name.setPlaceholderText("optional: taken from the model")
        self.specialist_id.setPlaceholderText("a short id, e.g. my-math")
        common = QFormLayout()
        common.addRow("&Id:", self.specialist_id)
        common.addRow("&Domain:", self.domain)
        common.addRow("&Name:", self.name)
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d9534f")
        outer = QVBoxLayout(self)
        outer.addWidget(self.tabs)
        outer.addLayout(common)
        outer.addWidget(self.error)
        outer.addWidget(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.file.textChanged.connect(self._suggest_id)
        self.path.textChanged.connect(self._suggest_id)
        self.repo.setFocus()  # the first field, not the tab bar above it

    def _browse(self) -> None:
        chosen, _ = QFileDialog.getOpenFileName(self, "Choose a GGUF model", "", "GGUF (*.gguf)")
        if chosen:
            self.path.setText(chosen)

    def _suggest_id(self, text: str) -> None:
        if not self.specialist_id.isModified():  # never overwrite what the user typed
            self.specialist_id.setText(suggested_id(Path(text.strip()).name))

    def checked_request(self) -> AddRequest:
        """The form as a request, or a CadreError that says which field is wrong."""
        new = NewSpecialist(
            self.specialist_id.text().strip(), self.domain.currentText(), self.name.text().strip()
        )
        new.check()
        if self.tabs.currentIndex() == FILE:
            text = self.path.text().strip()
            if not text:
                raise CadreError("Choose a .gguf file.")
            return AddRequest(new, path=Path(text).expanduser())
        repo = check_repo_id(self.repo.text().strip())
        revision = check_revision(self.revision.text().strip() or "main")
        return AddRequest(new, repo, check_model_file_name(self.file.text().strip()), revision)

    def accept(self) -> None:
        try:
            self.request = self.checked_request()
        except CadreError as exc:
            self.error.setText(exc.message + (f" {exc.hint}" if exc.hint else ""))
            return
        super().accept()
