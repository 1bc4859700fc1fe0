"""Long work as plain generators: they yield :class:`Progress` and honour a :class:`CancelToken`.

The CLI and tests drive them with a ``for`` loop; the UI runs them on a Qt thread pool through one
small adapter (``app.ui.runner``). Nothing here knows about threads or Qt.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TypeVar

from app.core.errors import Cancelled

T = TypeVar("T")


class CancelToken:
    """Thread-safe flag a long job checks between steps."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


@dataclass(frozen=True)
class Progress:
    """One progress report: ``done`` of ``total`` (``None`` when unknown) and a short message."""

    message: str
    done: float = 0.0
    total: float | None = None

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))


Job = Generator[Progress, None, T]
"""A long job: yields progress, returns its result (``StopIteration.value``)."""


class Throttle:
    """Lets a report through at most every ``interval`` seconds (the last one always passes)."""

    def __init__(self, interval: float = 0.1, clock: Callable[[], float] = time.monotonic) -> None:
        self._interval = interval
        self._clock = clock
        self._last = float("-inf")

    def ready(self, *, final: bool = False) -> bool:
        now = self._clock()
        if final or now - self._last >= self._interval:
            self._last = now
            return True
        return False


def run_job(job: Job[T], on_progress: Callable[[Progress], None] | None = None) -> T:
    """Drive a job to completion on the calling thread and return its result."""
    while True:
        try:
            report = next(job)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        if on_progress is not None:
            on_progress(report)


class ReplyTidier:
    """Cleans a streamed reply for display: no leading whitespace, and trailing whitespace held back
    until more text follows (a reply that ends in newlines does not leave blank lines behind)."""

    def __init__(self) -> None:
        self._started = False
        self._held = ""

    def feed(self, text: str) -> str:
        if not self._started:
            text = text.lstrip()
            if not text:
                return ""
            self._started = True
        text = self._held + text
        body = text.rstrip()
        self._held = text[len(body) :]
        return body
