"""Append a bug's traceback to the crash log, so nothing the user saw is lost."""

from __future__ import annotations

import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

from app import __version__
from app.core.paths import data_paths


def write_crash_log(text: str) -> Path:
    """Append ``text`` with a header; returns the log's path. Never raises."""
    path = data_paths().crash_log
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    header = (
        f"--- {stamp} Cadre {__version__}, Python {sys.version.split()[0]}, {platform.platform()}\n"
    )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a", encoding="utf-8") as handle:
            handle.write(header + text.rstrip() + "\n\n")
    except OSError:
        pass
    return path
