"""The engine worker process: owns llama.cpp, answers requests from the pipe.

Runs as a separate process so that a crash inside llama.cpp cannot take the app down, and so the GUI
never competes with generation for the GIL. Tokens go back in small batches, not one message each.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import traceback
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event
from typing import Any

from app.core.engine.protocol import Failed, Finished, Generate, LoadModel, Shutdown, TokenBatch
from app.core.errors import CadreError

BATCH_INTERVAL_S = 0.03


class _Batcher:
    """Collects streamed text and sends it at most every ``BATCH_INTERVAL_S`` seconds; the first
    text goes at once, so batching never delays the first token."""

    def __init__(self, conn: Connection, request_id: int) -> None:
        self._conn = conn
        self._request_id = request_id
        self._parts: list[str] = []
        self._last_sent = float("-inf")

    def add(self, text: str) -> None:
        self._parts.append(text)
        now = time.perf_counter()
        if now - self._last_sent >= BATCH_INTERVAL_S:
            self.flush()
            self._last_sent = now

    def flush(self) -> None:
        if self._parts:
            self._conn.send(TokenBatch(self._request_id, "".join(self._parts)))
            self._parts.clear()


def _redirect_stderr(log_path: str) -> None:
    """llama.cpp writes to fd 2; keep that in the worker log instead of the user's terminal."""
    if not log_path:
        return
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 2)
    os.close(log)
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115 - lives as long as the process


def _handle(backend: Any, request: Any, conn: Connection, cancel: Event) -> None:
    if isinstance(request, LoadModel):
        conn.send(backend.load(request))
    elif isinstance(request, Generate):
        batcher = _Batcher(conn, request.request_id)
        stats = backend.generate(request, cancel.is_set, batcher.add)
        batcher.flush()
        conn.send(Finished(request.request_id, stats))
        if not conn.poll():  # idle: get the next turn's header into the KV cache now
            _prefill(backend)


def _prefill(backend: Any) -> None:
    """Only a head start for the next turn: the request has finished, so a failure here is logged,
    never sent (the app would take it for the next request's failure)."""
    try:
        backend.prefill_next_turn()
    except Exception:
        print(traceback.format_exc(), file=sys.stderr)


def worker_main(conn: Connection, cancel: Event, log_path: str) -> None:
    """Entry point of the worker process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the app's to handle, not ours
    _redirect_stderr(log_path)
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )  # to stderr, the worker log
    from app.core.engine.llama_backend import LlamaBackend

    backend = LlamaBackend()
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            break
        if isinstance(request, Shutdown):
            break
        request_id = getattr(request, "request_id", 0)
        try:
            _handle(backend, request, conn, cancel)
        except CadreError as exc:
            kind = type(exc).__name__
            conn.send(Failed(request_id, exc.message, known=True, kind=kind, hint=exc.hint))
        except Exception as exc:
            detail = traceback.format_exc()
            print(detail, file=sys.stderr)
            conn.send(
                Failed(request_id, f"{type(exc).__name__}: {exc}", known=False, detail=detail)
            )
    backend.unload()
