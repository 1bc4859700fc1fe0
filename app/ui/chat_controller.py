"""Drives one chat: sends the user's text to the core service on the inference thread and relays
the reply's events as signals. Holds no widgets."""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import QObject, Signal

from app.core.errors import CadreError
from app.core.fit import Verdict
from app.core.routing.router import RouteDecision
from app.core.service import CadreService, ModelReady, ReplyChunk
from app.core.storage import StoredMessage
from app.core.tasks import CancelToken, Job, Progress
from app.core.turns import RerunOption, Retry
from app.ui.runner import JobFactory, JobRunner, RunningJob, report_failure

FITS_MAX_AGE_S = 30.0  # memory changes: older fits are found again (in the background) on use


class ChatController(QObject):
    reply_started = Signal(str)  # specialist display name
    text_arrived = Signal(str)
    reply_finished = Signal(object)  # StoredMessage | None
    status = Signal(str)
    known_error = Signal(object)  # CadreError
    bug = Signal(object)  # any other exception
    busy_changed = Signal(bool)
    routed = Signal(object)  # RouteDecision, or the RouteRecord of a reply written again
    rewound = Signal(object)  # messages were deleted: the question answered again, or None (edit)

    def __init__(self, service: CadreService, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._service = service
        self._inference = JobRunner("inference", max_threads=1, parent=self)
        self._routing = JobRunner("routing", max_threads=1, parent=self)
        self._job: RunningJob | None = None
        self._conversation_id: str | None = None
        self._fits: dict[str, Verdict] = {}  # for the re-run menu, found on the routing thread
        self._fits_at = float("-inf")
        self._fits_job: RunningJob | None = None
        self._fits_again = False
        self._closing = False

    @property
    def busy(self) -> bool:
        return self._job is not None

    @property
    def conversation_id(self) -> str | None:
        """The conversation the next message goes to; ``None`` until a new one's first message."""
        return self._conversation_id

    def new_conversation(self) -> None:
        self._conversation_id = None

    def open_conversation(self, conversation_id: str) -> bool:
        """Continue a stored conversation; refused (False) while a reply is being written."""
        if self.busy:
            return False
        self._conversation_id = conversation_id
        return True

    def send(self, text: str, specialist_id: str | None, collection: str | None = None) -> bool:
        """Answer ``text`` with ``specialist_id``, or with the routed specialist when ``None``;
        grounded in the documents of ``collection`` when one is given. False: refused (busy)."""
        if self.busy or not text.strip():
            return False
        if self._conversation_id is None:
            conversation = self._service.conversations.create(
                specialist_id or "", collection=collection
            )
            self._conversation_id = conversation.id
        conversation_id = self._conversation_id
        service = self._service

        def job(token: CancelToken) -> Any:
            previous = service.routing.last_specialist(service.conversations, conversation_id)
            decision = service.routing.route(
                text, previous_specialist=previous, forced=specialist_id
            )
            yield decision
            return (
                yield from service.reply_routed(
                    conversation_id, decision, token, collection=collection
                )
            )

        self._start(job)
        return True

    def regenerate(
        self,
        message_id: str,
        specialist_id: str | None = None,
        *,
        reroute: bool = False,
        collection: str | None = None,
    ) -> bool:
        """Write the last reply again: by ``specialist_id`` (a routed reply then teaches the
        router), by the router's choice (``reroute``) or by the same specialist. The reply is
        deleted at once (:attr:`rewound`), then the new one streams. False: refused."""
        if self.busy or self._conversation_id is None:
            return False
        turns = self._service.turns
        try:
            retry = turns.drop_reply(
                self._conversation_id, message_id, specialist_id, reroute=reroute
            )
        except CadreError as exc:
            self.known_error.emit(exc)
            return False
        self.rewound.emit(retry.question)

        def job(token: CancelToken) -> Any:
            yield retry
            return (yield from turns.answer_again(retry, token, collection))

        self._start(job)
        return True

    def edit(
        self,
        message_id: str,
        new_text: str,
        specialist_id: str | None,
        collection: str | None = None,
    ) -> bool:
        """Send ``new_text`` in place of the user's message ``message_id``: it and everything
        after it are deleted (:attr:`rewound`), then it is sent as :meth:`send` does."""
        if self.busy or not new_text.strip() or self._conversation_id is None:
            return False
        try:
            self._service.turns.drop_from(self._conversation_id, message_id)
        except CadreError as exc:
            self.known_error.emit(exc)
            return False
        self.rewound.emit(None)
        return self.send(new_text, specialist_id, collection)

    def message(self, message_id: str) -> StoredMessage | None:
        """A message of the current conversation (for a menu or an edit), or None."""
        if self._conversation_id is None:
            return None
        return self._service.conversations.message(self._conversation_id, message_id)

    def is_last_reply(self, message_id: str) -> bool:
        """Only the conversation's last reply can be written again."""
        if self._conversation_id is None:
            return False
        return self._service.turns.can_write_again(self._conversation_id, message_id)

    def rerun_options(self, reply: StoredMessage) -> list[RerunOption]:
        """The re-run menu's options, with the memory fits found in the background (a specialist
        not checked yet has none); old fits are found again for the next time."""
        if time.monotonic() - self._fits_at > FITS_MAX_AGE_S:
            self.refresh_fits()
        return self._service.turns.rerun_options(reply, self._fits)

    def refresh_fits(self) -> None:
        """Find whether each specialist fits in memory now, on the routing thread: it reads model
        headers (~70 ms the first time). Asked again while it runs, it runs once more after."""
        if self._closing:
            return
        if self._fits_job is not None:
            self._fits_again = True
            return
        turns = self._service.turns

        def job(token: CancelToken) -> Job[dict[str, Verdict]]:
            yield Progress("Checking memory…")
            return turns.memory_fits()

        self._fits_job = self._routing.start(
            job,
            failed=self._on_warm_up_failed,
            succeeded=self._on_fits,
            finished=self._on_fits_done,
        )

    def _on_fits(self, fits: dict[str, Verdict]) -> None:
        self._fits, self._fits_at = fits, time.monotonic()

    def _on_fits_done(self) -> None:
        self._fits_job = None
        if self._fits_again:
            self._fits_again = False
            self.refresh_fits()

    def _start(self, job: JobFactory) -> None:
        self.busy_changed.emit(True)
        self._job = self._inference.start(
            job,
            failed=self._on_failed,
            succeeded=self.reply_finished.emit,
            progress=self._on_event,
            cancelled=lambda: self.reply_finished.emit(None),
            finished=self._on_done,
        )

    def warm_up(self, specialist_id: str) -> None:
        """Load the specialist in the background now, so the first question does not wait for it."""

        def job(token: CancelToken) -> Any:
            return self._service.load_specialist(specialist_id)

        self._inference.start(
            job,
            failed=self._on_warm_up_failed,
            progress=self._on_event,
            succeeded=lambda info: self.status.emit(info.gpu_note or "Ready."),
        )

    def _on_warm_up_failed(self, exc: BaseException) -> None:
        if isinstance(exc, CadreError):
            self.status.emit(exc.message)
        else:
            self.bug.emit(exc)

    def stop(self) -> None:
        if self._job is not None:
            self._job.cancel()

    def shutdown(self) -> None:
        self._closing = True
        self._inference.cancel_all()
        self._inference.wait(10_000)
        self._routing.wait(30_000)

    def warm_up_router(self) -> None:
        """Load the embedder and train the router (seconds) beside the model warm-up."""
        self._routing.start(
            lambda token: self._service.routing.warm_up(),
            failed=self._on_warm_up_failed,
        )

    def _on_event(self, event: object) -> None:
        if isinstance(event, RouteDecision):
            self.routed.emit(event)
            self.reply_started.emit(self.speaker(event.specialist_id))
        elif isinstance(event, Retry):
            if event.specialist_id is None:
                return  # the router chooses again: its decision follows
            if event.route is not None:
                self.routed.emit(event.route)
            self.reply_started.emit(self.speaker(event.specialist_id))
        elif isinstance(event, ReplyChunk):
            self.text_arrived.emit(event.text)
        elif isinstance(event, ModelReady):
            self.status.emit(event.info.gpu_note or "Model ready.")
        elif isinstance(event, Progress):
            self.status.emit(event.message)

    def speaker(self, specialist_id: str) -> str:
        """The name a reply is shown under (the id, for a specialist since removed)."""
        try:
            return self._service.catalog.manifest(specialist_id).name
        except CadreError:
            return specialist_id or "Cadre"

    def _on_failed(self, exc: BaseException) -> None:
        self.reply_finished.emit(None)
        report_failure(exc, self.known_error, self.bug)

    def _on_done(self) -> None:
        self._job = None
        self.busy_changed.emit(False)
        self.refresh_fits()  # a model was loaded: what fits has changed
