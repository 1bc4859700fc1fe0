"""How the window reports failures: a plain message for problems the user can fix, and a crash
dialog with the traceback (also written to the crash log) for bugs."""

from __future__ import annotations

import sys
import traceback
from types import TracebackType

from PySide6.QtWidgets import QMessageBox, QWidget

from app.core.crashlog import write_crash_log
from app.core.errors import CadreError


def show_known_error(parent: QWidget | None, exc: CadreError) -> None:
    box = QMessageBox(QMessageBox.Icon.Warning, "Cadre", exc.message, parent=parent)
    if exc.hint:
        box.setInformativeText(exc.hint)
    box.exec()


def show_bug(parent: QWidget | None, exc: BaseException) -> None:
    text = "".join(traceback.format_exception(exc))
    path = write_crash_log(text)
    print(text, file=sys.stderr)
    box = QMessageBox(
        QMessageBox.Icon.Critical,
        "Cadre ran into a bug",
        "Something went wrong inside Cadre. Your conversations are safe.",
        parent=parent,
    )
    box.setInformativeText(f"The details were saved to {path}. Please include them in a report.")
    box.setDetailedText(text)
    box.exec()


def install_excepthook(parent: QWidget | None = None) -> None:
    """Any exception that escapes a slot becomes a crash dialog instead of a silent stderr line."""

    def hook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        if isinstance(exc, KeyboardInterrupt):
            sys.__excepthook__(kind, exc, tb)
            return
        if isinstance(exc, CadreError):
            show_known_error(parent, exc)
        else:
            show_bug(parent, exc.with_traceback(tb))

    sys.excepthook = hook
