"""A collection's dense index: faiss inner product over unit vectors, keyed by chunk id.

The vectors are held as float16 (faiss's fp16 scalar quantizer): the database keeps them in
float16 anyway, so the scores are the same, and a search reads half the memory (100k chunks:
14 ms instead of 20 on one core; the scan is bound by memory bandwidth).

The ids live inside the faiss index (``IndexIDMap2``) and the file also records the collection
revision it reflects, so vectors, id map and revision change together: one file, written to a
temporary name, fsynced, then ``os.replace``d. A file that is missing, damaged or behind the
database is rebuilt from the vectors the database keeps (no re-embedding).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Vectors = npt.NDArray[np.float32]
Ids = npt.NDArray[np.int64]


def _faiss() -> Any:
    import faiss  # heavy: imported on first use

    return faiss


def _half_precision(dimensions: int) -> Any:
    faiss = _faiss()
    return faiss.IndexScalarQuantizer(
        dimensions, faiss.ScalarQuantizer.QT_fp16, faiss.METRIC_INNER_PRODUCT
    )


@contextlib.contextmanager
def _one_openmp_thread() -> Iterator[None]:
    """faiss splits even a single query across OpenMP threads; on two cores with anything else
    running, the second thread's wake-up and barrier cost more than it saves (100k chunks under
    load: p50 27 ms on one thread, 60 ms on two). The setting is per calling thread."""
    faiss = _faiss()
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(threads)


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
        self._index = index or faiss.IndexIDMap2(_half_precision(dimensions))
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
        with self._lock, _one_openmp_thread():
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
        """The saved index, or ``None`` when there is none or it cannot be read. One saved by an
        earlier Cadre (float32 vectors) is converted and written back in the new form, rather
        than rebuilt from the database."""
        faiss = _faiss()
        try:
            with np.load(path) as saved:
                revision, blob = int(saved["revision"]), saved["index"]
            index = faiss.deserialize_index(blob)
        except (OSError, ValueError, KeyError, RuntimeError):
            return None
        if not isinstance(faiss.downcast_index(index.index), faiss.IndexFlat):
            return cls(int(index.d), revision, index)
        loaded = cls(int(index.d), revision, _in_half_precision(index))
        with contextlib.suppress(OSError):  # read-only: converted again next time
            loaded.save(path)
        return loaded


def _in_half_precision(index: Any) -> Any:
    faiss = _faiss()
    inner = faiss.downcast_index(index.index)
    converted = faiss.IndexIDMap2(_half_precision(int(index.d)))
    if index.ntotal:
        vectors = inner.reconstruct_n(0, inner.ntotal)
        converted.add_with_ids(vectors, faiss.vector_to_array(index.id_map))
    return converted
