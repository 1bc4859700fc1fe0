"""``cadre ask`` and ``cadre chat``: stream a specialist's reply to the terminal."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from types import FrameType

from app.cli.output import note
from app.core.errors import CadreError
from app.core.routing.router import RouteDecision
from app.core.service import CadreService, ModelReady, ReplyChunk, ReplyEvent, SourcesFound
from app.core.storage import StoredMessage
from app.core.tasks import CancelToken, Progress, ReplyTidier

ReplyEvents = Generator[ReplyEvent | RouteDecision, None, StoredMessage | None]


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
        note(f"  {decision.suggestion.as_command_hint()}")
    return decision


def stream_reply(
    service: CadreService,
    conversation_id: str,
    decision: RouteDecision,
    label: str = "",
    collection: str | None = None,
) -> StoredMessage | None:
    """Store the question, then stream its reply to stdout (after ``label``, once the first words
    arrive)."""

    def events(token: CancelToken) -> ReplyEvents:
        return service.reply_routed(conversation_id, decision, token, collection=collection)

    return print_reply(events, label)


def print_reply(
    start: Callable[[CancelToken], ReplyEvents], label: str = ""
) -> StoredMessage | None:
    """Run a reply's events (``start(token)``), the text to stdout and the rest as notes; Ctrl+C
    stops it. Returns the stored reply, or None when it was stopped before any text."""
    token = CancelToken()
    tidy = ReplyTidier()
    pending_label = label
    with ctrl_c_cancels(token):
        events = start(token)
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
            else:
                _note_event(event)
    print()
    _report(message, token)
    if message is not None and message.sources:
        _print_sources(message)
    return message


def _note_event(event: object) -> None:
    """What a reply's events other than its text say, on stderr."""
    if isinstance(event, ModelReady):
        if event.info.n_gpu_layers or event.info.gpu_fallback:
            note(event.info.gpu_note)
    elif isinstance(event, SourcesFound):
        found = len(event.grounding.sources)
        note(f"{found} relevant passage{'s' if found != 1 else ''} found")
    elif isinstance(event, Progress):
        note(event.message)


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
    "Each message goes to the best specialist; start with @id to choose one. /wrong ID writes "
    "the last reply again with another specialist (and, when the router had chosen, teaches it). "
    "/new starts over, /exit or Ctrl+D leaves, Ctrl+C stops a reply."
)


class _Chat:
    """The terminal chat loop's state: the conversation, its last reply and specialist."""

    def __init__(self, service: CadreService, forced: str | None) -> None:
        self.service = service
        self.forced = forced
        self.conversation = service.conversations.create(forced or "")
        self.last_reply: StoredMessage | None = None
        self.last_specialist: str | None = None

    def ask(self, text: str) -> None:
        previous = self.last_specialist
        decision = choose(self.service, text, forced=self.forced, previous=previous)
        name = self.service.catalog.manifest(decision.specialist_id).name
        self.last_reply, self.last_specialist = None, decision.specialist_id
        self.last_reply = stream_reply(
            self.service, self.conversation.id, decision, f"{name.lower()}> "
        )

    def correct(self, specialist_id: str) -> None:
        """``/wrong ID``: the last reply is replaced by one from ``specialist_id``, as the window's
        re-run does; a routed reply teaches the router, a specialist the user chose does not."""
        if self.last_reply is None:
            note("There is no reply to write again yet.")
            return
        turns = self.service.turns
        retry = turns.drop_reply(self.conversation.id, self.last_reply.id, specialist_id)
        name = self.service.catalog.manifest(specialist_id).name
        self.last_reply, self.last_specialist = None, specialist_id
        if retry.teach:
            note(f"Noted: questions like that go to {specialist_id} from now on.")
        note(f"→ {name} · {retry.route.reason if retry.route else 'written again'}")
        self.last_reply = print_reply(
            lambda token: turns.answer_again(retry, token), f"{name.lower()}> "
        )

    def new(self) -> None:
        self.conversation = self.service.conversations.create(self.forced or "")
        self.last_reply, self.last_specialist = None, None
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
