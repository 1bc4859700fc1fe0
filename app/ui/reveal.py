"""Show a file in the system's file manager with the file selected, as "Show in folder" does in
other desktop apps; where that is not possible, open its folder."""

from __future__ import annotations

import sys
from pathlib import Path

from PySide6.QtCore import QProcess, QUrl
from PySide6.QtGui import QDesktopServices

FREEDESKTOP = "org.freedesktop.FileManager1"  # Nautilus, Dolphin, Nemo, Thunar, Caja…


def reveal(path: Path) -> None:
    """Select ``path`` in the file manager when it exists; else open the folder it was in."""
    if path.is_file() and _select(path):
        return
    QDesktopServices.openUrl(QUrl.fromLocalFile(str(path.parent)))


def _select(path: Path) -> bool:
    if sys.platform == "darwin":
        return bool(QProcess.startDetached("open", ["-R", str(path)]))
    if sys.platform == "win32":
        return bool(QProcess.startDetached("explorer", [f"/select,{path}"]))
    return _select_over_dbus(path)


def _select_over_dbus(path: Path) -> bool:
    """The freedesktop file manager interface on the session bus, when one is running."""
    from PySide6.QtDBus import QDBusConnection, QDBusInterface, QDBusMessage

    bus = QDBusConnection.sessionBus()
    if not bus.isConnected():
        return False
    manager = QDBusInterface(FREEDESKTOP, "/org/freedesktop/FileManager1", FREEDESKTOP, bus)
    if not manager.isValid():
        return False
    reply = manager.call("ShowItems", [QUrl.fromLocalFile(str(path)).toString()], "")
    return reply.type() != QDBusMessage.MessageType.ErrorMessage
