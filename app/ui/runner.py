"""The one adapter that runs core jobs (plain generators) on Qt thread pools.

A job yields events and returns a result; here each event becomes a ``progress`` signal, the result
``succeeded``, a raised error ``failed`` and :class:`Cancelled` ``cancelled``, all delivered on the GUI
thread. The call site always gets every outcome, so it cannot forget the error path.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, SignalInstance

from app.core.errors import CadreError, Cancelled
from app.core.tasks import CancelToken

JobFactory = Callable[[CancelToken], Generator[Any, None, Any]]


class RunningJob(QObject):
    """Signals of one job, emitted from its pool thread and received on the GUI thread."""

    progress = Signal(object)
    succeeded = Signal(object)
    failed = Signal(object)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, token: CancelToken) -> None:
        super().__init__()
        self.token = token
        self.done = False

    def cancel(self) -> None:
        self.token.cancel()


class _JobRunnable(QRunnable):
    def __init__(self, factory: JobFactory, job: RunningJob) -> None:
        super().__init__()
        self._factory = factory
        self._job = job

    def run(self) -> None:
        job = self._job
        try:
            events = self._factory(job.token)
            while True:
                try:
                    event = next(events)
                except StopIteration as stop:
                    job.succeeded.emit(stop.value)
                    break
                job.progress.emit(event)
        except Cancelled:
            job.cancelled.emit()
        except BaseException as exc:
            job.failed.emit(exc)
        finally:
            job.done = True
            job.finished.emit()


class JobRunner(QObject):
    """Runs jobs on one thread pool; make one per kind of work (inference has a single thread)."""

    def __init__(self, name: str, max_threads: int, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setObjectName(name)
        self._pool.setMaxThreadCount(max_threads)
        self._jobs: set[RunningJob] = set()

    def start(
        self,
        factory: JobFactory,
        *,
        failed: Callable[[BaseException], None],
        succeeded: Callable[[Any], None] | None = None,
        progress: Callable[[Any], None] | None = None,
        cancelled: Callable[[], None] | None = None,
        finished: Callable[[], None] | None = None,
    ) -> RunningJob:
        """Start a job; every handler is connected before it runs, so no event can be missed.
        ``failed`` is required: a call site cannot forget the error path."""
        job = RunningJob(CancelToken())
        handlers = (
            (job.failed, failed),
            (job.succeeded, succeeded),
            (job.progress, progress),
            (job.cancelled, cancelled),
            (job.finished, finished),
        )
        for signal, handler in handlers:
            if handler is not None:
                signal.connect(handler)
        self._jobs.add(job)
        job.finished.connect(self._forget)  # queued: runs on the GUI thread after all else
        self._pool.start(_JobRunnable(factory, job))
        return job

    def _forget(self) -> None:
        sender = self.sender()
        if isinstance(sender, RunningJob):
            self._jobs.discard(sender)

    def cancel_all(self) -> None:
        for job in list(self._jobs):
            job.cancel()

    def wait(self, timeout_ms: int = -1) -> bool:
        return self._pool.waitForDone(timeout_ms)


def report_failure(exc: BaseException, known_error: SignalInstance, bug: SignalInstance) -> None:
    """A :class:`CadreError` is for the user to fix (a message); anything else is a bug."""
    (known_error if isinstance(exc, CadreError) else bug).emit(exc)
