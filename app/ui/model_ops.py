"""Downloads, removals and the specialist overview for the window, on their own thread pool.

Holds no widgets: views call it and listen to its signals. Several downloads may run at once; each
is keyed by specialist id so a view can show and cancel the one on its row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.core.catalog import CatalogEntry
from app.core.fit import trained_context
from app.core.installer import PullResult, RemovalPlan
from app.core.service import CadreService, SpecialistStatus
from app.core.specialist_overrides import Customisation
from app.core.tasks import CancelToken, Job, Progress
from app.core.user_manifests import NewSpecialist
from app.ui.runner import JobFactory, JobRunner, RunningJob, report_failure
from specialists import SpecialistManifest


@dataclass(frozen=True)
class AddRequest:
    """What the user asked for: a hub file (repo, file, revision) or a local ``path``."""

    new: NewSpecialist
    repo: str = ""
    file: str = ""
    revision: str = "main"
    path: Path | None = None

    def describe(self) -> str:
        if self.path is not None:
            return str(self.path)
        return f"{self.file} from {self.repo} ({self.revision})"


class ModelOps(QObject):
    progress = Signal(str, object)  # specialist id, Progress
    download_ended = Signal(str, str)  # specialist id, what happened in words
    overview_ready = Signal(object)  # list[SpecialistStatus]
    catalog_changed = Signal()
    known_error = Signal(object)  # CadreError
    bug = Signal(object)

    def __init__(self, service: CadreService, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._downloads = JobRunner("downloads", max_threads=2, parent=self)
        self._reads = JobRunner("overview", max_threads=1, parent=self)
        self._jobs: dict[str, RunningJob] = {}

    def is_downloading(self, specialist_id: str) -> bool:
        return specialist_id in self._jobs

    def refresh(self) -> None:
        """Recompute states and fit advice off the GUI thread (it reads model headers)."""

        def overview(token: object) -> Job[list[SpecialistStatus]]:
            yield Progress("Checking specialists…")
            return self._service.overview()

        self._reads.start(overview, failed=self._failed, succeeded=self.overview_ready.emit)

    def download(self, specialist_id: str) -> None:
        if specialist_id in self._jobs:
            return
        self._jobs[specialist_id] = self._downloads.start(
            lambda token: self._service.installer.pull(specialist_id, token),
            progress=lambda report: self._on_progress(specialist_id, report),
            succeeded=lambda result: self._on_done(specialist_id, result),
            failed=lambda exc: self._on_failed(specialist_id, exc),
            cancelled=lambda: self._end(specialist_id, "Paused: downloading again resumes."),
        )

    def add(self, request: AddRequest) -> None:
        """Add the user's own specialist: download a hub file (progress and cancel as for any
        download, keyed by the new id), or register a local GGUF (a header read: quick)."""
        new = request.new
        if new.id in self._jobs:
            return
        installer = self._service.installer
        if request.path is not None:
            path = request.path

            def register(token: CancelToken) -> Job[CatalogEntry]:
                yield Progress(f"Reading {path.name}…")
                return installer.import_file(path, new)

            factory: JobFactory = register
            done = "Added: the file stays where it is."
        else:
            factory = partial(
                installer.add_from_hub, new, request.repo, request.file, request.revision
            )
            done = "Downloaded, verified and added."
        self._jobs[new.id] = self._downloads.start(
            factory,
            progress=lambda report: self._on_progress(new.id, report),
            succeeded=lambda _: self._on_added(new.id, done),
            failed=lambda exc: self._on_failed(new.id, exc),
            cancelled=lambda: self._end(new.id, "Cancelled: adding it again resumes."),
        )

    def customising(self, specialist_id: str) -> tuple[SpecialistManifest, SpecialistManifest]:
        """The specialist as shipped and as the user has it (both held in memory: no I/O)."""
        catalog = self._service.catalog
        return catalog.defaults(specialist_id), catalog.manifest(specialist_id)

    @property
    def context_cap(self) -> int | None:
        return self._service.settings.context_size

    def find_trained_context(self, specialist_id: str, found: Callable[[int | None], None]) -> None:
        """Hand ``found`` the context length the specialist's model was trained on (None: not
        known, or not downloaded yet), read from its header off the GUI thread."""
        entry = self._service.catalog.entry(specialist_id)

        def read(token: CancelToken) -> Job[int | None]:
            yield Progress(f"Reading {entry.model_path.name}…")
            return trained_context(entry)

        self._reads.start(read, failed=self._failed, succeeded=found)

    def customise(self, specialist_id: str, wanted: Customisation) -> None:
        """Check and write the override here (a few hundred bytes: a mistake reaches the dialog
        at once), then reload the catalog off the GUI thread; ``catalog_changed`` follows."""
        catalog = self._service.catalog
        catalog.overrides.save(catalog.defaults(specialist_id), wanted)

        def reload(token: CancelToken) -> Job[None]:
            yield Progress("Reading the specialists…")
            catalog.refresh()

        self._reads.start(
            reload, failed=self._failed, succeeded=lambda _: self.catalog_changed.emit()
        )

    def cancel(self, specialist_id: str) -> None:
        job = self._jobs.get(specialist_id)
        if job is not None:
            job.cancel()

    def plan_removal(self, specialist_id: str, *, forget: bool = False) -> RemovalPlan:
        return self._service.installer.plan_removal(specialist_id, forget=forget)

    def remove(self, plan: RemovalPlan) -> None:
        self._service.installer.remove(plan)
        self.catalog_changed.emit()

    def shutdown(self) -> None:
        self._downloads.cancel_all()
        self._downloads.wait(10_000)
        self._reads.wait(10_000)

    def _on_progress(self, specialist_id: str, report: Progress) -> None:
        self.progress.emit(specialist_id, report)

    def _on_done(self, specialist_id: str, result: PullResult) -> None:
        self._end(specialist_id, "Downloaded and verified." if result.downloaded else "Up to date.")
        self.catalog_changed.emit()

    def _on_added(self, specialist_id: str, outcome: str) -> None:
        self._end(specialist_id, outcome)
        self.catalog_changed.emit()

    def _on_failed(self, specialist_id: str, exc: BaseException) -> None:
        self._end(specialist_id, "Failed.")
        self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        report_failure(exc, self.known_error, self.bug)

    def _end(self, specialist_id: str, outcome: str) -> None:
        self._jobs.pop(specialist_id, None)
        self.download_ended.emit(specialist_id, outcome)
