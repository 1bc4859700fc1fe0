"""Long jobs in the terminal: a progress bar on stderr, and Ctrl+C that stops cleanly."""

from __future__ import annotations

import sys
from typing import TextIO, TypeVar

from app.cli.output import note
from app.core.downloads.transfer import DownloadProgress
from app.core.tasks import Job, Progress

T = TypeVar("T")

BAR_WIDTH = 24


class ProgressPrinter:
    """Progress on stderr: a redrawn bar on a terminal, a line per tenth when piped to a log."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._tty = self._stream.isatty()
        self._open_line = False
        self._last_step: tuple[str, int] | None = None

    def __call__(self, report: Progress) -> None:
        if report.total is None:
            self._line(report.message)
            return
        text = format_progress(report)
        if self._tty:
            self._stream.write(f"\r\033[K{text}")
            self._stream.flush()
            self._open_line = True
            return
        step = (report.message, int((report.fraction or 0) * 10))
        if step != self._last_step:
            self._last_step = step
            print(text, file=self._stream, flush=True)

    def _line(self, message: str) -> None:
        self.finish()
        self._last_step = None
        note(message)

    def finish(self) -> None:
        if self._open_line:
            self._stream.write("\n")
            self._open_line = False


def format_progress(report: Progress) -> str:
    fraction = report.fraction or 0.0
    filled = int(fraction * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    text = f"{report.message} [{bar}] {fraction:4.0%}"
    if isinstance(report, DownloadProgress):
        text += f"  {report.describe()}"
    return text


def drive(job: Job[T], stopped: str) -> T:
    """Run a job in the terminal with its progress on stderr; Ctrl+C stops it, says ``stopped``
    (what was kept, how to carry on) and re-raises."""
    printer = ProgressPrinter()
    try:
        while True:
            try:
                printer(next(job))
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
    except KeyboardInterrupt:
        job.close()
        printer.finish()
        note(stopped)
        raise
    finally:
        printer.finish()
