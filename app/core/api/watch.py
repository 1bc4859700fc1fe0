"""A cancel token that also notices when the HTTP client hangs up.

The engine client polls its cancel token every few tens of milliseconds while it waits for tokens,
so a client that disconnects (even before the first token, or while waiting its turn) stops the
generation and frees the engine without a watcher thread per request.
"""

from __future__ import annotations

import select
import socket
import time

from app.core.tasks import CancelToken

CHECK_EVERY_S = 0.1


def peer_closed(sock: socket.socket) -> bool:
    """True when the other end has closed the connection (or it broke)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):  # reset, or already closed on our side
        return True


class ClientWatch(CancelToken):
    """Cancelled on :meth:`cancel` (server stopping) or once the client's socket is closed."""

    def __init__(self, sock: socket.socket) -> None:
        super().__init__()
        self._sock = sock
        self._checked = 0.0

    @property
    def cancelled(self) -> bool:
        if super().cancelled:
            return True
        now = time.monotonic()
        if now - self._checked < CHECK_EVERY_S:
            return False
        self._checked = now
        if peer_closed(self._sock):
            self.cancel()
            return True
        return False

    def gone(self) -> bool:
        return self.cancelled
