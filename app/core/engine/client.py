"""The app's side of the engine: starts the worker process and talks to it through the protocol.

A crash of the worker (for example inside llama.cpp) becomes an :class:`EngineCrashedError`; the next
request starts a fresh worker and reloads the model that was loaded.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
from collections.abc import Generator, Sequence
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any

from app.core.engine.protocol import (
    ChatMessage,
    Failed,
    Finished,
    Generate,
    GenerationStats,
    LoadModel,
    ModelLoaded,
    SamplingParams,
    Shutdown,
    TokenBatch,
)
from app.core.errors import (
    CadreError,
    ChatTemplateError,
    EngineCrashedError,
    ModelLoadError,
    PromptTooLongError,
)
from app.core.tasks import CancelToken

POLL_S = 0.05
log = logging.getLogger(__name__)


class EngineBugError(Exception):
    """A bug inside the worker; carries the worker's traceback."""

    def __init__(self, message: str, detail: str) -> None:
        super().__init__(f"{message}\n\nIn the engine worker:\n{detail}")


class EngineClient:
    """Thread-compatible: one request at a time; :meth:`cancel` may be called from any thread."""

    def __init__(self, log_path: Path | None = None) -> None:
        self._log_path = log_path
        self._context = multiprocessing.get_context("spawn")
        self._process: SpawnProcess | None = None
        self._conn: Connection | None = None
        self._cancel = self._context.Event()
        self._lock = threading.Lock()
        self._next_id = 0
        self._loaded: LoadModel | None = None
        self.last_load: ModelLoaded | None = None

    @property
    def loaded(self) -> LoadModel | None:
        return self._loaded

    @property
    def pid(self) -> int | None:
        process = self._process  # read once: the inference thread may discard it meanwhile
        return process.pid if process is not None and process.is_alive() else None

    def _ensure_worker(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._conn is not None:
            return self._conn
        self._discard_worker()
        from app.core.engine.worker import worker_main

        parent, child = self._context.Pipe(duplex=True)
        log = str(self._log_path) if self._log_path else ""
        process = self._context.Process(
            target=worker_main, args=(child, self._cancel, log), name="cadre-engine", daemon=True
        )
        process.start()
        child.close()
        self._process, self._conn = process, parent
        if self._loaded is not None:  # a restarted worker gets the model back
            pending, self._loaded = self._loaded, None
            self._load(parent, pending)
        return parent

    def _discard_worker(self) -> None:
        if self._conn is not None:
            self._conn.close()
        if self._process is not None:
            self._process.join(timeout=0.1)
        self._process, self._conn = None, None

    def _receive(self, conn: Connection, cancel: CancelToken | None = None) -> Any:
        while True:
            if cancel is not None and cancel.cancelled and not self._cancel.is_set():
                self._cancel.set()
            try:
                if conn.poll(POLL_S):
                    return conn.recv()
            except (EOFError, OSError):
                pass
            else:
                if self._process is not None and self._process.is_alive():
                    continue
            if self._process is not None:
                self._process.join(timeout=1)
            code = self._process.exitcode if self._process is not None else None
            self._discard_worker()
            raise EngineCrashedError(
                f"The engine stopped unexpectedly (exit code {code}).",
                hint="The app is fine; the next message starts the engine again. "
                f"Details may be in {self._log_path}.",
            )

    def _load(self, conn: Connection, request: LoadModel) -> ModelLoaded:
        conn.send(request)
        reply = self._receive(conn)
        _raise_if_failed(reply)
        self._loaded = request
        self.last_load = reply
        return reply  # type: ignore[no-any-return]

    def load(self, request: LoadModel) -> ModelLoaded:
        """Load a model in the worker (a no-op there if it already holds the same one)."""
        with self._lock:
            return self._load(self._ensure_worker(), request)

    def generate(
        self,
        messages: Sequence[ChatMessage],
        sampling: SamplingParams,
        cancel: CancelToken | None = None,
    ) -> Generator[str, None, GenerationStats]:
        """Stream the reply's text in batches; return the stats. Honours ``cancel`` between tokens."""
        with self._lock:
            conn = self._ensure_worker()
            self._next_id += 1
            request_id = self._next_id
            self._cancel.clear()
            conn.send(Generate(request_id, tuple(messages), sampling))
            finished = False
            try:
                while True:
                    event = self._receive(conn, cancel)
                    if _is_stale(event, request_id):
                        continue
                    finished = _ends(event, request_id)
                    _raise_if_failed(event)
                    if isinstance(event, TokenBatch):
                        yield event.text
                    elif isinstance(event, Finished):
                        return event.stats
            finally:
                if not finished and self._conn is conn:
                    self._abandon(conn, request_id)

    def _abandon(self, conn: Connection, request_id: int) -> None:
        """The caller stopped listening: stop the worker and drain what it still sends."""
        self._cancel.set()
        while not _ends(self._receive(conn), request_id):
            pass

    def cancel(self) -> None:
        self._cancel.set()

    def close(self) -> None:
        with self._lock:
            if self._conn is not None and self._process is not None and self._process.is_alive():
                with contextlib.suppress(OSError):
                    self._conn.send(Shutdown())
                self._process.join(timeout=5)
                if self._process.is_alive():
                    self._process.kill()
                    self._process.join(timeout=5)
            self._discard_worker()
            self._loaded = None


def _is_stale(event: Any, request_id: int) -> bool:
    """Left over from an earlier request: ignored, even a failure (it is not this request's)."""
    stale_id = getattr(event, "request_id", request_id)
    if stale_id == request_id:
        return False
    if isinstance(event, Failed):
        log.warning("Ignored the failure of earlier engine request %d: %s", stale_id, event.message)
    return True


def _ends(event: Any, request_id: int) -> bool:
    return isinstance(event, Finished | Failed) and event.request_id == request_id


# Known errors the worker raises that callers tell apart (the API answers a prompt that is too
# long with a 400, for example); any other known error arrives as a plain CadreError.
_KNOWN_KINDS: dict[str, type[CadreError]] = {
    kind.__name__: kind for kind in (ModelLoadError, PromptTooLongError, ChatTemplateError)
}


def _raise_if_failed(event: Any) -> None:
    if isinstance(event, Failed):
        if event.known:
            raise _KNOWN_KINDS.get(event.kind, CadreError)(event.message, hint=event.hint)
        raise EngineBugError(event.message, event.detail)
