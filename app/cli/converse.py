"""``cadre ask`` and ``cadre chat``: stream a specialist's reply to the terminal."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from app.cli.output import note
from app.core.service import CadreService, ModelReady, ReplyChunk
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


def _pick_specialist(service: CadreService, requested: str | None) -> str:
    if requested:
        return service.catalog.require_ready(requested).manifest.id
    return service.default_specialist().manifest.id


def stream_reply(
    service: CadreService, conversation_id: str, text: str, specialist_id: str, label: str = ""
) -> StoredMessage | None:
    """Stream the reply to stdout (after ``label``, once the first words arrive)."""
    token = CancelToken()
    tidy = ReplyTidier()
    pending_label = label
    with ctrl_c_cancels(token):
        events = service.reply(conversation_id, text, specialist_id, token)
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
            elif isinstance(event, Progress):
                note(event.message)
    print()
    _report(message, token)
    return message


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
    specialist_id = _pick_specialist(service, args.specialist)
    conversation = service.conversations.create(specialist_id)
    stream_reply(service, conversation.id, text, specialist_id)
    return 0


def run_chat(service: CadreService, args: argparse.Namespace) -> int:
    specialist_id = _pick_specialist(service, args.specialist)
    name = service.catalog.manifest(specialist_id).name
    note(f"Chatting with {name}. /new starts over, /exit or Ctrl+D leaves, Ctrl+C stops a reply.")
    conversation = service.conversations.create(specialist_id)
    while True:
        try:
            text = input("\nyou> ").strip()
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if text in ("/exit", "/quit"):
            return 0
        if text == "/new":
            conversation = service.conversations.create(specialist_id)
            note("New conversation.")
            continue
        if text:
            stream_reply(service, conversation.id, text, specialist_id, f"{name.lower()}> ")
