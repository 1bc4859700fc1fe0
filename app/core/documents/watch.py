"""Watch collections' folders and say which collection changed, once its files settle.

The watcher only detects and debounces: an editor's save or a copied folder produces bursts of
events, and one re-index after the burst (which compares content hashes) handles all of them,
renames included. The caller decides how to run that re-index: the CLI inline, the window on its
thread pool with progress.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from app.core.documents.extract import is_supported

SETTLE_S = 1.5  # quiet time after the last event before the collection is re-indexed


class CollectionWatcher:
    def __init__(
        self,
        sources: Mapping[str, Sequence[str]],
        on_changed: Callable[[str], None],
        settle_s: float = SETTLE_S,
    ) -> None:
        """``sources``: collection name → its folders and files. ``on_changed(name)`` is called
        on the watcher's own thread, one collection at a time."""
        self._sources = {name: [Path(s) for s in paths] for name, paths in sources.items()}
        self._on_changed = on_changed
        self._settle_s = settle_s
        self._dirty: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._observer: Any = None
        self._thread = threading.Thread(target=self._loop, name="cadre-watch", daemon=True)

    def start(self) -> None:
        from watchdog.observers import Observer

        self._observer = Observer()
        handler = _Handler(self._event)
        for folder in sorted(
            {self._watch_root(p) for paths in self._sources.values() for p in paths}
        ):
            if folder.is_dir():
                self._observer.schedule(handler, str(folder), recursive=True)
        self._observer.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def __enter__(self) -> CollectionWatcher:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @staticmethod
    def _watch_root(source: Path) -> Path:
        return source if source.is_dir() else source.parent

    def _event(self, paths: Sequence[str]) -> None:
        touched = [Path(p) for p in paths if p]
        now = time.monotonic()
        with self._lock:
            for name, sources in self._sources.items():
                if any(_inside(path, source) for path in touched for source in sources):
                    self._dirty[name] = now

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            for name in self._settled():
                self._on_changed(name)

    def _settled(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            ready = [n for n, last in self._dirty.items() if now - last >= self._settle_s]
            for name in ready:
                del self._dirty[name]
        return ready


def _inside(path: Path, source: Path) -> bool:
    return path == source or source in path.parents


class _Handler:
    """A watchdog event handler (duck-typed: ``dispatch`` is all the observer calls)."""

    def __init__(self, report: Callable[[Sequence[str]], None]) -> None:
        self._report = report

    def dispatch(self, event: Any) -> None:
        if event.event_type in ("opened", "closed_no_write"):
            return  # reads, not changes
        if event.is_directory and event.event_type == "modified":
            return  # a folder's timestamp, moved by the file events reported on their own
        paths = [str(event.src_path), str(getattr(event, "dest_path", "") or "")]
        if event.is_directory or any(is_supported(Path(p)) for p in paths if p):
            self._report(paths)
