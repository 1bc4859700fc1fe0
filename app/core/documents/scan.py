"""What changed in a collection's folders since the last run: a stat walk, then content hashes only
for files whose size or modification time moved. Added, changed, renamed and deleted files all
come out of this one comparison, so the watcher and start-up catch-up share it."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.core.documents.extract import is_supported
from app.core.documents.records import DocumentRecord, FileStat

# Folders that hold tools' data rather than the user's documents.
IGNORED_FOLDERS = frozenset({"node_modules", "__pycache__", "venv", ".venv", "site-packages"})
HASH_BLOCK = 1 << 20


@dataclass
class Changes:
    """Paths (as strings, absolute) to look at, by what happened to them."""

    new: list[str] = field(default_factory=list)
    modified: list[str] = field(default_factory=list)  # size or mtime moved: hash to be sure
    gone: list[str] = field(default_factory=list)
    unchanged: int = 0
    missing_sources: list[str] = field(default_factory=list)

    @property
    def work(self) -> list[str]:
        return [*self.new, *self.modified]


def walk_sources(sources: Sequence[str]) -> tuple[dict[str, FileStat], list[str]]:
    """Every supported file under the sources with its stat, and the sources that are missing."""
    found: dict[str, FileStat] = {}
    missing: list[str] = []
    for source in sources:
        root = Path(source)
        if root.is_file():
            _add(found, root)
        elif root.is_dir():
            for path in _files_under(root):
                _add(found, path)
        else:
            missing.append(source)
    return found, missing


def _files_under(root: Path) -> Iterator[Path]:
    for folder, subfolders, files in os.walk(root, followlinks=False):
        subfolders[:] = sorted(
            name for name in subfolders if not name.startswith(".") and name not in IGNORED_FOLDERS
        )
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder, name)


def _add(found: dict[str, FileStat], path: Path) -> None:
    if not is_supported(path):
        return
    try:
        info = path.stat()
    except OSError:
        info = None  # unreadable or vanished: listed, and extraction reports why
    found[str(path)] = FileStat(info.st_size, info.st_mtime_ns) if info else FileStat(0, 0)


def compare(found: Mapping[str, FileStat], known: Mapping[str, DocumentRecord]) -> Changes:
    changes = Changes()
    for path, stat in found.items():
        record = known.get(path)
        if record is None:
            changes.new.append(path)
        elif record.size != stat.size or record.mtime_ns != stat.mtime_ns:
            changes.modified.append(path)
        else:
            changes.unchanged += 1
    changes.gone = sorted(set(known) - set(found))
    return changes


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(HASH_BLOCK):
            digest.update(block)
    return digest.hexdigest()
