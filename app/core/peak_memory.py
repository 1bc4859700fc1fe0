"""The peak of Cadre's resident memory while a reply is written: this process plus the engine
worker, the sum the Resources dock shows as "Cadre's memory".

A daemon thread samples every ``interval_s`` (0.15 s; one sample reads two ``/proc`` files in
about 65 µs, 0.4% of a core in all: ``bench/peak_memory.py``), so the peak while a prompt is read,
which streams no text, is seen too. The thread runs only inside the ``with`` block and is joined
when it ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType

import psutil

from app.core.monitor import ResidentMemory

INTERVAL_S = 0.15


class PeakMemory:
    """``with PeakMemory(lambda: engine.pid) as peak: ...``, then ``peak.bytes``."""

    def __init__(
        self, worker_pid: Callable[[], int | None], interval_s: float = INTERVAL_S
    ) -> None:
        self._worker_pid = worker_pid
        self._interval_s = interval_s
        self._own = psutil.Process()
        self._worker = ResidentMemory()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.bytes = 0

    def sample(self) -> int:
        """Cadre's resident bytes now; raises the peak when higher."""
        now = int(self._own.memory_info().rss) + self._worker_rss()
        self.bytes = max(self.bytes, now)
        return now

    def _worker_rss(self) -> int:
        return self._worker.read(self._worker_pid()) or 0

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self.sample()

    def __enter__(self) -> PeakMemory:
        self.sample()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="cadre-peak-memory", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self.sample()
