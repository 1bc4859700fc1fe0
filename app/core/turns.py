"""Changing a conversation's last turns: write the last reply again (with the same specialist or
another one, which teaches the router when the reply had been routed), or edit a message you wrote
and send it again. The CLI and the window both use these through ``CadreService.turns``.

Deleting is one transaction, and the search index follows it (its triggers, migration m006).
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from app.core.errors import CadreError
from app.core.fit import MemorySnapshot, Verdict
from app.core.routing.desk import record_of
from app.core.routing.router import RouteDecision
from app.core.storage import StoredMessage
from app.core.storage.conversations import RouteRecord
from app.core.tasks import CancelToken, Progress

if TYPE_CHECKING:
    from app.core.service import CadreService, ReplyEvent


@dataclass(frozen=True)
class Retry:
    """A reply to write again: the question it answered, who answers now, and why."""

    conversation_id: str
    question: StoredMessage
    specialist_id: str | None  # None: the router chooses again
    route: RouteRecord | None
    teach: bool  # record a routing correction first (the dropped reply was routed automatically)
    dropped: StoredMessage | None = None  # the reply deleted: put back if no new one is written


@dataclass(frozen=True)
class RerunOption:
    """An installed specialist that could write a reply again instead of the one that did."""

    specialist_id: str
    name: str
    score: float | None  # the router's score for its domain; None when the user had chosen
    fit: Verdict | None  # whether it fits in memory now; None: not known yet


class Turns:
    def __init__(self, service: CadreService) -> None:
        self._service = service

    def drop_reply(
        self,
        conversation_id: str,
        reply_id: str,
        specialist_id: str | None = None,
        *,
        reroute: bool = False,
    ) -> Retry:
        """Delete the conversation's last reply so that :meth:`answer_again` writes it anew: by
        ``specialist_id``, by the specialist the router picks (``reroute``), or by the one that
        wrote it."""
        messages = self._service.conversations.messages(conversation_id)
        if not _is_last_reply(messages, reply_id):
            raise CadreError("Only the last reply of a conversation can be written again.")
        if reroute:
            retry = Retry(conversation_id, messages[-2], None, None, teach=False)
        else:
            retry = self._retry_of(messages[-2], messages[-1], specialist_id)
        dropped = self._truncate(conversation_id, reply_id)
        return replace(retry, dropped=dropped[0])

    def can_write_again(self, conversation_id: str, reply_id: str) -> bool:
        """Whether :meth:`drop_reply` would take ``reply_id``: the last reply, after a question."""
        return _is_last_reply(self._service.conversations.messages(conversation_id), reply_id)

    def _retry_of(
        self, question: StoredMessage, reply: StoredMessage, specialist_id: str | None
    ) -> Retry:
        """Checked before anything is deleted: the specialist that answers is ready."""
        conversation_id = question.conversation_id
        if specialist_id is None or specialist_id == reply.specialist_id:
            self._service.catalog.require_ready(reply.specialist_id)
            return Retry(conversation_id, question, reply.specialist_id, reply.route, teach=False)
        manifest = self._service.catalog.require_ready(specialist_id).manifest
        reason = f"chosen by you (re-run with {manifest.name})"  # as the router words it
        route = RouteRecord(specialist_id, manifest.domain, 1.0, "", reason, forced=True)
        routed = reply.route is not None and not reply.route.forced  # a manual pick teaches nothing
        return Retry(conversation_id, question, specialist_id, route, teach=routed)

    def answer_again(
        self, retry: Retry, cancel: CancelToken | None = None, collection: str | None = None
    ) -> Generator[ReplyEvent | RouteDecision, None, StoredMessage | None]:
        """Answer the question of a dropped reply again. A routed reply re-run with another
        specialist first becomes a routing correction, so the router learns the question; when
        the router chooses again, its decision comes first."""
        service, question = self._service, retry.question.content
        specialist_id, route = retry.specialist_id, retry.route
        if retry.teach and specialist_id is not None:
            yield Progress("Teaching the router…")
            service.routing.correct(question, specialist_id)
        if specialist_id is None:
            store = service.conversations
            previous = service.routing.last_specialist(store, retry.conversation_id)
            decision = service.routing.route(question, previous_specialist=previous)
            yield decision
            specialist_id, route = decision.specialist_id, record_of(decision)
        try:
            reply = yield from service.answer(
                retry.conversation_id,
                question,
                specialist_id,
                cancel,
                route=route,
                collection=collection,
            )
        except BaseException:
            self._put_back(retry)
            raise
        if reply is None:  # stopped before any text
            self._put_back(retry)
        return reply

    def _put_back(self, retry: Retry) -> None:
        """Nothing is lost: when the new reply fails or is stopped before it says anything, the
        reply it was to replace is stored again (a copy, as the conversation's last message)."""
        old = retry.dropped
        if old is None:
            return
        self._service.conversations.add_message(
            retry.conversation_id,
            old.role,
            old.content,
            old.specialist_id,
            finish_reason=old.finish_reason,
            timings=old.timings,
            route=old.route,
            sources=old.sources,
        )

    def regenerate(
        self,
        conversation_id: str,
        reply_id: str,
        cancel: CancelToken | None = None,
        *,
        specialist_id: str | None = None,
        reroute: bool = False,
        collection: str | None = None,
    ) -> Generator[ReplyEvent | RouteDecision, None, StoredMessage | None]:
        """:meth:`drop_reply` and :meth:`answer_again` in one call."""
        retry = self.drop_reply(conversation_id, reply_id, specialist_id, reroute=reroute)
        return (yield from self.answer_again(retry, cancel, collection))

    def memory_fits(self) -> dict[str, Verdict]:
        """Whether each installed specialist fits in memory now, by id. Reads model headers and
        memory figures (tens of milliseconds): not for a GUI thread."""
        service = self._service
        memory = MemorySnapshot.now()
        return {
            entry.manifest.id: service.fit_advice(entry, memory).verdict
            for entry in service.catalog.ready()
        }

    def rerun_options(
        self, reply: StoredMessage, fits: Mapping[str, Verdict] | None = None
    ) -> list[RerunOption]:
        """The installed specialists other than the one that wrote ``reply``, each with the
        router's score for its domain (when the reply was routed) and its memory fit: from
        ``fits`` when given (:meth:`memory_fits`, found earlier; then no file is read), else
        found now."""
        fits = self.memory_fits() if fits is None else fits
        route = reply.route
        scores = route.scores if route is not None and not route.forced else {}
        return [
            RerunOption(
                entry.manifest.id,
                entry.manifest.name,
                scores.get(entry.manifest.domain),
                fits.get(entry.manifest.id),
            )
            for entry in self._service.catalog.ready()
            if entry.manifest.id != reply.specialist_id
        ]

    def drop_from(self, conversation_id: str, message_id: str) -> StoredMessage:
        """Delete a user message and everything after it, so that an edited version can be sent
        in its place (``CadreService.reply``); returns the deleted message. A title made from
        the conversation's first question then follows the text sent in its place."""
        messages = self._service.conversations.messages(conversation_id)
        found = next((m for m in messages if m.id == message_id), None)
        if found is None or found.role != "user":
            raise CadreError("Only a message you wrote can be edited.")
        return self._truncate(conversation_id, message_id)[0]

    def _truncate(self, conversation_id: str, message_id: str) -> list[StoredMessage]:
        dropped = self._service.conversations.truncate(conversation_id, message_id)
        if not dropped:  # deleted meanwhile, by another window or process
            raise CadreError("That message is no longer in the conversation.")
        return dropped


def _is_last_reply(messages: list[StoredMessage], reply_id: str) -> bool:
    return (
        len(messages) >= 2
        and (messages[-1].id, messages[-1].role) == (reply_id, "assistant")
        and messages[-2].role == "user"
    )
