"""Opening a cited source: how long the background read takes, and how long the GUI thread is
busy painting the passage.

Reads a cited passage (with its fingerprint check) from a 10 MB text file, a 100-page PDF and a
Word document found by fingerprint alone, then paints the text file's passage into a SourceViewer.
Prints the best of three for each. Aim: the paint (GUI thread) <= 50 ms; the read (a pool thread)
is bounded by the format's reader, which the indexer shares; a PDF reads only the pages shown.

Usage: QT_QPA_PLATFORM=offscreen python bench/source_viewer.py
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.documents.chunking import Chunk, chunk_document
from app.core.documents.extract import extract
from app.core.documents.passage import Citation, fingerprint, read_passage

CLAUSES = [
    f"Clause {n}: the tenant keeps item {n} in good repair and reports damage within {n} days."
    for n in range(1, 2001)
]


def best_ms(work: Callable[[], object], runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def cited(path: Path, chunk: Chunk) -> Citation:
    return Citation(
        str(path), chunk.page, chunk.first_line, chunk.last_line, fingerprint(chunk.text)
    )


def documents(folder: Path) -> dict[str, Citation]:
    from tests.doc_fixtures import write_docx, write_pdf

    text = folder / "big.txt"
    text.write_text("".join(CLAUSES[n % len(CLAUSES)] + "\n" for n in range(110_000)))
    pdf = write_pdf(
        folder / "manual.pdf", [" ".join(CLAUSES[i : i + 12]) for i in range(0, 1200, 12)]
    )
    word = write_docx(folder / "terms.docx", CLAUSES[:400])
    text_chunks = chunk_document(extract(text))
    return {
        "10 MB text, lines": cited(text, text_chunks[len(text_chunks) // 2]),
        "100-page PDF, p. 50": cited(
            pdf, next(c for c in chunk_document(extract(pdf)) if c.page == 50)
        ),
        "Word, 400 paragraphs": cited(word, chunk_document(extract(word))[-2]),
    }


def paint_ms(citation: Citation) -> float:
    from PySide6.QtWidgets import QApplication

    from app.ui.source_viewer import SourceViewer

    app = QApplication.instance() or QApplication([])
    viewer = SourceViewer()
    viewer.resize(860, 680)
    viewer.show()
    app.processEvents()
    passage = read_passage(citation)

    def paint() -> None:
        viewer._render(passage)
        app.processEvents()

    return best_ms(paint)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="cadre-bench-viewer-") as folder:
        citations = documents(Path(folder))
        for label, citation in citations.items():
            passage = read_passage(citation)
            read = best_ms(lambda c=citation: read_passage(c))  # type: ignore[misc]
            print(
                f"read  {label:<24} {read:7.0f} ms  ({passage.extent}, changed={passage.changed})"
            )
        text = citations["10 MB text, lines"]
        print(f"paint {'10 MB text, lines':<24} {paint_ms(text):7.0f} ms  (GUI thread)")


if __name__ == "__main__":
    main()
