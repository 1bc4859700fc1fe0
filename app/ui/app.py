"""Start the Cadre window: the composition root of the desktop app."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from app import APP_NAME, __version__
from app.core.errors import CadreError
from app.core.paths import data_paths, resources_dir
from app.core.service import CadreService
from app.core.settings import read_settings
from app.core.storage import StoredMessage
from app.ui.chat_window import ChatWindow
from app.ui.errors import install_excepthook, show_known_error
from app.ui.theme import ThemeManager

if TYPE_CHECKING:
    from app.core.api.server import ApiServer

ICON = resources_dir() / "icons" / "cadre.svg"
SELF_TEST_PROMPT = "Say hello in one short sentence."
SELF_TEST_TIMEOUT_MS = 180_000


def _application() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    assert isinstance(app, QApplication)
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    if ICON.is_file():
        app.setWindowIcon(QIcon(str(ICON)))
    return app


class _SelfTest:
    """Sends one message to the default specialist, waits for the reply, optionally screenshots."""

    def __init__(self, window: ChatWindow, screenshot: Path | None) -> None:
        self._window = window
        self._screenshot = screenshot
        self.passed = False
        window.controller.reply_finished.connect(self._on_reply)
        QTimer.singleShot(SELF_TEST_TIMEOUT_MS, lambda: QApplication.exit(1))

    def start(self) -> None:
        self._window.input.setPlainText(SELF_TEST_PROMPT)
        self._window.send()

    def _on_reply(self, message: StoredMessage | None) -> None:
        self.passed = message is not None and bool(message.content)
        QTimer.singleShot(300, self._finish)

    def _finish(self) -> None:
        if self._screenshot is not None:
            self._window.grab().save(str(self._screenshot))
        print(
            f"self-test {'passed' if self.passed else 'FAILED'}: {self._window.transcript.reply_text!r}"
        )
        QApplication.exit(0 if self.passed else 1)


def _exit_when_shown(app: QApplication) -> None:
    """Runs once the window's first paint has been processed: says so and quits."""
    print("window shown", flush=True)
    app.quit()


def run_app(
    self_test: bool = False, screenshot: Path | None = None, exit_when_shown: bool = False
) -> int:
    app = _application()
    loaded = read_settings(data_paths().settings)
    service = CadreService(settings=loaded.settings)
    themes = ThemeManager(app, parent=app)
    themes.apply(service.settings.theme)
    window = ChatWindow(service, themes)
    install_excepthook(window)
    window.show()
    if loaded.warnings:
        window.statusBar().showMessage("Settings: " + " ".join(loaded.warnings))
    api = _start_api(service, window) if service.settings.api_enabled else None
    QTimer.singleShot(0, window.document_ops.start_watching)  # catch up, then keep in sync
    probe = _SelfTest(window, screenshot) if self_test else None
    if probe is not None:
        QTimer.singleShot(0, probe.start)
    if exit_when_shown:
        QTimer.singleShot(0, lambda: _exit_when_shown(app))
    try:
        code = app.exec()
    finally:
        if api is not None:
            api.stop()
        window.document_ops.shutdown()
        window.model_ops.shutdown()
        window.controller.shutdown()
        service.close()
    return int(code)


def _start_api(service: CadreService, window: ChatWindow) -> ApiServer | None:
    """The local API, when Settings turn it on; a busy port is reported, not fatal."""
    from app.core.api.server import ApiServer

    try:
        api = ApiServer(service, service.settings.api_port)
    except CadreError as exc:
        show_known_error(window, exc)
        return None
    api.start()
    window.statusBar().showMessage(
        f"Local API on {api.base_url}; its bearer token is in {service.paths.api_token}"
    )
    return api
