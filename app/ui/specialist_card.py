"""One specialist as a card: what it is, its licence, whether it fits this computer, and the
download / cancel / resume / delete buttons with a progress bar. Shows what it is told; the
Specialists window decides."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.core.downloads.transfer import DownloadProgress
from app.core.fit import Verdict
from app.core.service import SpecialistStatus
from app.core.tasks import Progress
from app.core.units import human_bytes
from app.ui.access import named

VERDICT_STYLE = {  # mark and colour; both read on light and dark backgrounds
    Verdict.FITS: ("✓", "#2e9d5b"),
    Verdict.TIGHT: ("!", "#d08a1c"),
    Verdict.WONT_FIT: ("✗", "#d9534f"),
}
CUSTOMISED_STYLE = (  # a small outlined tag, in the link colour (it reads on light and dark)
    "QLabel#customisedMark { color: palette(link); border: 1px solid palette(link);"
    " border-radius: 3px; padding: 0px 4px; font-size: 11px; }"
)
STATE_WORDS = {
    "installed": "Installed",
    "embedded": "Built in",
    "not installed": "Not installed",
    "partly downloaded": "Partly downloaded",
}


def _label(text: str = "", *, rich: bool = False) -> QLabel:
    label = QLabel(text)
    label.setWordWrap(True)
    label.setTextFormat(Qt.TextFormat.RichText if rich else Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


def _customised_mark() -> QLabel:
    label = QLabel("Customised")
    label.setObjectName("customisedMark")
    label.setStyleSheet(CUSTOMISED_STYLE)
    label.setToolTip("Your own system prompt or settings are in use: see Customise…")
    return label


def model_line(status: SpecialistStatus) -> str:
    """ "3.09B parameters · Q4_K_M · 2.1 GB download · from Qwen/Qwen2.5-Coder-3B-Instruct-GGUF"."""
    model = status.entry.manifest.model
    parts = [f"{model.parameters} parameters" if model.parameters else "", model.quantization]
    if model.size_bytes:
        noun = "download" if model.source == "huggingface" else "file"
        parts.append(f"{human_bytes(model.size_bytes)} {noun}")
    where = {"huggingface": f"from {model.repo}", "pypi": "ships with Cadre", "local": model.path}
    parts.append(where.get(model.source, ""))
    return " · ".join(part for part in parts if part)


class SpecialistCard(QFrame):
    download_requested = Signal(str)
    cancel_requested = Signal(str)
    remove_requested = Signal(str)
    customise_requested = Signal(str)

    def __init__(self, specialist_id: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.specialist_id = specialist_id
        self.setObjectName("specialistCard")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.title = _label(rich=True)
        self.state = QLabel()
        self.customised = _customised_mark()
        self.model = _label()
        self.description = _label()
        self.licence = _label()
        self.fit = _label(rich=True)
        self.bar = QProgressBar()
        self.detail = _label()
        self.download_button = QPushButton("Download")
        self.cancel_button = QPushButton("Cancel")
        self.remove_button = QPushButton("Delete…")
        self.customise_button = QPushButton("Customise…")
        self.downloading = False
        self.status: SpecialistStatus | None = None
        self._build()

    def _build(self) -> None:
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(self.customised, 0, Qt.AlignmentFlag.AlignTop)
        top.addSpacing(6)
        top.addWidget(self.state, 0, Qt.AlignmentFlag.AlignTop)
        self.customise_button.setToolTip("System prompt, sampling and context size")
        self.bar.setTextVisible(False)
        self.bar.setFixedHeight(8)
        self.bar.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.detail, 1)
        buttons.addStretch(0)  # takes the room only while the detail line is hidden
        for button in self.buttons:
            buttons.addWidget(button)
        self.customise_button.clicked.connect(
            lambda: self.customise_requested.emit(self.specialist_id)
        )
        self.download_button.clicked.connect(
            lambda: self.download_requested.emit(self.specialist_id)
        )
        self.cancel_button.clicked.connect(lambda: self.cancel_requested.emit(self.specialist_id))
        self.remove_button.clicked.connect(lambda: self.remove_requested.emit(self.specialist_id))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(12, 10, 12, 10)
        layout.setSpacing(3)
        layout.addLayout(top)
        for widget in (self.model, self.description, self.licence, self.fit, self.bar):
            layout.addWidget(widget)
        layout.addLayout(buttons)
        self._update_buttons()

    def show_status(self, status: SpecialistStatus) -> None:
        """Fill the card from the overview (the bar and detail keep a download's live figures)."""
        self.status = status
        manifest = status.entry.manifest
        domain = html.escape(manifest.domain)
        self.title.setText(f"<b>{html.escape(manifest.name)}</b> &nbsp;<small>{domain}</small>")
        self.model.setText(model_line(status))
        self.description.setText(manifest.description)
        self.description.setVisible(bool(manifest.description))
        origin = "added by you" if status.user_added else "built in"
        self.licence.setText(f"Licence: {manifest.license or 'not stated'} · {origin}")
        mark, colour = VERDICT_STYLE[status.fit.verdict]
        summary = html.escape(status.fit.summary[:1].upper() + status.fit.summary[1:])
        self.fit.setText(f'<span style="color:{colour}"><b>{mark}</b> {summary}</span>')
        self.fit.setToolTip(_fit_tooltip(status))
        if not self.downloading:
            self.state.setText(_state_words(status))
        self._update_buttons()

    def show_pending(self, title: str, line: str) -> None:
        """A card for a specialist being added, before the catalog knows it."""
        self.title.setText(f"<b>{html.escape(title)}</b>")
        self.model.setText(line)
        for label in (self.description, self.licence, self.fit):
            label.hide()

    def show_progress(self, report: Progress) -> None:
        self.downloading = True
        self.state.setText("Downloading" if isinstance(report, DownloadProgress) else "Working")
        self.bar.show()
        if report.fraction is None:
            self.bar.setRange(0, 0)  # busy, no measure yet
        else:
            self.bar.setRange(0, 1000)
            self.bar.setValue(round(report.fraction * 1000))
        text = report.message
        if isinstance(report, DownloadProgress):
            text = f"{report.fraction or 0:.0%} · {report.describe()}"
        self.detail.setText(text)
        self._update_buttons()

    def show_outcome(self, outcome: str) -> None:
        self.downloading = False
        self.bar.hide()
        self.detail.setText(outcome)
        if self.status is not None:
            self.state.setText(_state_words(self.status))
        self._update_buttons()

    @property
    def buttons(self) -> tuple[QPushButton, ...]:
        """In the order they sit on the card (and Tab visits them)."""
        return (self.customise_button, self.download_button, self.cancel_button, self.remove_button)

    def _name_buttons(self) -> None:
        """ "Download Code", not five buttons called "Download": each says which specialist it
        acts on, and describes the card (what a sighted user reads beside it)."""
        status = self.status
        if status is None:
            return
        manifest = status.entry.manifest
        about = f"{model_line(status)}. {status.fit.summary}"
        for button in self.buttons:
            named(button, f"{button.text().rstrip('…')} {manifest.name}", about)
        self.setAccessibleName(manifest.name)

    def _update_buttons(self) -> None:
        status = self.status
        state = status.state if status else ""
        hub = status is not None and status.entry.manifest.model.source == "huggingface"
        self.download_button.setVisible(hub and not self.downloading)
        self.download_button.setText(
            {"installed": "Check for update", "partly downloaded": "Resume"}.get(state, "Download")
        )
        self.cancel_button.setVisible(self.downloading)
        built_in = status is not None and _ships_with_cadre(status)
        removable = state in ("installed", "partly downloaded") and not built_in  # it ships
        user_added = status is not None and status.user_added
        self.remove_button.setVisible((removable or user_added) and not self.downloading)
        self.detail.setVisible(bool(self.detail.text()))  # no empty line under a quiet card
        ready = status is not None and status.entry.ready
        self.customise_button.setVisible(ready and not self.downloading)
        self.customised.setVisible(status is not None and status.customised)
        self._name_buttons()


def _ships_with_cadre(status: SpecialistStatus) -> bool:
    """The built-in starter: its model comes from a Python package, not a download."""
    return status.entry.manifest.model.source == "pypi"


def _state_words(status: SpecialistStatus) -> str:
    if _ships_with_cadre(status):
        return STATE_WORDS["embedded"]  # ready or assembled on first use: it ships with Cadre
    return STATE_WORDS.get(status.state, status.state)


def _fit_tooltip(status: SpecialistStatus) -> str:
    fit = status.fit
    lines = [
        f"Needs about {human_bytes(fit.ram_bytes)} of RAM"
        + (f" and {human_bytes(fit.vram_bytes)} of GPU memory" if fit.vram_bytes else ""),
        f"  weights {human_bytes(fit.need.weights_bytes)}, "
        f"context cache {human_bytes(fit.need.kv_bytes)} ({fit.need.basis})",
        f"Free now: {human_bytes(fit.memory.available_ram)} RAM",
    ]
    if fit.memory.free_vram is not None:
        lines.append(f"  and {human_bytes(fit.memory.free_vram)} on {fit.memory.gpu_name}")
    return "\n".join(lines)
