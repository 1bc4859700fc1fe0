"""Writing a small file so that a crash leaves the old one or the new one, never half of one.

The text goes to a fresh temporary file beside the target (created exclusively, so nothing planted
under a known name is followed), is flushed to disk, then renamed over the target; on POSIX the
folder is synced too, which makes the rename itself durable."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def write_text_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(path.parent)


def write_json_atomically(path: Path, payload: Mapping[str, Any]) -> None:
    write_text_atomically(path, json.dumps(payload, indent=2, ensure_ascii=False) + "\n")


def _sync_folder(folder: Path) -> None:
    if os.name != "posix":
        return
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
