"""The endpoints: models, chat completions (whole or streamed) and embeddings.

They speak to the client through an :class:`Exchange` (the HTTP handler), so that what is answered
is kept apart from how bytes reach the socket.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Generator, Mapping
from typing import Any, Protocol, TypeVar

from app.core.api import shapes
from app.core.api.chat import Turn
from app.core.api.context import ApiContext
from app.core.api.errors import ApiError, ClientGone
from app.core.api.schema import ChatRequest, parse_chat, parse_embeddings
from app.core.api.watch import ClientWatch
from app.core.engine.protocol import GenerationStats
from app.core.errors import CadreError
from app.core.tasks import ReplyTidier

R = TypeVar("R")


class Exchange(Protocol):
    """One request and its response, as the endpoints see them."""

    @property
    def watch(self) -> ClientWatch: ...

    def read_json(self) -> dict[str, Any]: ...

    def send_json(
        self, status: int, payload: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None: ...

    def start_events(self) -> None: ...

    def send_event(self, data: dict[str, Any] | str) -> None: ...


def list_models(api: ApiContext, exchange: Exchange) -> None:
    """Every installed (ready) specialist, and ``auto``, which routes each request. Specialists
    added or removed by another Cadre while this one serves show up or go at once."""
    api.service.catalog.refresh()
    entries = [shapes.model_entry(entry) for entry in api.service.catalog.ready()]
    exchange.send_json(200, shapes.model_list([*entries, shapes.auto_entry()]))


def get_model(api: ApiContext, exchange: Exchange, model_id: str) -> None:
    if model_id == "auto":
        exchange.send_json(200, shapes.auto_entry())
        return
    api.service.catalog.refresh()
    for entry in api.service.catalog.ready():
        if entry.manifest.id == model_id:
            exchange.send_json(200, shapes.model_entry(entry))
            return
    raise ApiError(404, f"There is no model {model_id!r}.", "model_not_found", "model")


def embeddings(api: ApiContext, exchange: Exchange) -> None:
    """Needs no turn at the gate: the embedder is thread-safe and apart from the engine."""
    request = parse_embeddings(exchange.read_json())
    vectors = api.service.embedder.encode(list(request.inputs))
    tokens = sum(math.ceil(len(text) / 4) for text in request.inputs)  # an estimate
    exchange.send_json(200, shapes.embeddings(request.model, vectors, request.base64, tokens))


def chat_completions(api: ApiContext, exchange: Exchange) -> None:
    request = parse_chat(exchange.read_json())
    watch = exchange.watch
    with api.gate.turn(watch.gone):
        turn = api.chat.prepare(request)  # errors here still get a proper HTTP status
        stream = api.chat.generate(turn, watch)
        try:
            reply = _started(stream)  # and here (a prompt too long for the model: 400)
            if request.stream:
                _send_stream(exchange, request, turn, reply)
            else:
                _send_whole(exchange, turn, reply)
        finally:
            with contextlib.suppress(CadreError):  # the engine drains an abandoned generation
                stream.close()


def _started(stream: Generator[str, None, R]) -> Generator[str, None, R]:
    """``stream`` with its first piece already taken: the engine checks the prompt before the
    first token, so a refusal comes before any byte of the answer has gone out."""
    try:
        head = next(stream)
    except StopIteration as stop:
        return _finished(stop.value)
    return _resumed(head, stream)


def _finished(result: R) -> Generator[str, None, R]:
    return result
    yield  # a generator that yields nothing


def _resumed(head: str, stream: Generator[str, None, R]) -> Generator[str, None, R]:
    yield head
    return (yield from stream)


def _send_whole(
    exchange: Exchange, turn: Turn, stream: Generator[str, None, GenerationStats | None]
) -> None:
    parts: list[str] = []
    stats = drain(stream, parts.append)
    if exchange.watch.cancelled:
        raise ClientGone()
    content = "".join(parts).strip()
    body = shapes.completion(
        shapes.completion_id(), turn.specialist_id, content, stats, turn.sources
    )
    exchange.send_json(200, body)


def _send_stream(
    exchange: Exchange,
    request: ChatRequest,
    turn: Turn,
    stream: Generator[str, None, GenerationStats | None],
) -> None:
    cid, model = shapes.completion_id(), turn.specialist_id
    exchange.start_events()
    first = {"role": "assistant", "content": ""}
    exchange.send_event(shapes.chunk(cid, model, first, sources=turn.sources))
    tidy = ReplyTidier()

    def send(text: str) -> None:
        if piece := tidy.feed(text):
            exchange.send_event(shapes.chunk(cid, model, {"content": piece}))

    stats = drain(stream, send)
    if exchange.watch.cancelled:
        raise ClientGone()
    exchange.send_event(shapes.chunk(cid, model, {}, shapes.finish_reason(stats)))
    if request.include_usage:
        exchange.send_event(shapes.usage_chunk(cid, model, stats))
    exchange.send_event("[DONE]")


def drain(stream: Generator[str, None, R], on_text: Callable[[str], object]) -> R:
    """Run ``stream`` to its end, handing each piece of text on; return its result."""
    while True:
        try:
            text = next(stream)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        on_text(text)
