"""Light, dark, or whatever the OS uses: the ``theme`` setting applied to the whole application.

Qt 6.8+ can ask the platform for a colour scheme (``QStyleHints.setColorScheme``), which also
darkens native title bars. Where the platform ignores the request (the offscreen platform, some
Linux desktops) or reports a dark OS but hands out a light palette, Cadre falls back to the Fusion
style with its own palette, so the choice always shows.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QObject, Qt, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

_SCHEMES = {"light": Qt.ColorScheme.Light, "dark": Qt.ColorScheme.Dark}
Role = QPalette.ColorRole

# Role: (dark, light). Light is Fusion's own; dark is a neutral grey with the same accent.
_COLOURS: dict[QPalette.ColorRole, tuple[str, str]] = {
    Role.Window: ("#2b2b2b", "#efefef"),
    Role.WindowText: ("#e6e6e6", "#000000"),
    Role.Base: ("#1e1e1e", "#ffffff"),
    Role.AlternateBase: ("#323232", "#f7f7f7"),
    Role.ToolTipBase: ("#3a3a3a", "#ffffdc"),
    Role.ToolTipText: ("#e6e6e6", "#000000"),
    Role.PlaceholderText: ("#8c8c8c", "#808080"),
    Role.Text: ("#e6e6e6", "#000000"),
    Role.Button: ("#353535", "#efefef"),
    Role.ButtonText: ("#e6e6e6", "#000000"),
    Role.BrightText: ("#ff5050", "#ffffff"),
    Role.Light: ("#4a4a4a", "#ffffff"),
    Role.Midlight: ("#3c3c3c", "#cacaca"),
    Role.Mid: ("#262626", "#b8b8b8"),
    Role.Dark: ("#1a1a1a", "#9f9f9f"),
    Role.Shadow: ("#0a0a0a", "#767676"),
    Role.Highlight: ("#2f65ca", "#308cc6"),
    Role.HighlightedText: ("#ffffff", "#ffffff"),
    Role.Link: ("#6ea8fe", "#0000ff"),
    Role.LinkVisited: ("#c58af9", "#ff00ff"),
}
_DISABLED_TEXT = ("#7a7a7a", "#bebebe")


def palette_for(scheme: str) -> QPalette:
    """Cadre's own palette for ``"light"`` or ``"dark"`` (used with the Fusion style)."""
    column = 0 if scheme == "dark" else 1
    palette = QPalette()
    for role, colours in _COLOURS.items():
        palette.setColor(role, QColor(colours[column]))
    for role in (Role.WindowText, Role.Text, Role.ButtonText):
        palette.setColor(QPalette.ColorGroup.Disabled, role, QColor(_DISABLED_TEXT[column]))
    return palette


def is_dark(palette: QPalette) -> bool:
    return palette.color(Role.Window).lightness() < 128


class ThemeManager(QObject):
    """Applies a theme and, while it is ``"system"``, follows the OS when it switches."""

    def __init__(
        self,
        app: QApplication,
        os_scheme: Callable[[], Qt.ColorScheme] | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._app = app
        self._os_scheme = os_scheme or app.styleHints().colorScheme
        self._native_style = app.style().name()
        self._theme = "system"
        self._applying = False
        app.styleHints().colorSchemeChanged.connect(self._on_scheme_changed)

    @property
    def theme(self) -> str:
        return self._theme

    @property
    def dark(self) -> bool:
        """Whether the application now looks dark."""
        return is_dark(self._app.palette())

    def apply(self, theme: str) -> None:
        """``"system"``, ``"light"`` or ``"dark"`` (anything else counts as ``"system"``)."""
        self._theme = theme if theme in _SCHEMES else "system"
        self._applying = True
        try:
            wanted = self._request_scheme()
            self._use_native()
            if wanted is not None and self.dark != (wanted == "dark"):
                self._app.setStyle("Fusion")
                self._app.setPalette(palette_for(wanted))
        finally:
            self._applying = False

    def _request_scheme(self) -> str | None:
        """Ask the platform for the scheme; return the one wanted (None: whatever it gives)."""
        hints = self._app.styleHints()
        if self._theme in _SCHEMES:
            hints.setColorScheme(_SCHEMES[self._theme])
            return self._theme
        hints.unsetColorScheme()
        scheme = self._os_scheme()
        return next((name for name, value in _SCHEMES.items() if value == scheme), None)

    def _use_native(self) -> None:
        if self._app.style().name() != self._native_style:
            self._app.setStyle(self._native_style)
        self._app.setPalette(QPalette())  # an empty palette: the platform's own again

    @Slot(Qt.ColorScheme)
    def _on_scheme_changed(self, _scheme: Qt.ColorScheme) -> None:
        if not self._applying and self._theme == "system":
            self.apply("system")
