"""Showing a cited passage again, from real files: the cited lines or page, the excerpt found by
its fingerprint, old sources (a place string only), missing files, and files changed since."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pypdf import PageObject

from app.core.documents.chunking import Chunk, chunk_document
from app.core.documents.extract import extract
from app.core.documents.grounding import ground
from app.core.documents.passage import (
    CONTEXT_LINES,
    Citation,
    Passage,
    SourceUnavailableError,
    fingerprint,
    read_passage,
    read_passage_job,
)
from app.core.documents.search import SearchHit
from app.core.documents.store import StoredChunk
from app.core.errors import CadreError
from app.core.tasks import CancelToken
from tests.doc_fixtures import write_docx, write_drawing_pdf, write_pdf

SENTENCES = [
    f"Clause {n} says the tenant {'must' if n % 2 else 'may'} do thing number {n}. "
    f"It applies from day {n * 3} of the lease, unless the landlord agrees otherwise in writing."
    for n in range(1, 61)
]


def cited(path: Path, chunk: Chunk) -> Citation:
    """The citation a grounded reply stores for ``chunk``: through ground() and the stored JSON."""
    stored = StoredChunk(1, str(path), chunk.ordinal, chunk.text, *_place(chunk))
    grounding = ground("docs", [SearchHit(stored, 0.1, 0.9)], budget_chars=100_000)
    (source,) = json.loads(grounding.sources_json())
    return Citation.from_stored(source)


def _place(chunk: Chunk) -> tuple[int | None, int | None, int | None]:
    return chunk.page, chunk.first_line, chunk.last_line


def chunks_of(path: Path) -> list[Chunk]:
    return chunk_document(extract(path))


def highlighted(passage: Passage) -> str:
    assert passage.highlight is not None
    start, end = passage.highlight
    return passage.sections[passage.focus].text[start:end]


def numbered_lines(count: int) -> str:
    return "".join(f"Line {n}: {SENTENCES[n % len(SENTENCES)]}\n" for n in range(1, count + 1))


def test_a_text_citation_shows_the_cited_lines_numbered_and_highlighted(tmp_path: Path) -> None:
    notes = tmp_path / "notes.md"
    notes.write_text(numbered_lines(40))
    chunk = chunks_of(notes)[2]
    citation = cited(notes, chunk)
    assert (citation.line_start, citation.line_end) == (chunk.first_line, chunk.last_line)
    assert citation.place() == f"lines {chunk.first_line}-{chunk.last_line}"
    passage = read_passage(citation)
    (section,) = passage.sections
    assert section.first_line == 1 and section.heading is None
    lines = notes.read_text().splitlines()
    assert section.text.split("\n") == lines
    assert chunk.first_line is not None and chunk.last_line is not None
    expected = "\n".join(lines[chunk.first_line - 1 : chunk.last_line])
    assert highlighted(passage) == expected  # whole lines, as the citation says
    assert passage.changed is False
    assert passage.extent == "lines 1-40 of 40"


def test_a_long_file_shows_the_cited_lines_with_context_only(tmp_path: Path) -> None:
    log = tmp_path / "big.txt"
    log.write_text(numbered_lines(2000))
    chunk = next(c for c in chunks_of(log) if c.first_line and c.first_line > 1000)
    passage = read_passage(cited(log, chunk))
    assert chunk.first_line is not None and chunk.last_line is not None
    section = passage.sections[0]
    assert section.first_line == chunk.first_line - CONTEXT_LINES
    assert section.text.startswith(f"Line {chunk.first_line - CONTEXT_LINES}: ")
    assert highlighted(passage).startswith(f"Line {chunk.first_line}: ")
    assert highlighted(passage).endswith(SENTENCES[chunk.last_line % len(SENTENCES)])
    assert passage.extent.endswith(" of 2,000") and passage.changed is False


def test_a_pdf_citation_shows_the_page_and_its_neighbours(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "lease.pdf", [" ".join(SENTENCES[i : i + 8]) for i in (0, 8, 16)])
    chunk = next(c for c in chunks_of(pdf) if c.page == 2)
    citation = cited(pdf, chunk)
    assert citation.page == 2 and citation.place() == "p. 2"
    passage = read_passage(citation)
    assert [s.heading for s in passage.sections] == ["Page 1", "Page 2", "Page 3"]
    assert passage.focus == 1 and passage.sections[1].first_line is None
    assert highlighted(passage) == chunk.text  # the excerpt itself, found on its page
    assert passage.changed is False and passage.extent == "pages 1-3 of 3"


def test_a_pdf_citation_reads_only_the_pages_it_shows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pages = [f"Page {n} holds clause {n}. {SENTENCES[n % len(SENTENCES)]}" for n in range(1, 41)]
    pdf = write_pdf(tmp_path / "manual.pdf", pages)
    chunk = next(c for c in chunks_of(pdf) if c.page == 20)
    read: list[int] = []
    extract_text = PageObject.extract_text

    def recording(page: PageObject, *args: Any, **kwargs: Any) -> str:
        read.append(page.page_number + 1)
        return extract_text(page, *args, **kwargs)

    monkeypatch.setattr(PageObject, "extract_text", recording)
    passage = read_passage(cited(pdf, chunk))
    assert sorted(read) == [19, 20, 21]
    assert [s.heading for s in passage.sections] == ["Page 19", "Page 20", "Page 21"]
    assert highlighted(passage) == chunk.text and passage.changed is False
    assert passage.extent == "pages 19-21 of 40"


def test_a_cited_pdf_page_without_text_shows_the_nearest_page_with_text(tmp_path: Path) -> None:
    texts = [
        "",
        " ".join(SENTENCES[:8]),
        " ".join(SENTENCES[8:16]),
        "",
        "",
        " ".join(SENTENCES[16:24]),
    ]
    pdf = write_pdf(tmp_path / "scan.pdf", texts)
    chunk = next(c for c in chunks_of(pdf) if c.page == 3)
    uncited = Citation(str(pdf), fingerprint=fingerprint(chunks_of(pdf)[0].text))
    passage = read_passage(uncited)  # no page cited: the first page with text, page 1 blank
    assert [s.heading for s in passage.sections] == ["Page 2", "Page 3"]
    assert passage.focus == 0 and passage.changed is False and highlighted(passage)
    assert passage.extent == "pages 2-3 of 6"
    write_pdf(pdf, [*texts[:2], "", *texts[3:]])  # page 3 lost its text: page 2 is as near
    passage = read_passage(cited(pdf, chunk))
    assert passage.sections[passage.focus].heading == "Page 2"
    assert passage.changed is True and passage.highlight is None
    passage = read_passage(Citation(str(pdf), page=5))  # 4 and 6 are as near: the earlier
    assert [s.heading for s in passage.sections] == ["Page 6"]
    assert passage.changed is True and passage.extent == "page 6 of 6"
    passage = read_passage(Citation(str(pdf), page=90))  # past the end: the last with text
    assert passage.sections[passage.focus].heading == "Page 6"


@pytest.mark.parametrize(
    ("name", "write", "reason"),
    [
        ("scan.pdf", write_drawing_pdf, "no text layer (scanned PDF?)"),
        ("locked.pdf", lambda path: write_pdf(path, ["Secret."], user_password="pw"),
         "encrypted PDF: it needs a password to open"),
        ("broken.pdf", lambda path: path.write_bytes(b"%PDF-1.4 not really"), "damaged PDF: "),
    ],
)  # fmt: skip
def test_a_pdf_that_cannot_be_shown_says_why(
    tmp_path: Path, name: str, write: Callable[[Path], object], reason: str
) -> None:
    path = tmp_path / name
    write(path)
    with pytest.raises(SourceUnavailableError) as caught:
        read_passage(Citation(str(path), page=1))
    assert caught.value.message.startswith(f"{name} cannot be shown: {reason}")
    assert caught.value.folder == tmp_path


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("code.py", "\n\n".join(f"def f{n}(x):\n    return x * {n}  # {s}" for n, s in enumerate(SENTENCES))),
        ("table.csv", "clause,text\n" + "".join(f'{n},"{s}"\n' for n, s in enumerate(SENTENCES))),
        ("page.html", "<html><title>Lease</title><body>" + "".join(f"<p>{s}</p>" for s in SENTENCES)),
        ("book.ipynb", json.dumps({"cells": [{"cell_type": "markdown", "source": [s]} for s in SENTENCES]})),
        ("prose.txt", "\n".join(" ".join(SENTENCES[i : i + 6]) for i in range(0, 60, 6))),
    ],
)  # fmt: skip
def test_every_chunk_of_a_file_is_found_again(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    chunks = chunks_of(path)
    assert len(chunks) > 3
    for chunk in chunks:
        passage = read_passage(cited(path, chunk))
        assert passage.changed is False, chunk
        if chunk.first_line is None:  # no lines to cite: the excerpt itself is highlighted
            assert highlighted(passage) == chunk.text
        else:
            assert chunk.text.strip() in highlighted(passage)


def test_a_word_document_is_shown_as_extracted_text_with_the_excerpt(tmp_path: Path) -> None:
    document = write_docx(tmp_path / "terms.docx", ["# Terms", *SENTENCES[:30]])
    chunk = chunks_of(document)[1]
    citation = cited(document, chunk)
    assert citation.place() == "" and citation.fingerprint == fingerprint(chunk.text)
    passage = read_passage(citation)
    assert passage.kind == "docx" and passage.sections[0].first_line is None
    assert highlighted(passage) == chunk.text
    assert passage.extent.startswith("extracted lines 1-")


def test_a_missing_file_is_a_clear_error_naming_its_folder(tmp_path: Path) -> None:
    gone = Citation(str(tmp_path / "lease.txt"), line_start=1, line_end=2)
    with pytest.raises(SourceUnavailableError) as caught:
        read_passage(gone)
    assert isinstance(caught.value, CadreError)
    assert caught.value.message == "lease.txt is no longer in its folder."
    assert "moved, renamed or deleted" in caught.value.hint
    assert caught.value.folder == tmp_path
    with pytest.raises(SourceUnavailableError) as caught:
        read_passage(Citation(str(tmp_path / "gone" / "lease.txt"), page=1))
    assert caught.value.folder is None and str(tmp_path / "gone") in caught.value.hint


def test_an_unreadable_file_says_why(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    with pytest.raises(SourceUnavailableError, match=r"^empty.txt cannot be shown: empty\.$"):
        read_passage(Citation(str(empty), line_start=1))


def test_a_change_at_the_cited_lines_is_detected(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text(numbered_lines(40))
    chunk = chunks_of(notes)[1]
    citation = cited(notes, chunk)
    notes.write_text(notes.read_text() + "An appended line changes nothing cited.\n")
    assert read_passage(citation).changed is False
    notes.write_text("A new first line.\n" + notes.read_text())  # everything moves down one
    moved = read_passage(citation)
    assert moved.changed is True
    assert chunk.first_line is not None
    assert highlighted(moved).startswith(f"Line {chunk.first_line - 1}: ")  # still the cited lines
    notes.write_text("Short now.\n")
    assert read_passage(citation).changed is True  # the cited lines are gone


def test_a_change_on_the_cited_page_is_detected(tmp_path: Path) -> None:
    pdf = write_pdf(tmp_path / "lease.pdf", [" ".join(SENTENCES[:8]), " ".join(SENTENCES[8:16])])
    citation = cited(pdf, next(c for c in chunks_of(pdf) if c.page == 2))
    write_pdf(pdf, [" ".join(SENTENCES[:8]), " ".join(SENTENCES[9:16])])
    passage = read_passage(citation)
    assert passage.changed is True and passage.highlight is None
    write_pdf(pdf, [" ".join(SENTENCES[:8])])  # page 2 is gone: page 1 is shown instead
    passage = read_passage(citation)
    assert passage.changed is True and passage.sections[passage.focus].heading == "Page 1"


def test_old_sources_with_only_a_place_still_open_at_it(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text(numbered_lines(40))
    old = Citation.from_stored({"number": 1, "path": str(notes), "place": "lines 12-30"})
    assert (old.page, old.line_start, old.line_end, old.fingerprint) == (None, 12, 30, None)
    passage = read_passage(old)
    assert passage.changed is None  # nothing to compare with
    assert highlighted(passage).startswith("Line 12: ") and "Line 30: " in highlighted(passage)
    assert "Line 31: " not in highlighted(passage)
    assert Citation.from_stored({"path": "/a.pdf", "place": "p. 3"}).page == 3
    single = Citation.from_stored({"path": "/a.txt", "place": "line 7"})
    assert (single.line_start, single.line_end, single.place()) == (7, 7, "line 7")
    assert Citation.from_stored({"path": "/a.docx", "place": ""}) == Citation("/a.docx")


def test_a_citation_survives_a_link_and_junk_is_ignored() -> None:
    citation = Citation("/docs/a b#1.txt", None, 12, 30, fingerprint("excerpt"))
    assert Citation.from_query(citation.path, citation.as_query()) == citation
    junk = Citation.from_query("/x.pdf", "page=-1&line_start=abc&fingerprint=zz&page=2")
    assert junk == Citation("/x.pdf")
    stored = {"path": "/x.txt", "line_start": True, "page": 2.5, "fingerprint": 12, "place": "p. 4"}
    assert Citation.from_stored(stored) == Citation("/x.txt", page=4)


def test_the_job_reads_off_a_plain_loop(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("one\ntwo\nthree\n")
    job = read_passage_job(Citation(str(notes), line_start=2, line_end=2), CancelToken())
    assert next(job) == "Reading notes.txt…"
    with pytest.raises(StopIteration) as done:
        next(job)
    passage = done.value.value
    assert isinstance(passage, Passage) and highlighted(passage) == "two"
    assert passage.extent == "lines 1-3 of 3" and passage.changed is None
