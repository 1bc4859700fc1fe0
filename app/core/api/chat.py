"""Chat completions without HTTP: pick the specialist, build its prompt, ground it in a collection,
and run the engine. The handler decides how the text goes out (one JSON object, or events)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import Any

from app.core.api.errors import ApiError
from app.core.api.schema import AUTO, ChatRequest
from app.core.documents.grounding import (
    RETRIEVE,
    Grounding,
    any_relevant,
    ground,
    model_budget_chars,
)
from app.core.engine.protocol import ChatMessage, GenerationStats, ModelLoaded, SamplingParams
from app.core.engine_io import sampling_for
from app.core.errors import CadreError
from app.core.service import CadreService
from app.core.tasks import CancelToken, run_job
from specialists import SpecialistManifest


@dataclass(frozen=True)
class Turn:
    """Everything decided before the first token."""

    specialist_id: str
    messages: tuple[ChatMessage, ...]
    sampling: SamplingParams
    sources: list[dict[str, Any]] | None = None  # with a collection: the excerpts the answer cites
    canned: str | None = None  # an answer given without the model (no relevant documents)


class ChatRunner:
    """Not thread-safe on its own: call it with the generation gate held (the router and the engine
    serve one request at a time)."""

    def __init__(self, service: CadreService) -> None:
        self._service = service

    def prepare(self, request: ChatRequest) -> Turn:
        """Route, load the model and ground the question: the work before the first token."""
        specialist_id, asked = self._resolve(request)
        manifest = self._service.catalog.manifest(specialist_id)
        sampling = request.sampling(sampling_for(manifest))
        messages = prompt_messages(manifest, asked)
        if request.collection is None:
            self._load(specialist_id)
            return Turn(specialist_id, messages, sampling)
        return self._grounded(request.collection, specialist_id, messages, sampling)

    def generate(
        self, turn: Turn, cancel: CancelToken
    ) -> Generator[str, None, GenerationStats | None]:
        """The reply's text in pieces; returns the engine's stats (``None`` for a canned answer)."""
        if turn.canned is not None:
            yield turn.canned
            return None
        return (yield from self._service.engine.generate(turn.messages, turn.sampling, cancel))

    def _resolve(self, request: ChatRequest) -> tuple[str, tuple[ChatMessage, ...]]:
        self._service.catalog.refresh()  # another Cadre may have added or removed one
        if request.model != AUTO:
            self._require_ready(request.model)
            return request.model, request.messages
        try:
            decision = self._service.routing.route(request.question())
        except CadreError as exc:  # an unknown @mention, or nothing ready to answer
            raise ApiError(400, str(exc), "routing_failed", "messages") from exc
        return decision.specialist_id, with_question(request.messages, decision.text)

    def _require_ready(self, specialist_id: str) -> None:
        catalog = self._service.catalog
        if specialist_id not in catalog.ids():
            raise ApiError(
                404,
                f"There is no model {specialist_id!r}; GET /v1/models lists them, or use 'auto'.",
                "model_not_found",
                "model",
            )
        if not catalog.entry(specialist_id).ready:
            raise ApiError(
                404,
                f"The {specialist_id!r} specialist is not installed (cadre pull {specialist_id}).",
                "model_not_found",
                "model",
            )

    def _grounded(
        self,
        collection: str,
        specialist_id: str,
        messages: tuple[ChatMessage, ...],
        sampling: SamplingParams,
    ) -> Turn:
        """As ``CadreService.reply`` does: no relevant excerpt, no model run; else the model sees
        the excerpts (as much as fits its context) in place of the question."""
        documents = self._service.documents
        if collection not in {known.name for known in documents.collections()}:
            raise ApiError(
                404, f"There is no document collection {collection!r}.", "collection_not_found"
            )
        question = question_of(messages)
        hits = documents.search(collection, question, k=RETRIEVE)
        if not any_relevant(hits):
            answer = Grounding(collection, ()).not_found_reply()
            return Turn(specialist_id, messages, sampling, sources=[], canned=answer)
        info = self._load(specialist_id)
        # The budget counts every message the model will read, not only the question.
        fixed = "".join(message.content for message in messages)
        budget = model_budget_chars(info, sampling.max_tokens, fixed)
        grounding = ground(collection, hits, budget)
        grounded = with_question(messages, grounding.prompt(question))
        sources = [source.as_dict() for source in grounding.sources]
        return Turn(specialist_id, grounded, sampling, sources=sources)

    def _load(self, specialist_id: str) -> ModelLoaded:
        return run_job(self._service.load_specialist(specialist_id))


def prompt_messages(
    manifest: SpecialistManifest, messages: Sequence[ChatMessage]
) -> tuple[ChatMessage, ...]:
    """One system message first (the client's, else the specialist's), then the turns with runs of
    one role merged (strict chat templates refuse two user turns in a row)."""
    systems = [m.content for m in messages if m.role == "system"]
    merged = [ChatMessage("system", "\n\n".join(systems) if systems else manifest.system_prompt)]
    for message in messages:
        if message.role == "system":
            continue
        if len(merged) > 1 and merged[-1].role == message.role:
            merged[-1] = ChatMessage(message.role, f"{merged[-1].content}\n\n{message.content}")
        else:
            merged.append(message)
    return tuple(merged)


def question_of(messages: Sequence[ChatMessage]) -> str:
    return next(m.content for m in reversed(messages) if m.role == "user")


def with_question(messages: Sequence[ChatMessage], text: str) -> tuple[ChatMessage, ...]:
    """The messages with the last user turn's text replaced by ``text``."""
    last = max(i for i, m in enumerate(messages) if m.role == "user")
    replaced = list(messages)
    replaced[last] = ChatMessage("user", text)
    return tuple(replaced)
