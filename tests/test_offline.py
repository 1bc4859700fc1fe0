"""The offline guarantee: chat, routing and document Q&A open no network socket beyond loopback,
in this process (the autouse ``no_internet`` guard in conftest refuses and records any attempt)
and in the engine worker process (its sockets are inspected while it works)."""

from __future__ import annotations

import socket
from pathlib import Path

import psutil

from app.core.embedder import Embedder
from app.core.paths import DataPaths
from app.core.service import CadreService, ReplyChunk
from app.core.tasks import run_job
from tests.conftest import install_specialist


def test_a_grounded_routed_chat_turn_opens_no_outside_socket(
    paths: DataPaths, embedder: Embedder, tiny_model: Path, routing_ready: Path, bread_notes: Path
) -> None:
    install_specialist(paths, "tiny", tiny_model, context_size=1024)
    service = CadreService(paths, embedder=embedder)
    try:
        service.documents.add("notes", [bread_notes])
        run_job(service.documents.index("notes"))
        routed = service.routing.route("How do I make sourdough bread at home?")  # classified
        assert not routed.forced and routed.confidence > 0  # the embedding classifier ran
        decision = service.routing.route("@tiny How do I make sourdough?")
        conversation = service.conversations.create("tiny", collection="notes")
        worker_sockets: list[object] = []
        for event in service.reply_routed(conversation.id, decision, collection="notes"):
            if isinstance(event, ReplyChunk) and service.engine.pid is not None:
                worker = psutil.Process(service.engine.pid)
                worker_sockets += [
                    c for c in worker.net_connections(kind="inet") if not _loopback(c)
                ]
        assert service.engine.pid is not None, "the worker ran the reply"
        assert worker_sockets == []
        assert service.conversations.messages(conversation.id)[-1].sources
    finally:
        service.close()


def _loopback(connection: object) -> bool:
    remote = getattr(connection, "raddr", None)
    if not remote:
        return getattr(connection, "family", None) == socket.AF_UNIX  # listening: none expected
    return str(remote.ip) in ("127.0.0.1", "::1")
