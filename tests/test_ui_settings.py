"""The Settings dialog and the theme, with pytest-qt: what the form shows, what it returns, inline
checks, Restore Defaults, saving over a newer file, and light/dark palettes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QDialog, QDialogButtonBox, QMessageBox, QWidget
from pytestqt.qtbot import QtBot
from shiboken6 import Shiboken

from app.core.paths import DataPaths
from app.core.settings import (
    CONTEXT_RANGE,
    SCHEMA_VERSION,
    Settings,
    load_settings,
    save_settings,
)
from app.ui.context_spin import ContextSpin
from app.ui.settings_dialog import (
    MESSAGES,
    NOT_A_FOLDER,
    SettingsDialog,
    edit_settings,
    save_with_consent,
)
from app.ui.theme import ThemeManager, is_dark
from tests.conftest import CUSTOM_SETTINGS

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("does not support propagateSizeHints"),  # the offscreen platform
]

SPECIALISTS = [("starter", "Starter"), ("general", "General"), ("code", "Code")]
Button = QDialogButtonBox.StandardButton


@pytest.fixture
def dialog(qtbot: QtBot) -> SettingsDialog:
    widget = SettingsDialog(CUSTOM_SETTINGS, SPECIALISTS, standard_data_folder="/home/me/Cadre")
    qtbot.addWidget(widget)
    widget.show()
    return widget


def click(qtbot: QtBot, dialog: SettingsDialog, which: QDialogButtonBox.StandardButton) -> None:
    qtbot.mouseClick(dialog.buttons.button(which), Qt.MouseButton.LeftButton)


def test_the_form_shows_the_current_settings(dialog: SettingsDialog) -> None:
    assert dialog.default_specialist.currentData() == "code"
    assert dialog.default_specialist.itemData(0) == "auto"
    assert dialog.theme.currentData() == "dark"
    assert dialog.threads.value() == 3
    assert dialog.gpu_offload.currentData() == "off"
    assert dialog.context_size.value() == 2048
    assert dialog.ram_budget.value() == 6.5
    assert dialog.data_folder.text() == "/srv/cadre"
    assert dialog.api_enabled.isChecked() and dialog.api_port.isEnabled()
    assert dialog.api_port.value() == 9001
    assert dialog.settings() == CUSTOM_SETTINGS
    assert dialog.problems() == {}


def test_the_api_token_is_shown_hidden_and_can_be_copied(qtbot: QtBot) -> None:
    token = "k3Y" * 12
    widget = SettingsDialog(CUSTOM_SETTINGS, SPECIALISTS, api_token=token)
    qtbot.addWidget(widget)
    assert widget.api_address.text().startswith("http://127.0.0.1:9001/v1")
    assert widget.api_token.echoMode() == widget.api_token.EchoMode.Password
    widget.copy_token_button.click()
    assert QApplication.clipboard().text() == token
    widget.show_token_button.click()
    assert widget.api_token.echoMode() == widget.api_token.EchoMode.Normal
    assert widget.api_token.text() == token and widget.api_token.isReadOnly()
    widget.api_port.setValue(9100)
    assert "127.0.0.1:9100" in widget.api_address.text()
    empty = SettingsDialog(CUSTOM_SETTINGS, SPECIALISTS)
    qtbot.addWidget(empty)
    assert not empty.copy_token_button.isEnabled()


def test_the_window_shows_the_token_cadre_serve_uses(
    qtbot: QtBot, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.core.api.token import load_or_create_token
    from app.core.service import CadreService
    from app.ui import window_extras
    from app.ui.chat_window import ChatWindow

    shown: list[str] = []

    def look(*args: object, api_token: str = "", **kwargs: object) -> None:
        shown.append(api_token)

    monkeypatch.setattr(window_extras, "edit_settings", look)
    service = CadreService()
    window = ChatWindow(service)
    qtbot.addWidget(window)
    window.extras.open_settings()
    assert shown == [load_or_create_token(service.paths.api_token)] and len(shown[0]) >= 32
    window.close()
    service.close()


def test_editing_and_accepting_returns_the_new_settings(
    qtbot: QtBot, dialog: SettingsDialog
) -> None:
    dialog.default_specialist.setCurrentIndex(dialog.default_specialist.findData("auto"))
    dialog.theme.setCurrentIndex(dialog.theme.findData("light"))
    dialog.threads.setValue(0)  # "Automatic"
    dialog.gpu_offload.setCurrentIndex(dialog.gpu_offload.findData("max"))
    dialog.context_size.setValue(0)  # "Specialist's default"
    dialog.ram_budget.setValue(12)
    dialog.data_folder.clear()
    qtbot.mouseClick(dialog.api_enabled, Qt.MouseButton.LeftButton)
    assert not dialog.api_port.isEnabled()
    click(qtbot, dialog, Button.Ok)
    assert dialog.result() == QDialog.DialogCode.Accepted
    assert dialog.settings() == Settings(
        gpu_offload="max", ram_budget_gb=12.0, theme="light", api_port=9001
    )


def test_restore_defaults_resets_the_form(qtbot: QtBot, dialog: SettingsDialog) -> None:
    click(qtbot, dialog, Button.RestoreDefaults)
    assert dialog.settings() == Settings()
    assert dialog.isVisible()  # nothing is accepted until OK
    assert dialog.threads.text().startswith("Automatic")
    assert dialog.context_size.text() == "Specialist's default"


def test_a_default_specialist_that_is_not_installed_is_kept(qtbot: QtBot) -> None:
    dialog = SettingsDialog(Settings(default_specialist="legal"), SPECIALISTS)
    qtbot.addWidget(dialog)
    assert dialog.default_specialist.currentData() == "legal"
    assert "not installed" in dialog.default_specialist.currentText()
    assert dialog.settings().default_specialist == "legal"


def test_invalid_entries_are_explained_inline_and_block_ok(
    dialog: SettingsDialog, tmp_path: Path
) -> None:
    ok = dialog.buttons.button(Button.Ok)
    dialog.context_size.setValue(100)
    assert dialog.errors["context_size"].text() == MESSAGES["context_size"]
    assert dialog.errors["context_size"].isVisible()
    assert not ok.isEnabled()
    dialog.context_size.setValue(4096)
    assert not dialog.errors["context_size"].isVisible() and ok.isEnabled()

    dialog.ram_budget.setValue(0.2)
    assert dialog.errors["ram_budget_gb"].text() == MESSAGES["ram_budget_gb"]
    dialog.ram_budget.setValue(0)
    assert ok.isEnabled()

    dialog.data_folder.setText("relative/folder")
    assert dialog.errors["data_folder"].text() == MESSAGES["data_folder"]
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    dialog.data_folder.setText(str(a_file))
    assert dialog.errors["data_folder"].text() == NOT_A_FOLDER
    assert not ok.isEnabled()
    dialog.data_folder.setText(str(tmp_path / "new-folder"))  # need not exist yet
    assert ok.isEnabled() and dialog.problems() == {}


def test_context_steps_double_and_halve(qtbot: QtBot) -> None:
    spin = ContextSpin(CONTEXT_RANGE, none_text="Specialist's default")
    qtbot.addWidget(spin)
    spin.stepBy(1)
    assert spin.value() == 256
    spin.stepBy(3)
    assert spin.value() == 2048
    spin.stepBy(-4)
    assert spin.value() == 0
    spin.setValue(100_000)
    spin.stepBy(1)
    assert spin.value() == 131_072


def test_a_context_with_no_default_stops_halving_at_the_lowest(qtbot: QtBot) -> None:
    spin = ContextSpin((256, 262_144))  # the Customise dialog's: every specialist has a size
    qtbot.addWidget(spin)
    assert spin.minimum() == 256 and spin.specialValueText() == ""
    spin.setValue(1000)
    spin.stepBy(-3)
    assert spin.value() == 256
    spin.stepBy(2)
    assert spin.value() == 1024
    spin.setValue(200_000)
    spin.stepBy(1)
    assert spin.value() == 262_144


def test_edit_settings_returns_none_when_cancelled_or_unchanged(qtbot: QtBot) -> None:
    def answer(accept: bool) -> None:
        modal = QApplication.activeModalWidget()
        assert isinstance(modal, SettingsDialog)
        if accept:
            modal.theme.setCurrentIndex(modal.theme.findData("light"))
            modal.accept()
        else:
            modal.reject()

    QTimer.singleShot(0, lambda: answer(False))
    assert edit_settings(CUSTOM_SETTINGS, SPECIALISTS) is None
    QTimer.singleShot(0, lambda: answer(True))
    changed = edit_settings(CUSTOM_SETTINGS, SPECIALISTS)
    assert changed is not None and changed.theme == "light"
    qtbot.wait(10)  # let the dialogs' deleteLater run


@pytest.fixture
def settings_path(paths: DataPaths) -> Path:
    return paths.settings


def test_save_with_consent_asks_before_replacing_a_newer_file(settings_path: Path) -> None:
    newer = {"schema_version": SCHEMA_VERSION + 1, "threads": 2}
    settings_path.write_text(json.dumps(newer))
    questions: list[str] = []

    def decline(text: str) -> bool:
        questions.append(text)
        return False

    assert not save_with_consent(None, settings_path, CUSTOM_SETTINGS, ask=decline)
    assert json.loads(settings_path.read_text()) == newer
    assert "newer version" in questions[0]
    assert save_with_consent(None, settings_path, CUSTOM_SETTINGS, ask=lambda text: True)
    assert load_settings(settings_path) == CUSTOM_SETTINGS


def test_save_with_consent_reports_a_disk_that_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    warned: list[str] = []

    def warning(parent: QWidget | None, title: str, text: str) -> QMessageBox.StandardButton:
        warned.append(text)
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "warning", warning)
    assert not save_with_consent(None, blocker / "settings.json", CUSTOM_SETTINGS)
    assert warned and "could not be saved" in warned[0]


def test_save_with_consent_saves_plainly(settings_path: Path) -> None:
    save_settings(settings_path, Settings())
    assert save_with_consent(None, settings_path, CUSTOM_SETTINGS, ask=lambda text: False)
    assert load_settings(settings_path) == CUSTOM_SETTINGS


class FakeOS:
    """The OS's colour scheme, as the test says (the offscreen platform has none)."""

    def __init__(self) -> None:
        self.scheme = Qt.ColorScheme.Unknown

    def __call__(self) -> Qt.ColorScheme:
        return self.scheme


@pytest.fixture
def os_scheme() -> FakeOS:
    return FakeOS()


@pytest.fixture
def themes(qtbot: QtBot, os_scheme: FakeOS) -> Iterator[ThemeManager]:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    manager = ThemeManager(app, os_scheme)
    yield manager
    os_scheme.scheme = Qt.ColorScheme.Unknown
    manager.apply("system")  # the platform's palette again, for the tests after this one
    Shiboken.delete(manager)


def apply(themes: ThemeManager, theme: str) -> None:
    """Apply, then let the widgets take the new palette (Qt tells them by posted events)."""
    themes.apply(theme)
    QApplication.processEvents()


def window_lightness(widget: QWidget) -> int:
    return int(widget.palette().color(widget.backgroundRole()).lightness())


def test_forced_light_and_dark_change_the_palette(qtbot: QtBot, themes: ThemeManager) -> None:
    widget = QWidget()
    qtbot.addWidget(widget)
    apply(themes, "dark")
    assert themes.dark and window_lightness(widget) < 100
    apply(themes, "light")
    assert not themes.dark and window_lightness(widget) > 180
    assert themes.theme == "light"


def test_the_dialog_follows_the_theme(dialog: SettingsDialog, themes: ThemeManager) -> None:
    apply(themes, "dark")
    assert is_dark(dialog.palette()) and is_dark(dialog.data_folder.palette())
    apply(themes, "light")
    assert not is_dark(dialog.palette())


def test_system_follows_the_os_and_its_changes(
    qtbot: QtBot, themes: ThemeManager, os_scheme: FakeOS
) -> None:
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    os_scheme.scheme = Qt.ColorScheme.Dark
    apply(themes, "system")
    assert themes.dark
    os_scheme.scheme = Qt.ColorScheme.Light
    app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert not themes.dark
    apply(themes, "dark")  # forced: an OS change no longer matters
    app.styleHints().colorSchemeChanged.emit(Qt.ColorScheme.Light)
    assert themes.dark


def test_an_unknown_theme_counts_as_system(themes: ThemeManager, os_scheme: FakeOS) -> None:
    os_scheme.scheme = Qt.ColorScheme.Dark
    apply(themes, "neon")
    assert themes.theme == "system" and themes.dark
