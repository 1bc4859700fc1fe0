"""Document collections for the window: add folders, index, cancel, remove and watch, off the GUI
thread.

Holds no widgets: views call it and listen to its signals. Indexing runs on one thread (a second
indexer would only compete for the same cores and embedder); adding and the status overview run on
another, so a long index never holds them up. A collection asked to index while its run is under
way is indexed once more when that run ends, so a change seen mid-run is never lost.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.documents import vectors
from app.core.documents.indexer import IndexReport
from app.core.documents.library import CollectionStatus
from app.core.documents.records import Collection
from app.core.documents.watch import SETTLE_S, CollectionWatcher
from app.core.errors import CadreError
from app.core.service import CadreService
from app.core.tasks import CancelToken, Job, Progress
from app.ui.runner import JobRunner, RunningJob, report_failure

SHUTDOWN_WAIT_MS = 30_000  # an embedding batch in flight finishes before the cancel is seen


@dataclass
class _Run:
    """One queued or running index of a collection."""

    job: RunningJob | None = None
    started: bool = False  # set on the pool thread when the job begins, before it reads a file
    again: bool = False  # asked for again after it started: run once more when it ends
    remove_after: bool = False  # the collection is to be removed once this run has stopped


class DocumentOps(QObject):
    progress = Signal(str, object)  # collection name, Progress (mostly IndexProgress)
    index_queued = Signal(str)  # collection name: a run will start once the one before it ends
    index_ended = Signal(str, str)  # collection name, what happened in words
    status_ready = Signal(object)  # list[CollectionStatus]
    watch_started = Signal()  # the folders are being watched (after start_watching, or a change)
    collections_changed = Signal()  # a collection was added or removed, or its folders changed
    known_error = Signal(object)  # CadreError
    bug = Signal(object)
    _changed_on_disk = Signal(str)  # emitted on the watcher's thread, received on the GUI thread

    def __init__(
        self, service: CadreService, parent: QObject | None = None, *, settle_s: float = SETTLE_S
    ) -> None:
        super().__init__(parent)
        self._service = service
        self._settle_s = settle_s
        self._indexing = JobRunner("indexing", max_threads=1, parent=self)
        self._reads = JobRunner("documents", max_threads=1, parent=self)
        self._runs: dict[str, _Run] = {}
        self._watcher: CollectionWatcher | None = None
        self._watched: dict[str, tuple[str, ...]] = {}
        self._watching = False
        self._catch_up = False
        self._closed = False
        self._changed_on_disk.connect(self._on_changed_on_disk)
        self.collections_changed.connect(self.refresh)

    def is_indexing(self, name: str) -> bool:
        return name in self._runs

    def refresh(self) -> None:
        """Read every collection's counts and skipped files off the GUI thread (and, the first
        time, load the vector search library, so that indexing or a search never pays for it)."""

        def status(token: CancelToken) -> Job[list[CollectionStatus]]:
            yield Progress("Reading collections…")
            vectors.preload()
            return self._service.documents.status()

        if not self._closed:
            self._reads.start(status, failed=self._failed, succeeded=self._on_status)

    def add_folders(self, name: str, paths: Sequence[Path]) -> None:
        """Add folders or files to ``name`` (created if new), then index it."""

        def add(token: CancelToken) -> Job[Collection]:
            yield Progress(f"Adding to {name!r}…")
            return self._service.documents.add(name, paths)

        if not self._closed:
            self._reads.start(add, failed=self._failed, succeeded=self._on_added)

    def index(self, name: str) -> None:
        """Bring ``name`` up to date; if it is being indexed already, once more afterwards."""
        if self._closed:
            return
        run = self._runs.get(name)
        if run is not None:
            run.again = run.again or run.started  # a queued run will see the change anyway
            return
        run = self._runs[name] = _Run()

        def job(token: CancelToken) -> Job[IndexReport]:
            token.raise_if_cancelled()  # cancelled while it waited in the queue
            run.started = True
            return (yield from self._service.documents.index(name, token))

        run.job = self._indexing.start(
            job,
            progress=lambda report: self.progress.emit(name, report),
            succeeded=lambda report: self._end(name, _outcome(report)),
            failed=lambda exc: self._on_index_failed(name, exc),
            cancelled=lambda: self._end(name, "Cancelled."),
        )
        self.index_queued.emit(name)

    def cancel(self, name: str) -> None:
        run = self._runs.get(name)
        if run is not None and run.job is not None:
            run.again = False
            run.job.cancel()

    def remove(self, name: str) -> None:
        """Delete the collection and its index (never the user's files), after any run stops."""
        run = self._runs.get(name)
        if run is None:
            self._start_removal(name)
            return
        self.cancel(name)
        run.remove_after = True

    def start_watching(self) -> None:
        """Catch up every collection once (what changed while Cadre was closed), then keep them in
        sync with their folders."""
        self._watching = self._catch_up = True
        self.refresh()

    def stop_watching(self) -> None:
        self._watching = self._catch_up = False
        self._watch({})

    def shutdown(self) -> None:
        """Stop watching, cancel any index, and wait for the threads (before the service closes)."""
        self._closed = True
        self._watching = self._catch_up = False
        for run in self._runs.values():
            run.again = run.remove_after = False
        self._indexing.cancel_all()
        self._indexing.wait(SHUTDOWN_WAIT_MS)
        self._reads.wait(SHUTDOWN_WAIT_MS)
        if self._watcher is not None:  # its start (if any) is over: the pools are idle
            self._watcher.stop()
        self._watcher, self._watched = None, {}

    def _start_removal(self, name: str) -> None:
        def remove(token: CancelToken) -> Job[None]:
            yield Progress(f"Removing {name!r}…")
            self._service.documents.remove(name)

        # On the indexing thread: after whatever index of it was still stopping.
        self._indexing.start(
            remove, failed=self._failed, succeeded=lambda _: self.collections_changed.emit()
        )

    def _on_added(self, collection: Collection) -> None:
        self.collections_changed.emit()
        self.index(collection.name)

    def _on_status(self, statuses: list[CollectionStatus]) -> None:
        self.status_ready.emit(statuses)
        if not self._watching or self._closed:
            return
        self._watch({status.name: status.sources for status in statuses})
        if self._catch_up:
            self._catch_up = False
            for status in statuses:
                self.index(status.name)

    def _watch(self, sources: dict[str, tuple[str, ...]]) -> None:
        """Replace the watcher when the collections or their folders changed. The swap runs on the
        one-thread read pool: starting registers every folder below the sources (inotify walks
        them), and one thread keeps a stop and a start from overlapping."""
        if sources == self._watched:
            return
        old, new = self._watcher, None
        if sources:
            new = CollectionWatcher(sources, self._changed_on_disk.emit, self._settle_s)
        self._watcher, self._watched = new, sources
        self._reads.start(
            lambda token: _swap(old, new),
            failed=lambda exc: self._on_swap_failed(new, exc),
            succeeded=lambda _: self._on_swapped(new),
        )

    def _on_changed_on_disk(self, name: str) -> None:
        if name in self._watched:  # not a collection removed since the watcher started
            self.index(name)

    def _on_swapped(self, new: CollectionWatcher | None) -> None:
        if new is not None:
            self.watch_started.emit()

    def _on_swap_failed(self, new: CollectionWatcher | None, exc: BaseException) -> None:
        if self._watcher is new:  # keep the wish (the same sources are not retried) but no watcher
            self._watcher = None
        self._failed(exc)

    def _on_index_failed(self, name: str, exc: BaseException) -> None:
        self._end(name, "Failed.")
        self._failed(exc)

    def _end(self, name: str, outcome: str) -> None:
        run = self._runs.pop(name, None)
        self.index_ended.emit(name, outcome)
        if run is None or self._closed:
            return
        if run.remove_after:
            self._start_removal(name)
        elif run.again:
            self.index(name)

    def _failed(self, exc: BaseException) -> None:
        report_failure(exc, self.known_error, self.bug)


def _swap(old: CollectionWatcher | None, new: CollectionWatcher | None) -> Job[None]:
    yield Progress("Watching folders…")
    if old is not None:
        old.stop()
    if new is None:
        return
    try:
        new.start()
    except OSError as exc:  # on Linux, typically the inotify watch limit
        with contextlib.suppress(RuntimeError):  # its threads may not have started
            new.stop()
        raise CadreError(
            f"Cadre cannot watch the collections' folders for changes: {exc.strerror or exc}",
            hint="Use Re-index after changing files. On Linux, raising "
            "fs.inotify.max_user_watches lets Cadre watch large folders.",
        ) from exc


def _outcome(report: IndexReport) -> str:
    """The report in words, without the collection's name (the view shows it beside)."""
    return report.describe().removeprefix(f"{report.collection!r}: ")
