"""The main window's menus and docks: View (the resource monitor) and Settings.

Kept apart from ``chat_window`` so the window module only lays out the chat itself.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow

from app.core.errors import CadreError
from app.core.monitor import EngineModels, GenerationMeter
from app.core.service import CadreService
from app.ui.chat_controller import ChatController
from app.ui.monitor_dock import ResourceDock
from app.ui.settings_dialog import edit_settings, save_with_consent
from app.ui.theme import ThemeManager


class WindowExtras:
    """Adds the Resources dock and the View/Settings menus to ``window``."""

    def __init__(
        self,
        window: QMainWindow,
        service: CadreService,
        controller: ChatController,
        themes: ThemeManager | None,
    ) -> None:
        self._window = window
        self._service = service
        self._themes = themes
        self.meter = GenerationMeter()
        self.resources = ResourceDock(
            lambda: service.engine.pid,
            EngineModels(service.engine, service.catalog),
            self.meter,
            window,
        )
        window.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.resources)
        controller.busy_changed.connect(self._on_busy)
        controller.text_arrived.connect(self.meter.text)
        self._build_menus()

    def _on_busy(self, busy: bool) -> None:
        if busy:
            self.meter.started()
        else:
            self.meter.finished()
        self.resources.refresh_speed()

    def _build_menus(self) -> None:
        menu = self._window.menuBar()
        cadre = menu.addMenu("&Cadre")
        settings = QAction("&Settings…", self._window)
        settings.setShortcut(QKeySequence.StandardKey.Preferences)
        settings.setMenuRole(QAction.MenuRole.PreferencesRole)
        settings.triggered.connect(self.open_settings)
        cadre.addAction(settings)
        view = menu.addMenu("&View")
        view.addAction(self.resources.toggleViewAction())

    def _api_token(self) -> str:
        """The local API's token (made now if it never ran), or "" with the reason shown."""
        from app.core.api.token import load_or_create_token  # the API package: only when asked

        try:
            return load_or_create_token(self._service.paths.api_token)
        except CadreError as exc:
            self._window.statusBar().showMessage(exc.message)
            return ""

    def open_settings(self) -> None:
        service = self._service
        ready = [(e.manifest.id, e.manifest.name) for e in service.catalog.ready()]
        chosen = edit_settings(
            service.settings,
            ready,
            self._window,
            standard_data_folder=str(service.paths.data),
            api_token=self._api_token(),
        )
        if chosen is None or not save_with_consent(self._window, service.paths.settings, chosen):
            return
        service.settings = chosen  # threads, context, GPU: from the next model load
        if self._themes is not None:
            self._themes.apply(chosen.theme)
        self._window.statusBar().showMessage(
            "Settings saved. Engine settings apply from the next model load; the data folder "
            "and the local API after a restart."
        )
