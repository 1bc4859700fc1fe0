"""Small helpers for terminal output."""

from __future__ import annotations

import sys


def human_bytes(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1000 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def note(text: str) -> None:
    """A status line for the person at the terminal, kept off stdout so answers can be piped."""
    if sys.stderr.isatty():
        print(f"\033[2m{text}\033[0m", file=sys.stderr, flush=True)
    else:
        print(text, file=sys.stderr, flush=True)
