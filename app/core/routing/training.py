"""The router's training data: every specialist's description and example requests (built-in and the
user's own manifests alike), plus the user's corrections. Embeddings are cached on disk, keyed by the
texts, so start-up does not re-encode a thousand examples each time."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.core.embedder import Embedder, Vectors
from specialists import SpecialistManifest


@dataclass(frozen=True)
class LabelledText:
    text: str
    domain: str
    specialist_id: str


def manifest_examples(manifests: Iterable[SpecialistManifest]) -> list[LabelledText]:
    rows: list[LabelledText] = []
    for manifest in manifests:
        texts = (manifest.description, *manifest.examples)
        rows += [LabelledText(text, manifest.domain, manifest.id) for text in texts if text]
    return rows


def embed_cached(embedder: Embedder, texts: list[str], cache_dir: Path) -> Vectors:
    """Encode ``texts``, reusing a cached matrix for exactly these texts in this order."""
    digest = hashlib.sha256("\n".join(texts).encode("utf-8")).hexdigest()[:24]
    path = cache_dir / f"minilm-{digest}.npy"
    if path.is_file():
        try:
            cached = np.load(path)
            if cached.shape == (len(texts), 384):
                return np.asarray(cached, dtype=np.float32)
        except (OSError, ValueError):
            pass  # a damaged cache is rebuilt
    vectors = embedder.encode(texts)
    cache_dir.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + f".{os.getpid()}.tmp.npy")
    np.save(temporary, vectors)
    os.replace(temporary, path)
    for stale in cache_dir.glob("minilm-*.npy"):
        if stale != path:
            stale.unlink(missing_ok=True)
    return vectors
