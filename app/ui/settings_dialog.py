"""The Settings dialog: a form over :class:`Settings`. It shows the settings, checks what is typed
(with the core's own checks and ranges) and builds a new :class:`Settings`; it saves nothing and
applies nothing: the caller does (see :func:`save_with_consent`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.hardware import physical_cores
from app.core.settings import (
    AUTO_SPECIALIST,
    CONTEXT_RANGE,
    PORT_RANGE,
    RAM_BUDGET_RANGE,
    THREADS_RANGE,
    NewerSettingsError,
    Settings,
    problem,
    save_settings,
)
from app.ui.access import buddy, named, tab_as_shown
from app.ui.context_spin import ContextSpin

THEMES = (("system", "Follow the system"), ("light", "Light"), ("dark", "Dark"))
GPU_CHOICES = (
    ("auto", "Automatic (as much as fits)"),
    ("off", "Off (CPU only)"),
    ("max", "Maximum (every layer)"),
)
RESTART_NOTE = "Applies after Cadre restarts. Leave empty for the standard folder."


def _error_label() -> QLabel:
    label = QLabel()  # short messages, not wrapped: a wrapped label in a form gets clipped
    label.setStyleSheet("color: #d03030;")
    return label


def _align_labels(forms: Sequence[QFormLayout]) -> None:
    """One label width for every group, so the fields line up down the whole dialog."""
    labels = []
    for form in forms:
        for row in range(form.rowCount()):
            item = form.itemAt(row, QFormLayout.ItemRole.LabelRole)
            widget = item.widget() if item is not None else None
            if isinstance(widget, QLabel):
                labels.append(widget)
    width = max((label.sizeHint().width() for label in labels), default=0)
    for label in labels:
        label.setMinimumWidth(width)


class SettingsDialog(QDialog):
    def __init__(
        self,
        current: Settings,
        specialists: Sequence[tuple[str, str]],
        parent: QWidget | None = None,
        *,
        standard_data_folder: str = "",
        api_token: str = "",
    ) -> None:
        """``specialists``: (id, name) of each installed specialist, for the default's menu;
        ``standard_data_folder`` is shown greyed in the data folder's empty field; ``api_token``
        is the local API's bearer token, shown hidden with Show and Copy buttons."""
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self._specialists = list(specialists)
        self.default_specialist = QComboBox()
        self.theme = _combo(THEMES)
        self.threads = QSpinBox()
        self.gpu_offload = _combo(GPU_CHOICES)
        self.context_size = ContextSpin(CONTEXT_RANGE, none_text="Specialist's default")
        self.ram_budget = QDoubleSpinBox()
        self.data_folder = QLineEdit()
        self.browse_button = QPushButton("&Browse…")
        self.api_enabled = QCheckBox("Serve the local &API (this computer only)")
        self.api_port = QSpinBox()
        self.api_address = QLabel()
        self.api_token = QLineEdit(api_token)
        self.show_token_button = QPushButton("&Show")
        self.copy_token_button = QPushButton("C&opy")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self.errors: dict[str, QLabel] = {}  # by setting name: the message under its field
        self._error_forms: dict[str, QFormLayout] = {}
        self._configure(standard_data_folder)
        self._build()
        self._connect()
        self.show_settings(current)

    def _configure(self, standard_data_folder: str) -> None:
        self.threads.setRange(0, THREADS_RANGE[1])
        self.threads.setSpecialValueText(f"Automatic (one per core: {physical_cores()})")
        self.ram_budget.setRange(0.0, RAM_BUDGET_RANGE[1])
        self.ram_budget.setDecimals(1)
        self.ram_budget.setSingleStep(1.0)
        self.ram_budget.setSuffix(" GB")
        self.ram_budget.setSpecialValueText("Automatic (what is free)")
        self.api_port.setRange(*PORT_RANGE)
        self.api_port.setGroupSeparatorShown(False)
        self.data_folder.setPlaceholderText(standard_data_folder or "The standard folder")
        self.data_folder.setClearButtonEnabled(True)
        self.data_folder.setMinimumWidth(320)
        named(self.browse_button, "Browse for the data folder")
        named(self.show_token_button, "Show the API token", "Shows or hides it in the field")
        named(self.copy_token_button, "Copy the API token")

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        general = _form(layout, "General")
        general.addRow("&Default specialist:", self.default_specialist)  # names it, & its Alt key
        general.addRow("&Theme:", self.theme)
        performance = _form(layout, "Performance")
        performance.addRow("T&hreads:", self.threads)
        performance.addRow("&GPU offload:", self.gpu_offload)
        performance.addRow("&Context size:", self.context_size)
        self._error_row(performance, "context_size")
        performance.addRow("&Memory for models:", self.ram_budget)
        self._error_row(performance, "ram_budget_gb")
        storage = _form(layout, "Storage")
        folder = QHBoxLayout()
        folder.addWidget(self.data_folder, 1)
        folder.addWidget(self.browse_button)
        storage.addRow(buddy("Data &folder:", self.data_folder), folder)
        note = QLabel(RESTART_NOTE)
        note.setWordWrap(True)
        note.setEnabled(False)  # drawn in the palette's muted text colour
        storage.addRow("", note)
        self._error_row(storage, "data_folder")
        api = _form(layout, "Local API")
        api.addRow("", self.api_enabled)
        api.addRow("&Port:", self.api_port)
        api.addRow("Address:", self.api_address)
        api.addRow(buddy("To&ken:", self.api_token), self._token_row())
        _align_labels((general, performance, storage, api))
        layout.addStretch(1)
        layout.addWidget(self.buttons)

    def _token_row(self) -> QHBoxLayout:
        """The bearer token clients send; hidden until asked for, copied without showing it."""
        self.api_token.setReadOnly(True)
        self.api_token.setEchoMode(QLineEdit.EchoMode.Password)
        self.api_token.setPlaceholderText("made when the API first starts")
        self.show_token_button.setCheckable(True)
        self.show_token_button.toggled.connect(self._show_token)
        self.copy_token_button.clicked.connect(
            lambda: QApplication.clipboard().setText(self.api_token.text())
        )
        for button in (self.show_token_button, self.copy_token_button):
            button.setEnabled(bool(self.api_token.text()))
        row = QHBoxLayout()
        row.addWidget(self.api_token, 1)
        row.addWidget(self.show_token_button)
        row.addWidget(self.copy_token_button)
        return row

    def _show_token(self, shown: bool) -> None:
        mode = QLineEdit.EchoMode.Normal if shown else QLineEdit.EchoMode.Password
        self.api_token.setEchoMode(mode)
        self.show_token_button.setText("&Hide" if shown else "&Show")

    def _show_address(self, port: int) -> None:
        self.api_address.setText(f"http://127.0.0.1:{port}/v1 (OpenAI-compatible)")

    def _error_row(self, form: QFormLayout, name: str) -> None:
        self.errors[name] = label = _error_label()
        self._error_forms[name] = form
        form.addRow("", label)
        form.setRowVisible(label, False)

    def _connect(self) -> None:
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        restore = self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        restore.clicked.connect(self.restore_defaults)
        tab_as_shown(self.buttons)
        self.browse_button.clicked.connect(self._browse)
        self.api_enabled.toggled.connect(self.api_port.setEnabled)
        self.api_port.valueChanged.connect(self._show_address)
        self.context_size.valueChanged.connect(self._validate)
        self.ram_budget.valueChanged.connect(self._validate)
        self.data_folder.textChanged.connect(self._validate)

    def show_settings(self, settings: Settings) -> None:
        """Fill the form with ``settings``."""
        self._fill_specialists(settings.default_specialist)
        _select(self.theme, settings.theme)
        self.threads.setValue(settings.threads or 0)
        _select(self.gpu_offload, settings.gpu_offload)
        self.context_size.setValue(settings.context_size or 0)
        self.ram_budget.setValue(settings.ram_budget_gb or 0.0)
        self.data_folder.setText(settings.data_folder or "")
        self.api_enabled.setChecked(settings.api_enabled)
        self.api_port.setValue(settings.api_port)
        self._show_address(settings.api_port)
        self.api_port.setEnabled(settings.api_enabled)
        self._validate()

    def restore_defaults(self) -> None:
        self.show_settings(Settings())

    def _fill_specialists(self, chosen: str) -> None:
        combo = self.default_specialist
        combo.clear()
        combo.addItem("Automatic (the best for each message)", AUTO_SPECIALIST)
        for specialist_id, name in self._specialists:
            combo.addItem(name, specialist_id)
        if combo.findData(chosen) < 0:  # kept, so saving does not change it behind the user
            combo.addItem(f"{chosen} (not installed)", chosen)
        _select(combo, chosen)

    def settings(self) -> Settings:
        """The settings the form shows (check :meth:`problems` first)."""
        folder = self.data_folder.text().strip()
        return Settings(
            data_folder=folder or None,
            threads=self.threads.value() or None,
            gpu_offload=str(self.gpu_offload.currentData()),
            context_size=self.context_size.value() or None,
            ram_budget_gb=self.ram_budget.value() or None,
            default_specialist=str(self.default_specialist.currentData()),
            theme=str(self.theme.currentData()),
            api_enabled=self.api_enabled.isChecked(),
            api_port=self.api_port.value(),
        )

    def problems(self) -> dict[str, str]:
        """What is wrong with the form, by setting name (empty when it can be accepted)."""
        settings = self.settings()
        found = {}
        for name in self.errors:
            value = getattr(settings, name)
            if problem(name, value) is not None:
                found[name] = MESSAGES[name]
        folder = settings.data_folder
        if "data_folder" not in found and folder and Path(folder).expanduser().is_file():
            found["data_folder"] = NOT_A_FOLDER
        return found

    def _validate(self) -> None:
        found = self.problems()
        for name, label in self.errors.items():
            label.setText(found.get(name, ""))
            self._error_forms[name].setRowVisible(label, name in found)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(not found)

    def _browse(self) -> None:
        start = self.data_folder.text() or self.data_folder.placeholderText()
        folder = QFileDialog.getExistingDirectory(self, "Data folder", start)
        if folder:
            self.data_folder.setText(folder)


# What to say under a field the core's check refuses (the spin boxes keep the upper bounds).
MESSAGES = {
    "context_size": f"At least {CONTEXT_RANGE[0]} tokens, or 0 for the specialist's default.",
    "ram_budget_gb": f"At least {RAM_BUDGET_RANGE[0]:g} GB, or 0 for automatic.",
    "data_folder": "Use a full path, or leave it empty.",
}
NOT_A_FOLDER = "This is a file, not a folder."


def _combo(choices: Sequence[tuple[str, str]]) -> QComboBox:
    combo = QComboBox()
    for value, text in choices:
        combo.addItem(text, value)
    return combo


def _select(combo: QComboBox, value: str) -> None:
    combo.setCurrentIndex(max(0, combo.findData(value)))


def _form(layout: QVBoxLayout, title: str) -> QFormLayout:
    """A titled group added to ``layout``, and the form inside it."""
    box = QGroupBox(title)
    form = QFormLayout(box)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    layout.addWidget(box)
    return form


def edit_settings(
    current: Settings,
    specialists: Sequence[tuple[str, str]],
    parent: QWidget | None = None,
    *,
    standard_data_folder: str = "",
    api_token: str = "",
) -> Settings | None:
    """Show the dialog modally: the new settings, or None when cancelled or unchanged."""
    dialog = SettingsDialog(
        current,
        specialists,
        parent,
        standard_data_folder=standard_data_folder,
        api_token=api_token,
    )
    try:
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        chosen = dialog.settings()
        return None if chosen == current else chosen
    finally:
        dialog.deleteLater()


def save_with_consent(
    parent: QWidget | None,
    path: Path,
    settings: Settings,
    ask: Callable[[str], bool] | None = None,
) -> bool:
    """Save; over a newer Cadre's file, first ask (``ask`` gets the question). False when the
    user declined or the disk refused (the user has been told)."""
    ask = ask or (lambda text: _ask(parent, text))
    try:
        save_settings(path, settings)
    except NewerSettingsError as exc:
        if not ask(f"{exc.message}\n\n{exc.hint}\n\nReplace it?"):
            return False
        try:
            save_settings(path, settings, overwrite_newer=True)
        except OSError as error:
            return _refused(parent, path, error)
    except OSError as error:
        return _refused(parent, path, error)
    return True


def _ask(parent: QWidget | None, text: str) -> bool:
    answer = QMessageBox.question(parent, "Settings", text)
    return answer == QMessageBox.StandardButton.Yes


def _refused(parent: QWidget | None, path: Path, error: OSError) -> bool:
    QMessageBox.warning(parent, "Settings", f"The settings could not be saved to {path}:\n{error}")
    return False
