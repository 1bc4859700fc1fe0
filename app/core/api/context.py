"""What every request handler shares: the service, the token, the gate, and the requests in flight
(so that stopping the server can cancel them)."""

from __future__ import annotations

import hmac
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from app.core.api.chat import ChatRunner
from app.core.api.gate import GenerationGate
from app.core.api.watch import ClientWatch
from app.core.service import CadreService


@dataclass
class ApiContext:
    service: CadreService
    token: str
    port: int
    gate: GenerationGate
    log: Callable[[str], None]
    chat: ChatRunner = field(init=False)
    _in_flight: set[ClientWatch] = field(default_factory=set, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _stopping: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.chat = ChatRunner(self.service)

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """Host headers a request may carry: anything else is DNS rebinding (a web page whose
        name now points at 127.0.0.1) or a proxy, and is refused."""
        return frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})

    @property
    def allowed_origins(self) -> frozenset[str]:
        return frozenset(f"http://{host}" for host in self.allowed_hosts)

    def authorized(self, values: Sequence[str]) -> bool:
        """Exactly one ``Authorization: Bearer <token>`` header, compared in constant time."""
        if len(values) != 1:
            return False
        scheme, _, given = values[0].strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        expected = self.token.encode("ascii")
        return hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"), expected)

    def track(self, watch: ClientWatch) -> None:
        with self._lock:
            self._in_flight.add(watch)
            if self._stopping:  # arrived while the server stops: it ends at its first check
                watch.cancel()

    def untrack(self, watch: ClientWatch) -> None:
        with self._lock:
            self._in_flight.discard(watch)

    def cancel_all(self) -> None:
        """Stopping: every request in flight (waiting or generating) stops at its next check."""
        with self._lock:
            self._stopping = True
            watches = list(self._in_flight)
        for watch in watches:
            watch.cancel()
