"""The local API server: bound to 127.0.0.1 only, one thread per connection, stoppable.

``cadre serve`` runs it in the foreground; the window (later) or a test runs it on a thread with
:meth:`ApiServer.start`. Stopping cancels what is in flight, unblocks idle connections and joins
every thread it started.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import sys
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from app import API_PORT
from app.core.api.context import ApiContext
from app.core.api.gate import GenerationGate
from app.core.api.handler import ApiHandler, ApiHTTPServer
from app.core.api.token import load_or_create_token
from app.core.errors import CadreError
from app.core.service import CadreService

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
MAX_CONNECTIONS = 64  # handler threads at once; more connections are closed at once
MAX_WAITING = 8  # generation requests waiting their turn; more get a 429

_Request = socket.socket | tuple[bytes, socket.socket]  # socketserver's request type


class _Server(ApiHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread
    block_on_close = True
    allow_reuse_address = sys.platform != "win32"  # on Windows it would let others share the port

    def __init__(self, address: tuple[str, int], api_factory: Callable[[int], ApiContext]) -> None:
        super().__init__(address, ApiHandler)
        self.api = api_factory(self.server_address[1])
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: _Request, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def process_request_thread(self, request: _Request, client_address: Any) -> None:
        sock = request if isinstance(request, socket.socket) else request[1]
        with self._open_lock:
            self._open.add(sock)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._open_lock:
                self._open.discard(sock)
            self._slots.release()

    def unblock_readers(self) -> None:
        """Connections waiting for (the rest of) a request see the end of it at once; answers
        being written can still finish."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RD)


class ApiServer:
    """An OpenAI-compatible API over ``service`` on http://127.0.0.1:PORT/v1.

    Binds in the constructor (so a busy port fails at once); ``port=0`` picks a free one.
    """

    def __init__(
        self,
        service: CadreService,
        port: int = API_PORT,
        *,
        host: str = HOST,
        max_waiting: int = MAX_WAITING,
        on_log: Callable[[str], None] | None = None,
    ) -> None:
        if host != HOST:
            raise CadreError(
                f"The API only listens on {HOST}, not {host!r}.",
                hint="It serves this computer only; other machines cannot reach it.",
            )
        token = load_or_create_token(service.paths.api_token)
        gate = GenerationGate(max_waiting)
        write = on_log or log.info

        def context(bound_port: int) -> ApiContext:
            return ApiContext(service, token, bound_port, gate, write)

        self._httpd = _bind(port, context)
        self._thread: threading.Thread | None = None
        self._serving = False

    @property
    def port(self) -> int:
        return self._httpd.api.port

    @property
    def token(self) -> str:
        return self._httpd.api.token

    @property
    def base_url(self) -> str:
        return f"http://{HOST}:{self.port}/v1"

    def serve_forever(self) -> None:
        """Serve on this thread until :meth:`stop` (from another thread) or Ctrl+C."""
        self._serving = True
        self._httpd.serve_forever(poll_interval=0.2)

    def start(self) -> None:
        """Serve on a thread of its own."""
        self._serving = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.2,), name="cadre-api"
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting, cancel the requests in flight, and wait for their threads."""
        if self._serving:
            self._httpd.shutdown()  # returns once serve_forever has returned
            self._serving = False
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._httpd.api.cancel_all()
        self._httpd.unblock_readers()
        self._httpd.server_close()

    def __enter__(self) -> ApiServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _bind(port: int, context: Callable[[int], ApiContext]) -> _Server:
    if not 0 <= port <= 65535:
        raise CadreError(
            f"{port} is not a port number.", hint="Use 1-65535, or 0 for any free one."
        )
    try:
        return _Server((HOST, port), context)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise CadreError(
                f"Port {port} is already in use.",
                hint="Another program (or another cadre serve) has it: try --port 0 or another.",
            ) from exc
        raise CadreError(f"Cannot listen on {HOST}:{port}: {exc.strerror or exc}") from exc
