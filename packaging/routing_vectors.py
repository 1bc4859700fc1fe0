"""Write the built-in routing examples' vectors into resources/ (run after editing manifests).

A fresh install then routes at once instead of spending about a minute of CPU encoding the
examples on first start. Stored as float16 (half the size; similarities move by about 1e-3).
``tests/test_routing.py`` fails when a built-in example has no vector here.

Usage: python packaging/routing_vectors.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.embedder import Embedder
from app.core.routing.training import (
    ROUTING_TOKENS,
    bundled_vectors_path,
    manifest_examples,
    save_vectors,
    text_key,
)
from specialists import load_manifests


def main() -> None:
    texts = sorted({row.text for row in manifest_examples(load_manifests().values())})
    vectors = Embedder().encode(texts, max_tokens=ROUTING_TOKENS)
    path = bundled_vectors_path()
    save_vectors(path, dict(zip(map(text_key, texts), vectors, strict=True)), np.float16)
    print(f"{len(texts)} example vectors -> {path} ({path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
