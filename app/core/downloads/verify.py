"""From a finished partial file to an installed model: sha256 against the hub, GGUF check, rename.

huggingface_hub only compares sizes; a flipped byte with the size unchanged would pass. Cadre hashes
the whole file and compares with the hub's LFS sha256, then validates the GGUF structure, and only
then gives the file its real name. A file under its real name has always passed both checks.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from app.core.downloads.hub import RemoteFile
from app.core.downloads.transfer import PartialFile, fetch
from app.core.errors import ChecksumMismatchError, DiskSpaceError, DownloadError
from app.core.gguf_header import GGUFFormatError, GGUFHeader, validate_gguf
from app.core.safe_names import refuse_links
from app.core.tasks import CancelToken, Job, Progress, Throttle
from app.core.units import human_bytes

DISK_MARGIN_BYTES = 100 * 1000 * 1000  # room left for the database, logs and the OS
_READ_BYTES = 4 * 1024 * 1024


def sha256_of(path: Path, cancel: CancelToken, message: str) -> Job[str]:
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    throttle = Throttle(0.1)
    with path.open("rb") as handle:
        while chunk := handle.read(_READ_BYTES):
            cancel.raise_if_cancelled()
            digest.update(chunk)
            done += len(chunk)
            if throttle.ready():
                yield Progress(message, done, total)
    yield Progress(message, total, total)
    return digest.hexdigest()


def ensure_disk_space(folder: Path, needed: int, what: str) -> None:
    """Refuse to start a download the disk cannot hold, before any byte is fetched."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < needed + DISK_MARGIN_BYTES:
        raise DiskSpaceError(
            f"Not enough disk space for {what}: it needs {human_bytes(needed)} more and "
            f"{human_bytes(free)} is free on the disk holding {folder}.",
            hint="Free some space, or point CADRE_HOME at a folder on a larger disk.",
        )


def download_verified(remote: RemoteFile, target: Path, cancel: CancelToken) -> Job[GGUFHeader]:
    """Download ``remote`` to ``target`` (resuming), verify it, and move it into place."""
    partial = PartialFile(target)
    refuse_links(target, partial.data, partial.note)
    have = partial.resume_point(remote)
    ensure_disk_space(target.parent, remote.size - have, remote.filename)
    yield from fetch(remote, partial, have, cancel)
    digest = yield from sha256_of(partial.data, cancel, f"Verifying {remote.filename}")
    if digest != remote.sha256:
        partial.discard()
        raise ChecksumMismatchError(
            f"The download of {remote.filename} is corrupted: its sha256 is {digest[:12]}…, "
            f"the hub published {remote.sha256[:12]}…. It was deleted and nothing was installed.",
            hint="Run the same command to download it again. If this repeats, a proxy or the "
            "mirror in HF_ENDPOINT may be altering files.",
        )
    try:
        header = validate_gguf(partial.data)
    except GGUFFormatError as exc:
        partial.discard()
        reason = exc.message.replace(partial.data.name, remote.filename)
        raise GGUFFormatError(
            f"{remote.filename} from {remote.repo} is not a usable GGUF model: {reason}",
            hint="Pick a .gguf file made for llama.cpp from the repository's file list.",
        ) from exc
    try:
        os.replace(partial.data, target)
    except OSError as exc:  # Windows: the old version is open in the engine
        raise DownloadError(
            f"The new {remote.filename} is downloaded and verified but cannot replace the old one "
            f"yet: {exc.strerror or exc}",
            hint="Switch chats to another specialist and pull again; nothing is downloaded twice.",
        ) from exc
    partial.note.unlink(missing_ok=True)
    return header
