"""``cadre ask`` and ``cadre chat``: stream a specialist's reply to the terminal."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from app.cli.output import note
from app.core.errors import CadreError
from app.core.routing.router import RouteDecision
from app.core.service import CadreService, ModelReady, ReplyChunk, SourcesFound
from app.core.storage import StoredMessage
from app.core.tasks import CancelToken, Progress, ReplyTidier


@contextmanager
def ctrl_c_cancels(token: CancelToken) -> Iterator[None]:
    """First Ctrl+C stops the reply cleanly; a second one interrupts at once."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def choose(
    service: CadreService,
    text: str,
    *,
    forced: str | None = None,
    previous: str | None = None,
) -> RouteDecision:
    """Route ``text`` (or honour ``--specialist`` / ``@id``) and say where it goes and why."""
    if not service.embedder.loaded and not forced:
        note("Choosing a specialist…")
    decision = service.routing.route(text, previous_specialist=previous, forced=forced)
    entry = service.catalog.require_ready(decision.specialist_id)
    note(f"→ {entry.manifest.name} · {decision.reason}")
    if decision.suggestion is not None:
        note(f"  {decision.suggestion.as_text()}")
    return decision


def stream_reply(
    service: CadreService,
    conversation_id: str,
    decision: RouteDecision,
    label: str = "",
    collection: str | None = None,
) -> StoredMessage | None:
    """Stream the reply to stdout (after ``label``, once the first words arrive)."""
    token = CancelToken()
    tidy = ReplyTidier()
    pending_label = label
    specialist_id = decision.specialist_id
    with ctrl_c_cancels(token):
        events = service.reply(
            conversation_id,
            decision.text,
            specialist_id,
            token,
            decision=decision,
            collection=collection,
        )
        while True:
            try:
                event = next(events)
            except StopIteration as stop:
                message: StoredMessage | None = stop.value
                break
            if isinstance(event, ReplyChunk):
                sys.stdout.write(pending_label + tidy.feed(event.text))
                sys.stdout.flush()
                pending_label = ""
            elif isinstance(event, ModelReady):
                if event.info.n_gpu_layers or event.info.gpu_fallback:
                    note(event.info.gpu_note)
            elif isinstance(event, SourcesFound):
                found = len(event.grounding.sources)
                note(f"{found} relevant passage{'s' if found != 1 else ''} found")
            elif isinstance(event, Progress):
                note(event.message)
    print()
    _report(message, token)
    if message is not None and message.sources:
        _print_sources(message)
    return message


def _print_sources(message: StoredMessage) -> None:
    """The excerpts the answer could cite, so [n] can be checked against the file."""
    print("\nSources:")
    for source in message.sources:
        place = f", {source['place']}" if source.get("place") else ""
        print(f"  [{source['number']}] {source['path']}{place}")


def _report(message: StoredMessage | None, token: CancelToken) -> None:
    if message is None or message.finish_reason == "cancelled" or token.cancelled:
        note("[stopped]")
    if message is None:
        return
    t = message.timings
    note(
        f"{message.specialist_id} · {t.completion_tokens} tokens · "
        f"{t.decode_tokens_per_s:.1f} tokens/s · first token {t.ttft_ms / 1000:.2f} s"
        + (f" · {t.cached_tokens} prompt tokens reused" if t.cached_tokens else "")
    )


def run_ask(service: CadreService, args: argparse.Namespace) -> int:
    text = " ".join(args.question).strip() or sys.stdin.read().strip()
    if not text:
        note("Nothing to ask: give a question, or pipe one in.")
        return 2
    if args.collection:
        service.documents.store.require(args.collection)  # a typo fails before any model loads
    decision = choose(service, text, forced=args.specialist)
    conversation = service.conversations.create(decision.specialist_id, collection=args.collection)
    stream_reply(service, conversation.id, decision, collection=args.collection)
    return 0


CHAT_HELP = (
    "Each message goes to the best specialist; start with @id to choose one. /wrong ID re-asks "
    "the last question with another specialist and remembers it. /new starts over, /exit or "
    "Ctrl+D leaves, Ctrl+C stops a reply."
)


class _Chat:
    """The terminal chat loop's state: the conversation and its last question and specialist."""

    def __init__(self, service: CadreService, forced: str | None) -> None:
        self.service = service
        self.forced = forced
        self.conversation = service.conversations.create(forced or "")
        self.last_text = ""
        self.last_specialist: str | None = None

    def ask(self, text: str, forced: str | None = None) -> None:
        previous = self.last_specialist
        decision = choose(self.service, text, forced=forced or self.forced, previous=previous)
        name = self.service.catalog.manifest(decision.specialist_id).name
        self.last_text, self.last_specialist = decision.text, decision.specialist_id
        stream_reply(self.service, self.conversation.id, decision, f"{name.lower()}> ")

    def correct(self, specialist_id: str) -> None:
        if not self.last_text:
            note("There is no question to re-ask yet.")
            return
        self.service.routing.correct(self.last_text, specialist_id)
        note(f"Noted: questions like that go to {specialist_id} from now on.")
        self.ask(self.last_text, forced=specialist_id)

    def new(self) -> None:
        self.conversation = self.service.conversations.create(self.forced or "")
        self.last_text, self.last_specialist = "", None
        note("New conversation.")


def run_chat(service: CadreService, args: argparse.Namespace) -> int:
    note(CHAT_HELP)
    chat = _Chat(service, args.specialist)
    while True:
        try:
            text = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if text in ("/exit", "/quit"):
            return 0
        try:
            if text == "/new":
                chat.new()
            elif text.startswith("/wrong"):
                chat.correct(text.removeprefix("/wrong").strip() or "general")
            elif text:
                chat.ask(text)
        except CadreError as exc:  # a typo in @id or /wrong must not end the chat
            note(f"{exc.message} {exc.hint}".strip())
