"""Collections end to end on the real embedder: indexing, incremental updates, renames, deletions,
bad files, a damaged vector index, hybrid search and citations."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from app.core.documents import indexer as indexer_module
from app.core.documents.indexer import IndexProgress, IndexReport
from app.core.documents.library import DocumentLibrary
from app.core.documents.search import keyword_query, keyword_words, reciprocal_rank_fusion
from app.core.documents.watch import CollectionWatcher
from app.core.embedder import Embedder, Vectors
from app.core.errors import CadreError, Cancelled
from app.core.paths import DataPaths
from app.core.tasks import CancelToken, run_job
from tests.doc_fixtures import write_pdf

BREAD = "To bake sourdough bread you need an active starter, strong flour, water and salt."
CELLS = "Mitochondria produce most of the cell's ATP through oxidative phosphorylation."
TAXES = "The quarterly VAT return for invoice INV-20931 is due on the seventh of the month."


class CountingEmbedder(Embedder):
    """The real embedder, counting the texts it encodes (to prove what is not re-embedded)."""

    def __init__(self, real: Embedder) -> None:
        super().__init__()
        self._real = real
        self.texts: list[str] = []

    def encode(self, texts: Sequence[str], max_tokens: int | None = None) -> Vectors:
        self.texts += texts
        return self._real.encode(texts, max_tokens)


@pytest.fixture
def counting(embedder: Embedder) -> CountingEmbedder:
    return CountingEmbedder(embedder)


@pytest.fixture
def library(paths: DataPaths, counting: CountingEmbedder) -> Iterator[DocumentLibrary]:
    notices: list[str] = []
    library = DocumentLibrary(paths, counting, on_notice=notices.append)
    library.notices = notices  # type: ignore[attr-defined]
    yield library
    library.close()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "docs"
    (root / "kitchen").mkdir(parents=True)
    (root / "kitchen" / "bread.md").write_text(f"# Bread\n\n{BREAD}\n")
    (root / "biology.txt").write_text(f"Cell biology notes.\n\n{CELLS}\n")
    (root / "accounts.csv").write_text(f"invoice,note\nINV-20931,{TAXES}\n")
    return root


def index(library: DocumentLibrary, name: str = "notes") -> IndexReport:
    return run_job(library.index(name))


def test_a_folder_is_indexed_and_searchable_with_citations(
    library: DocumentLibrary, folder: Path
) -> None:
    write_pdf(
        folder / "manual.pdf",
        [
            "Page one is about nothing.",
            "Reset the router by holding the power button for ten seconds.",
        ],
    )
    library.add("notes", [folder])
    report = index(library)
    assert (report.indexed, report.skipped) == (4, [])

    best = library.search("notes", "how do I make sourdough?")[0]
    assert best.chunk.path == str(folder / "kitchen" / "bread.md")
    assert best.chunk.place() == "lines 1-3"
    assert best.similarity > 0.5
    pdf_hit = library.search("notes", "reset the router", k=1)[0]
    assert (Path(pdf_hit.chunk.path).name, pdf_hit.chunk.page) == ("manual.pdf", 2)
    assert pdf_hit.as_dict()["page"] == 2
    exact = library.search("notes", "INV-20931", k=1, mode="keyword")[0]
    assert exact.chunk.path.endswith("accounts.csv")
    status = library.status()[0]
    assert (status.documents, status.chunks, status.skipped) == (4, 5, ())  # 2 PDF pages


def test_only_what_changed_is_embedded_again(
    library: DocumentLibrary, folder: Path, counting: CountingEmbedder
) -> None:
    library.add("notes", [folder])
    index(library)
    counting.texts.clear()
    assert index(library).unchanged == 3
    assert counting.texts == []

    (folder / "biology.txt").write_text("Photosynthesis happens in chloroplasts.\n")
    os.utime(folder / "accounts.csv")  # a new timestamp, the same content
    report = index(library)
    assert (report.indexed, report.unchanged) == (1, 2)
    assert counting.texts == ["Photosynthesis happens in chloroplasts."]
    assert library.search("notes", "chloroplasts", k=1)[0].chunk.path.endswith("biology.txt")


def test_a_renamed_file_keeps_its_chunks_and_a_deleted_one_leaves(
    library: DocumentLibrary, folder: Path, counting: CountingEmbedder
) -> None:
    library.add("notes", [folder])
    index(library)
    counting.texts.clear()
    (folder / "kitchen" / "bread.md").rename(folder / "kitchen" / "baking.md")
    (folder / "biology.txt").unlink()
    report = index(library)
    assert (report.renamed, report.removed, report.indexed) == (1, 1, 0)
    assert counting.texts == []  # nothing re-embedded
    hits = library.search("notes", "sourdough starter", k=5)
    assert hits[0].chunk.path.endswith("baking.md")
    assert not any(hit.chunk.path.endswith("biology.txt") for hit in hits)
    assert library.status()[0].documents == 2


def test_bad_files_are_skipped_with_their_reasons_and_never_stop_the_run(
    library: DocumentLibrary, folder: Path
) -> None:
    (folder / "empty.txt").write_bytes(b"")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (folder / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj <<\n garbage")
    with (folder / "huge.txt").open("wb") as sparse:  # 1 GB without writing 1 GB
        sparse.truncate(1 << 30)
    library.add("notes", [folder])
    report = index(library)
    reasons = {Path(path).name: reason for path, reason in report.skipped}
    assert reasons["empty.txt"] == "empty"
    assert "binary" in reasons["binary.txt"]
    assert "PDF" in reasons["broken.pdf"]
    assert reasons["huge.txt"].startswith("too large (1.1 GB")
    assert report.indexed == 3
    assert {Path(p).name for p, _ in library.status()[0].skipped} == set(reasons)


def test_a_fixed_file_leaves_the_skipped_list(library: DocumentLibrary, folder: Path) -> None:
    (folder / "later.txt").write_bytes(b"")
    library.add("notes", [folder])
    index(library)
    (folder / "later.txt").write_text("Now it has words about compost heaps.")
    index(library)
    assert library.status()[0].skipped == ()
    assert library.search("notes", "compost", k=1)[0].chunk.path.endswith("later.txt")


def test_a_damaged_or_stale_vector_index_is_rebuilt_from_the_database(
    library: DocumentLibrary, folder: Path, paths: DataPaths, counting: CountingEmbedder
) -> None:
    library.add("notes", [folder])
    index(library)
    vector_file = next((paths.documents / "vectors").iterdir())
    vector_file.write_bytes(b"not a vector index")
    fresh = DocumentLibrary(paths, counting, on_notice=library.notices.append)  # type: ignore[attr-defined]
    counting.texts.clear()
    try:
        assert fresh.search("notes", "sourdough", k=1)[0].chunk.path.endswith("bread.md")
    finally:
        fresh.close()
    assert counting.texts == ["sourdough"]  # only the query: the chunks were not re-embedded
    assert "rebuilt from the 3 stored chunks" in library.notices[-1]  # type: ignore[attr-defined]


def test_cancel_keeps_what_was_done(
    library: DocumentLibrary, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(indexer_module, "EMBED_BATCH_CHUNKS", 4)  # commit every few files
    root = tmp_path / "many"
    root.mkdir()
    for n in range(40):
        (root / f"note{n:02}.txt").write_text(f"Note {n}: " + "words about gardening " * 30)
    library.add("garden", [root])
    token = CancelToken()
    with pytest.raises(Cancelled):
        for report in library.index("garden", token):
            if isinstance(report, IndexProgress) and report.chunks_done >= 8:
                token.cancel()
    done = library.status()[0].documents
    assert 8 <= done < 40
    assert run_job(library.index("garden")).indexed == 40 - done
    assert library.status()[0].documents == 40


def test_one_index_run_per_collection_at_a_time(library: DocumentLibrary, folder: Path) -> None:
    library.add("notes", [folder])
    first = library.index("notes")
    next(first)
    with pytest.raises(CadreError, match="already being indexed"):
        next(library.index("notes"))
    first.close()


def test_collections_are_separate_and_removable(
    library: DocumentLibrary, folder: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "poem.txt").write_text("The owl and the pussycat went to sea in a pea-green boat.")
    library.add("notes", [folder])
    library.add("poems", [other])
    index(library, "notes")
    index(library, "poems")
    assert all(h.chunk.path.startswith(str(other)) for h in library.search("poems", "bread"))
    library.remove("poems")
    assert [c.name for c in library.collections()] == ["notes"]
    with pytest.raises(CadreError, match="no document collection called 'poems'"):
        library.search("poems", "owl")
    with pytest.raises(CadreError, match="Not found"):
        library.add("notes", [tmp_path / "missing"])


def test_watcher_reports_added_changed_renamed_and_deleted_files(tmp_path: Path) -> None:
    root = tmp_path / "watched"
    root.mkdir()
    changed: list[str] = []
    seen = threading.Event()

    def on_changed(name: str) -> None:
        changed.append(name)
        seen.set()

    def expect_change(action: object) -> None:
        seen.clear()
        assert seen.wait(10), f"no change reported after {action}"

    with CollectionWatcher({"notes": [str(root)]}, on_changed, settle_s=0.3):
        time.sleep(0.2)
        (root / "a.txt").write_text("new")
        expect_change("add")
        (root / "a.txt").write_text("changed")
        expect_change("change")
        (root / "a.txt").rename(root / "b.txt")
        expect_change("rename")
        (root / "b.txt").unlink()
        expect_change("delete")
        (root / "ignored.bin").write_bytes(b"x")
        time.sleep(0.8)
    assert changed == ["notes"] * 4


def test_search_helpers() -> None:
    words = keyword_words('what is "INV-20931" OR drop table? Drop it')
    assert words == ["inv", "20931", "drop", "table"]
    assert keyword_words("what is it?") == []
    few = {"inv": 3, "20931": 1, "drop": 0, "table": 900}
    assert keyword_query(words, few, 100_000) == '"inv" OR "20931" OR "table"'
    common = {"inv": 1500, "20931": 1, "drop": 0, "table": 9000}  # table: in 9% of the chunks
    assert keyword_query(words, common, 100_000) == (
        '("inv" OR "20931") AND ("inv" OR "20931" OR "table")'
    )
    everywhere = {"inv": 50_000, "20931": 60_000, "drop": 40_000, "table": 70_000}
    assert keyword_query(words, everywhere, 100_000) == (
        '("inv" OR "drop") AND ("inv" OR "20931" OR "drop" OR "table")'
    )
    assert keyword_query(words, dict.fromkeys(words, 0), 100_000) is None
    fused = reciprocal_rank_fusion([1, 2, 3], [3, 1])
    assert sorted(fused, key=lambda i: -fused[i]) == [1, 3, 2]
    assert np.isclose(fused[2], 1 / 62)
