"""The engine runs one generation at a time: requests take turns, first come first served.

A bounded number may wait; one more is told to come back later (429) instead of piling up. A waiter
whose client hangs up leaves the queue at once, so a dead request never holds the line.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from app.core.api.errors import ApiError, ClientGone

POLL_S = 0.2  # how often a waiter checks whether its client is still there


class GenerationGate:
    """A FIFO lock with a bounded queue. Thread-safe."""

    def __init__(self, max_waiting: int = 8) -> None:
        self._max_waiting = max_waiting
        self._cond = threading.Condition()
        self._waiting: deque[object] = deque()
        self._busy = False

    @property
    def waiting(self) -> int:
        with self._cond:
            return len(self._waiting)

    @contextmanager
    def turn(self, gone: Callable[[], bool]) -> Iterator[None]:
        """Wait for this request's turn (raises :class:`ClientGone` if ``gone()`` while waiting,
        a 429 :class:`ApiError` if the queue is full), hold it for the block."""
        self._enter(gone)
        try:
            yield
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _enter(self, gone: Callable[[], bool]) -> None:
        ticket = object()
        with self._cond:
            if len(self._waiting) >= self._max_waiting and (self._busy or self._waiting):
                raise ApiError(
                    429,
                    f"Busy: {len(self._waiting)} requests are already waiting for the model.",
                    "queue_full",
                    headers={"Retry-After": "5"},
                )
            self._waiting.append(ticket)
            try:
                while self._busy or self._waiting[0] is not ticket:
                    if gone():
                        raise ClientGone()
                    self._cond.wait(POLL_S)
            except BaseException:
                self._waiting.remove(ticket)
                self._cond.notify_all()  # the one behind may be first now
                raise
            self._waiting.popleft()
            self._busy = True
