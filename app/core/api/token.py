"""The local API's bearer token: random, kept in the data folder, readable by its owner only."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import stat
import sys
from pathlib import Path

from app.core.errors import CadreError

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{32,}$")


def load_or_create_token(path: Path) -> str:
    """The token in ``path``, or a new one written there (mode 0600 from the first byte)."""
    for _ in range(2):  # a damaged file (a crash while it was written) is replaced once
        token = _read(path)
        if token is not None:
            _tighten(path)
            return token
        try:
            return _create(path)
        except FileExistsError:
            continue  # another Cadre wrote it first: read theirs
        except OSError as exc:
            raise CadreError(
                f"Cannot write the API token file {path}: {exc.strerror or exc}",
                hint="Check free disk space and the permissions of the data folder.",
            ) from exc
    raise CadreError(
        f"The API token file {path} is damaged.", hint="Delete it; a new token is made on start."
    )


def _read(path: Path) -> str | None:
    try:
        token = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise CadreError(
            f"Cannot read the API token file {path}: {exc}",
            hint="Check its permissions, or delete it; a new token is made on start.",
        ) from exc
    if _TOKEN.match(token):
        return token
    path.unlink(missing_ok=True)
    return None


def _create(path: Path) -> str:
    token = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_EXCL: never write into a file someone else created; 0600 applies before any byte is written.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        os.write(fd, f"{token}\n".encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    return token


def _tighten(path: Path) -> None:
    """A token file others can read (copied, or chmod-ed by hand) is made private again."""
    if sys.platform == "win32":
        return
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        with contextlib.suppress(OSError):
            path.chmod(mode & 0o700)
