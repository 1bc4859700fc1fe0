"""Stream a hub file into a partial file that survives cancel, a killed process and dropped links.

huggingface_hub (2.x) downloads to a uniquely named temporary file and deletes it on any failure, so
an interrupted 2.5 GB download starts again from zero. Cadre keeps ``<file>.partial`` next to the
target, with a small JSON note of which remote file (sha256, size) it holds, and resumes with an HTTP
``Range`` request. The bytes come through huggingface_hub's own HTTP session (its proxies, token,
offline switch and user agent). A reader thread feeds a queue so that cancel is noticed within a
tenth of a second even when the server has gone quiet.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from app.core.downloads.hub import RemoteFile, explain_hub_error
from app.core.errors import DownloadError
from app.core.safe_names import NO_FOLLOW
from app.core.tasks import CancelToken, Job, Progress, Throttle
from app.core.units import human_bytes, human_duration

STALL_TIMEOUT_S = 30.0  # no bytes for this long: treat the connection as dropped
MAX_FAILED_ATTEMPTS = 6  # connection attempts in a row that bring no new bytes
RETRY_DELAYS_S = (1.0, 2.0, 4.0, 8.0, 8.0, 8.0)
_POLL_S = 0.1


@dataclass(frozen=True)
class DownloadProgress(Progress):
    """Bytes so far of the whole file, with the recent speed (bytes/s) and time left."""

    rate: float = 0.0
    eta_s: float | None = None

    def describe(self) -> str:
        """ "1.1 GB of 2.5 GB · 12.3 MB/s · 1m54s left", for a status line."""
        parts = [f"{human_bytes(self.done)} of {human_bytes(self.total or 0)}"]
        if self.rate > 0:
            parts.append(f"{human_bytes(self.rate)}/s")
        if self.eta_s is not None and self.done < (self.total or 0):
            parts.append(f"{human_duration(self.eta_s)} left")
        return " · ".join(parts)


class _Transient(Exception):
    """The connection failed in a way worth retrying from where we are."""


class PartialFile:
    """``<target>.partial`` plus ``<target>.partial.json``, which says what the bytes belong to."""

    def __init__(self, target: Path) -> None:
        self.data = target.with_name(target.name + ".partial")
        self.note = target.with_name(target.name + ".partial.json")

    def resume_point(self, remote: RemoteFile) -> int:
        """How many bytes already on disk belong to ``remote``; anything else is thrown away."""
        try:
            note = json.loads(self.note.read_text(encoding="utf-8"))
            size = self.data.stat().st_size
        except (OSError, ValueError):
            note, size = {}, 0
        if note.get("sha256") == remote.sha256 and note.get("size") == remote.size:
            return min(size, remote.size)
        self.discard()
        return 0

    def begin(self, remote: RemoteFile) -> None:
        self.data.parent.mkdir(parents=True, exist_ok=True)
        note: dict[str, str | int] = {"repo": remote.repo, "file": remote.filename}
        note |= {"commit": remote.commit, "sha256": remote.sha256, "size": remote.size}
        _write_own(self.note, json.dumps(note).encode("utf-8"))
        _write_own(self.data, b"")

    def open_data(self) -> BinaryIO:
        """The partial bytes for reading and writing; never through a symbolic link."""
        return os.fdopen(os.open(self.data, os.O_RDWR | _BINARY | NO_FOLLOW), "r+b")

    def discard(self) -> None:
        self.data.unlink(missing_ok=True)
        self.note.unlink(missing_ok=True)


_BINARY = getattr(os, "O_BINARY", 0)


def _write_own(path: Path, data: bytes) -> None:
    """Write ``path`` afresh; a symbolic link found there is an error, not followed."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY | NO_FOLLOW, 0o644)
    with os.fdopen(fd, "wb") as out:
        out.write(data)


class RateMeter:
    """Speed over the last few seconds, so the ETA follows the connection as it changes."""

    def __init__(self, window_s: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window_s
        self._clock = clock
        self._samples: deque[tuple[float, int]] = deque()

    def add(self, total_bytes: int) -> float:
        now = self._clock()
        self._samples.append((now, total_bytes))
        while len(self._samples) > 2 and now - self._samples[0][0] > self._window:
            self._samples.popleft()
        first_time, first_bytes = self._samples[0]
        elapsed = now - first_time
        return (total_bytes - first_bytes) / elapsed if elapsed > 0 else 0.0


class _Reader:
    """Reads one HTTP response on a daemon thread into a bounded queue of events."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self._events: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=32)
        self._stop = threading.Event()
        thread = threading.Thread(
            target=self._run, args=(url, headers), name="cadre-download", daemon=True
        )
        thread.start()

    def _run(self, url: str, headers: dict[str, str]) -> None:
        import httpx2
        from huggingface_hub import get_session, hf_raise_for_status

        timeout = httpx2.Timeout(STALL_TIMEOUT_S, connect=15.0)
        try:
            with get_session().stream("GET", url, headers=headers, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()  # the hub puts the reason in the body
                hf_raise_for_status(response)
                self._put("head", response)
                for chunk in response.iter_bytes():
                    if self._stop.is_set() or not self._put("data", chunk):
                        return
            self._put("end", None)
        except Exception as exc:  # handed to the consumer, which decides what it means
            self._put("error", exc)

    def _put(self, kind: str, value: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._events.put((kind, value), timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def next(self, cancel: CancelToken) -> tuple[str, Any]:
        """The next event; raises :class:`Cancelled` or :class:`_Transient` (a silent server)."""
        waited = 0.0
        while True:
            cancel.raise_if_cancelled()
            try:
                return self._events.get(timeout=_POLL_S)
            except queue.Empty:
                waited += _POLL_S
                if waited >= STALL_TIMEOUT_S:
                    raise _Transient(
                        f"the server sent nothing for {STALL_TIMEOUT_S:.0f} s"
                    ) from None

    def close(self) -> None:
        """Let the thread go; it ends at its next chunk or timeout and never touches our file."""
        self._stop.set()


def fetch(remote: RemoteFile, partial: PartialFile, have: int, cancel: CancelToken) -> Job[None]:
    """Bring ``partial`` up to the remote file's full size, resuming from ``have`` bytes (its
    :meth:`PartialFile.resume_point`)."""
    if have == 0:
        partial.begin(remote)
    report = _Reporter(remote, have)
    if have:
        yield report.note(f"Resuming {remote.filename} from {have / remote.size:.0%}.")
    failures = 0
    while have < remote.size:
        before = have
        try:
            have = yield from _fetch_once(remote, partial, have, cancel, report)
        except _Transient as exc:
            have = partial.data.stat().st_size
            failures = 1 if have > before else failures + 1
            if failures > MAX_FAILED_ATTEMPTS:
                raise DownloadError(
                    f"The download of {remote.filename} keeps failing ({exc}).",
                    hint="The part downloaded so far is kept: run the same command later to resume.",
                ) from exc
            delay = RETRY_DELAYS_S[min(failures, len(RETRY_DELAYS_S)) - 1]
            yield report.note(f"Connection lost ({exc}); retrying in {delay:.0f} s…")
            _wait(delay, cancel)
    yield report.progress(have, final=True)


def _fetch_once(
    remote: RemoteFile, partial: PartialFile, have: int, cancel: CancelToken, report: _Reporter
) -> Job[int]:
    from huggingface_hub.utils._headers import build_hf_headers

    headers = build_hf_headers() | {"Accept-Encoding": "identity"}
    if have:
        headers["Range"] = f"bytes={have}-"
    reader = _Reader(remote.url, headers)
    try:
        start = _start_offset(_expect(reader.next(cancel), "head", remote), have, partial)
        if start != have:
            yield report.note("The server cannot resume; starting this file again.")
        with partial.open_data() as out:
            out.seek(start)
            out.truncate()
            have = start
            while (event := _expect(reader.next(cancel), "data", remote)) is not None:
                have = _append(out, event, have, remote)
                if report.due():
                    yield report.progress(have)
    finally:
        reader.close()
    if have < remote.size:
        raise _Transient("the connection closed early")
    return have


def _expect(event: tuple[str, Any], kind: str, remote: RemoteFile) -> Any:
    """The event's value when it is of ``kind``; ``None`` at the end; raises for errors."""
    got, value = event
    if got == "error":
        raise _classify(value, remote)
    if got == "end":
        if kind == "head":
            raise _Transient("no response")
        return None
    return value


def _classify(exc: Exception, remote: RemoteFile) -> Exception:
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(exc, httpx2.RemoteProtocolError):
        return _Transient("the server closed the connection early")
    if isinstance(exc, httpx2.TimeoutException):
        return _Transient("the server stopped answering")
    if isinstance(exc, httpx2.TransportError):
        return _Transient(str(exc) or type(exc).__name__)
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        status = exc.response.status_code
        if status in (408, 429) or status >= 500:
            return _Transient(f"the hub answered {status}")
    return explain_hub_error(exc, remote.repo, remote.filename, remote.revision)


def _start_offset(response: Any, have: int, partial: PartialFile) -> int:
    """Where the response's bytes start: ``have`` for a proper 206, 0 for a 200 (Range ignored)."""
    if response.status_code != 206:
        return 0
    if not response.headers.get("Content-Range", "").startswith(f"bytes {have}-"):
        with partial.open_data() as out:
            out.truncate(0)
        raise _Transient("the server resumed at the wrong place; starting again")
    return have


def _append(out: BinaryIO, chunk: bytes, have: int, remote: RemoteFile) -> int:
    if have + len(chunk) > remote.size:
        raise _Transient("the server sent more bytes than the file has")
    out.write(chunk)
    return have + len(chunk)


def _wait(seconds: float, cancel: CancelToken) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        cancel.raise_if_cancelled()
        time.sleep(min(_POLL_S, max(0.0, deadline - time.monotonic())))
    cancel.raise_if_cancelled()


class _Reporter:
    """Builds the progress reports of one download, at most ten a second."""

    def __init__(self, remote: RemoteFile, have: int) -> None:
        self._remote = remote
        self._meter = RateMeter()
        self._meter.add(have)
        self._throttle = Throttle(0.1)
        self._message = f"Downloading {remote.filename}"

    def due(self) -> bool:
        return self._throttle.ready()

    def progress(self, have: int, *, final: bool = False) -> DownloadProgress:
        rate = self._meter.add(have)
        left = self._remote.size - have
        eta = left / rate if rate > 0 else None
        message = f"Downloaded {self._remote.filename}" if final else self._message
        return DownloadProgress(message, have, self._remote.size, rate=rate, eta_s=eta)

    def note(self, message: str) -> Progress:
        return Progress(message)
