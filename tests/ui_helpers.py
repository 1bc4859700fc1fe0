"""Helpers for the tests that drive the chat window with pytest-qt."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pytestqt.qtbot import QtBot

from app.core.service import CadreService
from app.ui.chat_window import ChatWindow
from app.ui.theme import palette_for
from app.ui.transcript import TranscriptView


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


def shown_transcript(qtbot: QtBot, height: int = 700) -> TranscriptView:
    """A transcript on its own, in the light theme, 900 pixels wide, shown and exposed."""
    view = TranscriptView()
    view.setPalette(palette_for("light"))
    view.resize(900, height)
    qtbot.addWidget(view)
    view.show()
    qtbot.waitExposed(view)
    return view
