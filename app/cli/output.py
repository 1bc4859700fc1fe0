"""Small helpers for terminal output."""

from __future__ import annotations

import sys

from app.core.units import human_bytes

__all__ = ["human_bytes", "note"]


def note(text: str) -> None:
    """A status line for the person at the terminal, kept off stdout so answers can be piped."""
    if sys.stderr.isatty():
        print(f"\033[2m{text}\033[0m", file=sys.stderr, flush=True)
    else:
        print(text, file=sys.stderr, flush=True)
