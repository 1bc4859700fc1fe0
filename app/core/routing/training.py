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
import numpy.typing as npt

from app.core.embedder import Embedder, Vectors
from app.core.paths import resources_dir
from specialists import SpecialistManifest

ROUTING_TOKENS = 256  # the model's limit; 128 measured 0.9 points less accurate (long legal text)
CACHE_NAME = f"minilm-{ROUTING_TOKENS}-vectors.npz"


def bundled_vectors_path() -> Path:
    """The built-in examples' vectors, computed when Cadre is built (packaging/routing_vectors.py):
    a first start would otherwise spend about a minute of CPU encoding two thousand examples."""
    return resources_dir() / "routing" / CACHE_NAME


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


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def embed_cached(
    embedder: Embedder, texts: list[str], cache_dir: Path, bundled: Path | None = None
) -> Vectors:
    """Encode ``texts``, reusing cached vectors text by text: adding a specialist or a correction
    encodes only the new texts. Texts missing from the cache are looked up in ``bundled`` (the
    vectors shipped with Cadre) before being encoded. The cache keeps exactly the texts of the
    latest call."""
    keys = [text_key(text) for text in texts]
    path = cache_dir / CACHE_NAME
    cached = _load_cache(path)
    known = dict(cached)
    if bundled is not None and any(key not in known for key in keys):
        shipped = _load_cache(bundled)
        known.update({key: shipped[key] for key in keys if key not in known and key in shipped})
    missing = sorted({i for i, key in enumerate(keys) if key not in known}, key=keys.__getitem__)
    if missing:
        fresh = embedder.encode([texts[i] for i in missing], max_tokens=ROUTING_TOKENS)
        known.update({keys[i]: fresh[n] for n, i in enumerate(missing)})
    vectors = np.stack([known[key] for key in keys]) if keys else np.zeros((0, 384), np.float32)
    if set(cached) != set(keys):
        save_vectors(path, {key: known[key] for key in keys})
    return np.asarray(vectors, dtype=np.float32)


def _load_cache(path: Path) -> dict[str, npt.NDArray[np.float32]]:
    try:
        with np.load(path) as data:
            vectors = data["vectors"].astype(np.float32)
            return dict(zip(data["keys"].tolist(), vectors, strict=True))
    except (OSError, ValueError, KeyError):
        return {}  # missing or damaged: rebuilt


def save_vectors(
    path: Path, vectors: dict[str, npt.NDArray[np.float32]], dtype: type = np.float32
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    keys = np.array(list(vectors), dtype="U32")
    matrix = np.stack(list(vectors.values())) if vectors else np.zeros((0, 384), np.float32)
    np.savez(temporary, keys=keys, vectors=matrix.astype(dtype))
    os.replace(temporary, path)
