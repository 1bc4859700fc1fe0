"""Search at scale without the scale: rare words find keyword matches while common ones only rank
them, and a vector index saved by an earlier Cadre (float32) is converted, not rebuilt."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import faiss
import numpy as np
import pytest

from app.core.documents import search
from app.core.documents.library import DocumentLibrary
from app.core.documents.vectors import VectorIndex
from app.core.embedder import Embedder
from app.core.paths import DataPaths
from app.core.tasks import run_job

MEETINGS = ["budget", "hiring", "roadmap", "office move"]


@pytest.fixture
def library(paths: DataPaths, embedder: Embedder, tmp_path: Path) -> Iterator[DocumentLibrary]:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "bread.txt").write_text("Sourdough notes: feed the starter twice a day.\n")
    for topic in MEETINGS:
        (folder / f"{topic}.txt").write_text(f"Meeting notes about the {topic}.\n")
    notices: list[str] = []
    library = DocumentLibrary(paths, embedder, on_notice=notices.append)
    library.notices = notices  # type: ignore[attr-defined]
    library.add("notes", [folder])
    run_job(library.index("notes"))
    yield library
    library.close()


def test_word_counts_are_fts5s_stemmed_counts(library: DocumentLibrary) -> None:
    assert library.store.term_counts(["note", "notes", "sourdough", "absent"]) == {
        "note": 5,
        "notes": 5,
        "sourdough": 1,
        "absent": 0,
    }
    assert library.store.chunk_total() == 5


def test_common_words_rank_the_matches_of_rare_ones(
    library: DocumentLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = library.search("notes", "sourdough meeting notes", k=10, mode="keyword")
    assert len(plain) == 5  # every chunk holds "notes": all of them are scored

    # As if the collection were large: "notes" and "meeting" are in too many chunks to find any.
    monkeypatch.setattr(search, "RARE_ENOUGH", 0)
    monkeypatch.setattr(search, "FINDERS", 1)
    monkeypatch.setattr(search, "COMMON_SHARE", 0.5)
    found = library.search("notes", "sourdough meeting notes", k=10, mode="keyword")
    assert [Path(hit.chunk.path).name for hit in found] == ["bread.txt"]
    hybrid = library.search("notes", "sourdough meeting notes", k=10)
    assert len(hybrid) == 5  # the dense ranking still sees every chunk
    assert library.search("notes", "absent words", k=10, mode="keyword") == []


def test_an_index_saved_in_float32_is_converted_in_place(
    library: DocumentLibrary, paths: DataPaths, embedder: Embedder
) -> None:
    collection = library.store.require("notes")
    before = library.search("notes", "feeding a starter", k=5, mode="dense")
    ids, vectors = library.store.vectors(collection)
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    old.add_with_ids(vectors, ids)
    vector_file = next((paths.documents / "vectors").iterdir())
    with vector_file.open("wb") as stream:  # the format the previous Cadre saved
        np.savez(stream, revision=np.int64(collection.revision), index=faiss.serialize_index(old))

    fresh = DocumentLibrary(paths, embedder, on_notice=library.notices.append)  # type: ignore[attr-defined]
    try:
        after = fresh.search("notes", "feeding a starter", k=5, mode="dense")
    finally:
        fresh.close()
    assert [hit.chunk.id for hit in after] == [hit.chunk.id for hit in before]
    assert np.allclose([h.score for h in after], [h.score for h in before], atol=1e-6)
    assert library.notices == []  # type: ignore[attr-defined]  # converted, not rebuilt
    reloaded = VectorIndex.load(vector_file)
    assert reloaded is not None and len(reloaded) == 5
    assert isinstance(faiss.downcast_index(reloaded._index.index), faiss.IndexScalarQuantizer)


def test_keyword_matches_stay_in_their_collection(library: DocumentLibrary, tmp_path: Path) -> None:
    only = library.search("notes", "meeting notes", k=10, mode="keyword")
    assert len(only) == 5
    minutes = tmp_path / "minutes"
    minutes.mkdir()
    (minutes / "board.txt").write_text("Meeting notes of the board, with more meeting notes.\n")
    library.add("minutes", [minutes])
    run_job(library.index("minutes"))
    found = library.search("minutes", "meeting notes", k=10, mode="keyword")
    assert [Path(hit.chunk.path).name for hit in found] == ["board.txt"]
    again = library.search("notes", "meeting notes", k=10, mode="keyword")
    assert {hit.chunk.id for hit in again} == {hit.chunk.id for hit in only}
