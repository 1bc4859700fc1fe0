"""A local stand-in for the Hugging Face hub, on 127.0.0.1, with faults on demand.

It serves what huggingface_hub asks of the real hub for a file download: ``HEAD`` and ``GET`` on
``/{repo}/resolve/{revision}/{file}`` (with ``X-Repo-Commit``, an ``ETag`` that is the sha256, a
``Content-Length`` and ``Range``), the ``X-Error-Code`` headers the hub sends on a 404, and
``POST /api/models/{repo}/paths-info/{revision}`` (the LFS sha256). Tests point ``HF_ENDPOINT`` at it.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")
_PATHS_INFO = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+)/paths-info/(?P<rev>[^/]+)$")
_RANGE = re.compile(r"^bytes=(\d+)-$")


@dataclass
class HubFile:
    """One file in one repo, and how the server misbehaves when serving it."""

    repo: str
    filename: str
    data: bytes
    commit: str = "0123456789abcdef0123456789abcdef01234567"
    drop_after: int | None = None  # close the connection after this many body bytes…
    drops: int = 1  # …on this many GET requests
    ignore_range: bool = False  # answer a Range request with the whole file (200)
    corrupt: bool = False  # flip bytes in what is sent; size and ETag unchanged
    stall_s: float = 0.0  # with drop_after: go silent this long before closing
    delay_s: float = 0.0  # pause before each chunk (a slow server)
    chunk_size: int = 64 * 1024
    etag_is_sha256: bool = True  # else the ETag is a git blob id, and paths-info has the sha256
    gated: bool = False  # answer 403 GatedRepo, as the hub does before terms are accepted
    busy_gets: int = 0  # answer this many GET requests with 503 first

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    def body(self) -> bytes:
        if not self.corrupt:
            return self.data
        middle = len(self.data) // 2
        return (
            self.data[:middle]
            + bytes(b ^ 0xFF for b in self.data[middle : middle + 16])
            + (self.data[middle + 16 :])
        )


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    range: str | None


@dataclass
class _State:
    files: dict[tuple[str, str], HubFile] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._resolve(send_body=False)

    def do_GET(self) -> None:
        self._resolve(send_body=True)

    def do_POST(self) -> None:
        self._record()
        match = _PATHS_INFO.match(urllib.parse.urlsplit(self.path).path)
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        if match is None:
            self._not_found("RepoNotFound")
            return
        entries = []
        for name in form.get("paths", []):
            hub_file = self.server.state.files.get((match["repo"], name))
            if hub_file is not None:
                entries.append(_paths_info_entry(hub_file))
        payload = json.dumps(entries).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _record(self) -> None:
        with self.server.state.lock:
            self.server.state.requests.append(
                Request(self.command, self.path, self.headers.get("Range"))
            )

    def _not_found(self, code: str) -> None:
        self.send_response(404)
        self.send_header("X-Error-Code", code)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _resolve(self, *, send_body: bool) -> None:
        self._record()
        match = _RESOLVE.match(urllib.parse.unquote(urllib.parse.urlsplit(self.path).path))
        if match is None or not any(repo == match["repo"] for repo, _ in self.server.state.files):
            self._not_found("RepoNotFound")
            return
        hub_file = self.server.state.files.get((match["repo"], match["file"]))
        if hub_file is None:
            self._not_found("EntryNotFound")
            return
        if self._refused(hub_file, send_body=send_body):
            return
        start = self._range_start(hub_file)
        self._send_headers(hub_file, start)
        if send_body:
            self._send_body(hub_file, start)

    def _refused(self, hub_file: HubFile, *, send_body: bool) -> bool:
        status, code = 0, ""
        if hub_file.gated:
            status, code = 403, "GatedRepo"
        elif send_body and hub_file.busy_gets > 0:
            with self.server.state.lock:
                hub_file.busy_gets -= 1
            status = 503
        if status:
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            self.send_header("Content-Length", "0")
            self.end_headers()
        return bool(status)

    def _range_start(self, hub_file: HubFile) -> int:
        requested = _RANGE.match(self.headers.get("Range") or "")
        if requested is None or hub_file.ignore_range:
            return 0
        return min(int(requested.group(1)), len(hub_file.data))

    def _send_headers(self, hub_file: HubFile, start: int) -> None:
        size = len(hub_file.data)
        self.send_response(206 if start else 200)
        self.send_header("X-Repo-Commit", hub_file.commit)
        etag = (
            hub_file.sha256 if hub_file.etag_is_sha256 else hashlib.sha1(hub_file.data).hexdigest()
        )
        self.send_header("ETag", f'"{etag}"')
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(size - start))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()

    def _send_body(self, hub_file: HubFile, start: int) -> None:
        body = hub_file.body()
        limit = len(body)
        with self.server.state.lock:
            if hub_file.drop_after is not None and hub_file.drops > 0:
                hub_file.drops -= 1
                limit = min(limit, start + hub_file.drop_after)
        position = start
        while position < limit and not self.server.stopping.is_set():
            if hub_file.delay_s:
                time.sleep(hub_file.delay_s)
            end = min(limit, position + hub_file.chunk_size)
            try:
                self.wfile.write(body[position:end])
                self.wfile.flush()
            except OSError:
                return  # the client went away (a cancelled download)
            position = end
        if position < len(body):
            self.server.stopping.wait(hub_file.stall_s)
            self.close_connection = True  # a dropped connection: fewer bytes than promised


def _paths_info_entry(hub_file: HubFile) -> dict[str, Any]:
    size = len(hub_file.data)
    return {
        "type": "file",
        "path": hub_file.filename,
        "size": size,
        "oid": hashlib.sha1(hub_file.data).hexdigest(),
        "lfs": {"oid": hub_file.sha256, "size": size, "pointerSize": 134},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.state = _State()
        self.stopping = threading.Event()


class FakeHub:
    """Start with ``with FakeHub() as hub:``; ``hub.endpoint`` is the value for ``HF_ENDPOINT``."""

    def __init__(self) -> None:
        self._server = _Server()
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-hub", daemon=True
        )

    @property
    def endpoint(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add(self, hub_file: HubFile) -> HubFile:
        self._server.state.files[(hub_file.repo, hub_file.filename)] = hub_file
        return hub_file

    @property
    def requests(self) -> list[Request]:
        with self._server.state.lock:
            return list(self._server.state.requests)

    def gets(self, filename: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.path.endswith(filename)]

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
