"""The HTTP side of the local API: who may ask (Host, Origin, token), how big a request may be, and
how answers and errors go out (JSON, or server-sent events for a stream).

Checks run in this order, before any body is read: Host (403), Origin (403), token (401), path and
method (404, 405), size (413). One request per connection (HTTP/1.0): a stream ends when the
connection closes, and a client that hangs up is noticed on the socket.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import traceback
from collections.abc import Callable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast
from urllib.parse import urlsplit

from app.core.api import endpoints
from app.core.api.context import ApiContext
from app.core.api.errors import ApiError, ClientGone, invalid
from app.core.api.watch import ClientWatch
from app.core.crashlog import write_crash_log
from app.core.errors import CadreError, EngineCrashedError, PromptTooLongError

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
_DIGITS = re.compile(r"[0-9]{1,12}")
MODELS = "/v1/models"


class ApiHTTPServer(ThreadingHTTPServer):
    """Carries the shared :class:`ApiContext` to the handlers."""

    api: ApiContext


class ApiHandler(BaseHTTPRequestHandler):
    server_version = "Cadre"
    sys_version = ""
    protocol_version = "HTTP/1.0"
    timeout = 30  # seconds a client may take to send its request, or to take a piece of the answer
    disable_nagle_algorithm = True  # each streamed piece goes out at once, not after an ACK

    def setup(self) -> None:
        super().setup()
        self.api = cast(ApiHTTPServer, self.server).api
        self._watch = ClientWatch(self.connection)
        self._streaming = False

    @property
    def watch(self) -> ClientWatch:
        return self._watch

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = do_HEAD = do_GET

    def _dispatch(self) -> None:
        self.api.track(self._watch)
        try:
            self._check_access()
            self._endpoint()()
        except ClientGone:
            self.close_connection = True
        except ApiError as error:
            self._fail(error)
        except PromptTooLongError as exc:
            self._fail(ApiError(400, str(exc), "context_length_exceeded", "messages"))
        except EngineCrashedError as exc:
            self._fail(ApiError(503, str(exc), "engine_crashed", headers={"Retry-After": "1"}))
        except CadreError as exc:
            self._fail(ApiError(500, str(exc), "cadre_error"))
        except Exception:  # a bug: keep serving, and keep the traceback
            path = write_crash_log(traceback.format_exc())
            log.exception("Bug while answering %s %s", self.command, self.path)
            message = f"Internal error in Cadre (a bug); the details were saved to {path}."
            self._fail(ApiError(500, message, "internal_error"))
        finally:
            self.api.untrack(self._watch)

    def _check_access(self) -> None:
        hosts = self.headers.get_all("Host") or []
        if len(hosts) != 1 or hosts[0].strip().lower() not in self.api.allowed_hosts:
            raise ApiError(
                403,
                f"Requests must be addressed to 127.0.0.1:{self.api.port} or "
                f"localhost:{self.api.port}.",
                "forbidden_host",
            )
        for origin in self.headers.get_all("Origin") or []:
            if origin.strip().lower() not in self.api.allowed_origins:
                raise ApiError(403, "Requests from web pages are refused.", "forbidden_origin")
        if not self.api.authorized(self.headers.get_all("Authorization") or []):
            raise ApiError(
                401,
                "Missing or wrong API token: send 'Authorization: Bearer <token>' "
                "(cadre serve prints the token).",
                "invalid_api_key",
                headers={"WWW-Authenticate": "Bearer"},
            )

    def _endpoint(self) -> Callable[[], None]:
        path = urlsplit(self.path).path.rstrip("/")
        routes: dict[str, dict[str, Callable[[], None]]] = {
            MODELS: {"GET": lambda: endpoints.list_models(self.api, self)},
            "/v1/chat/completions": {"POST": lambda: endpoints.chat_completions(self.api, self)},
            "/v1/embeddings": {"POST": lambda: endpoints.embeddings(self.api, self)},
        }
        if path.startswith(MODELS + "/"):
            model_id = path.removeprefix(MODELS + "/")
            routes[path] = {"GET": lambda: endpoints.get_model(self.api, self, model_id)}
        methods = routes.get(path)
        if methods is None:
            raise ApiError(404, f"There is no endpoint {path or '/'}.", "not_found")
        if self.command not in methods:
            raise ApiError(
                405,
                f"{path} does not accept {self.command}.",
                "method_not_allowed",
                headers={"Allow": ", ".join(methods)},
            )
        return methods[self.command]

    def read_json(self) -> dict[str, Any]:
        """The body as a JSON object: its size is checked before a byte of it is read."""
        lengths = self.headers.get_all("Content-Length") or []
        if self.headers.get("Transfer-Encoding") or len(lengths) != 1:
            raise ApiError(411, "Send the body with one Content-Length header.", "length_required")
        if not _DIGITS.fullmatch(lengths[0].strip()):
            raise invalid("The Content-Length header is not a number.")
        length = int(lengths[0])
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(
                413, f"The body is {length} bytes; at most {MAX_BODY} are accepted.", "too_large"
            )
        try:
            raw = self.rfile.read(length)
        except OSError as exc:
            raise ClientGone() from exc
        if len(raw) < length:
            raise ClientGone()
        try:
            body = json.loads(raw, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:
            raise invalid(f"The body is not valid JSON: {exc}", code="invalid_json") from exc
        if not isinstance(body, dict):
            raise invalid("The body must be a JSON object.", code="invalid_json")
        return body

    def send_json(
        self, status: int, payload: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self._private_headers(headers or {})
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        except OSError as exc:
            raise ClientGone() from exc

    def start_events(self) -> None:
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream; charset=utf-8")
            self._private_headers({"X-Accel-Buffering": "no"})
            self.end_headers()
        except OSError as exc:
            raise ClientGone() from exc
        self._streaming = True

    def send_event(self, data: dict[str, Any] | str) -> None:
        text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
        try:
            self.wfile.write(f"data: {text}\n\n".encode())
        except OSError as exc:
            raise ClientGone() from exc

    def _private_headers(self, extra: Mapping[str, str]) -> None:
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for name, value in extra.items():
            self.send_header(name, value)

    def _fail(self, error: ApiError) -> None:
        """An error as JSON, or, once a stream has begun, as its last event."""
        self.close_connection = True
        with contextlib.suppress(ClientGone):
            if self._streaming:
                self.send_event(error.body())
            else:
                self.send_json(error.status, error.body(), error.headers)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, an unknown method) as JSON."""
        error = ApiError(code, message or HTTPStatus(code).phrase, "bad_request")
        self.close_connection = True
        with contextlib.suppress(ClientGone):
            self.send_json(code, error.body())

    def log_message(self, format: str, *args: Any) -> None:
        self.api.log(f"{self.address_string()} {format % args}")


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")
