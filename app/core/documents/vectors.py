"""A collection's dense index: faiss inner product over unit vectors, keyed by chunk id.

The ids live inside the faiss index (``IndexIDMap2``) and the file also records the collection
revision it reflects, so vectors, id map and revision change together: one file, written to a
temporary name, fsynced, then ``os.replace``d. A file that is missing, damaged or behind the
database is rebuilt from the vectors the database keeps (no re-embedding).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]


def _faiss() -> Any:
    import faiss  # heavy: imported on first use

    return faiss


def preload() -> None:
    """Import faiss now. Its extension's start-up holds the GIL for 50-100 ms, which stalls the
    window's event loop; at start-up, beside the embedder's load, rather than mid-index."""
    _faiss()


class VectorIndex:
    """Thread-safe: the indexer adds while searches run."""

    def __init__(self, dimensions: int, revision: int = -1, index: Any = None) -> None:
        faiss = _faiss()
        self.dimensions = dimensions
        self.revision = revision
        self._index = index or faiss.IndexIDMap2(faiss.IndexFlatIP(dimensions))
        self._lock = threading.Lock()

    @classmethod
    def build(cls, ids: Ids, vectors: Vectors, revision: int, dimensions: int) -> VectorIndex:
        index = cls(dimensions, revision)
        index.add(ids, vectors)
        return index

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: Ids, vectors: Vectors) -> None:
        if len(ids):
            with self._lock:
                self._index.add_with_ids(np.ascontiguousarray(vectors, np.float32), ids)

    def remove(self, ids: Ids) -> None:
        if len(ids):
            with self._lock:
                self._index.remove_ids(np.asarray(ids, dtype=np.int64))

    def search(self, query: Vectors, k: int) -> list[tuple[int, float]]:
        """The ``k`` most similar chunks: (chunk id, cosine similarity), best first."""
        if not len(self):
            return []
        with self._lock:
            scores, ids = self._index.search(
                np.ascontiguousarray(query.reshape(1, -1), np.float32), k
            )
        return [(int(i), float(s)) for i, s in zip(ids[0], scores[0], strict=True) if i >= 0]

    def similarity(self, query: Vectors, ids: list[int]) -> dict[int, float]:
        """Cosine similarity of the query with particular chunks (those only keywords found)."""
        found: dict[int, float] = {}
        with self._lock:
            for chunk_id in ids:
                try:
                    stored = self._index.reconstruct(int(chunk_id))
                except RuntimeError:  # not in the index (it is being rebuilt): no score
                    continue
                found[chunk_id] = float(stored @ query.reshape(-1))
        return found

    def save(self, path: Path) -> None:
        faiss = _faiss()
        with self._lock:
            blob = faiss.serialize_index(self._index)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        with temporary.open("wb") as stream:
            np.savez(stream, revision=np.int64(self.revision), index=blob)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> VectorIndex | None:
        """The saved index, or ``None`` when there is none or it cannot be read."""
        try:
            with np.load(path) as saved:
                revision, blob = int(saved["revision"]), saved["index"]
            index = _faiss().deserialize_index(blob)
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        return cls(int(index.d), revision, index)
