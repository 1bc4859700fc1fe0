"""Helpers for the tests that drive the chat window with pytest-qt."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pytestqt.qtbot import QtBot

from app.core.service import CadreService
from app.ui.chat_window import ChatWindow


@contextlib.contextmanager
def shown_window(qtbot: QtBot, service: CadreService) -> Iterator[ChatWindow]:
    """The chat window on ``service``, shown; afterwards the window is closed, then the service
    (the window's jobs stop before the engine and the stores they use)."""
    window = ChatWindow(service)
    qtbot.addWidget(window)
    window.show()
    yield window
    window.close()
    service.close()
