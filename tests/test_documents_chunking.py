"""Chunks: exact line ranges, one page each, bounded size, overlap, and linear time."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from app.core.documents.chunking import Chunk, chunk_document
from app.core.documents.extract import ExtractedDocument, TextBlock, extract

PROSE = (
    "The river rises in the hills north of the town. It runs south through farmland, where "
    "it is slow and wide. In spring it floods the lower meadows! Nobody minds, since the "
    "soil is better for it. Why would they? "
)


def prose(count: int) -> str:
    """``count`` sentences, each different, so a chunk's text is found in one place only."""
    return "".join(
        f"Sentence {n} of the story goes on for a while{'!?.'[n % 3]} " for n in range(count)
    )


def text_doc(text: str, kind: str = "text", first_line: int | None = 1) -> ExtractedDocument:
    return ExtractedDocument(Path(f"doc.{kind}"), kind, (TextBlock(text, None, first_line),))


def numbered_lines(count: int) -> list[str]:
    """Lines of varied length, blank every seventh, each naming its own line number."""
    lines = []
    for number in range(1, count + 1):
        filler = "".join(f" and word{k}" for k in range(number * 7 % 23))
        lines.append("" if number % 7 == 0 else f"Line {number} says{filler}.")
    return lines


def assert_lines_hold_text(chunk: Chunk, file_lines: list[str]) -> None:
    """The chunk's text starts in first_line, ends in last_line and holds the lines between."""
    assert chunk.first_line is not None and chunk.last_line is not None
    held = chunk.text.split("\n")
    covered = file_lines[chunk.first_line - 1 : chunk.last_line]
    assert len(held) == len(covered)
    if len(held) == 1:
        assert held[0] in covered[0]
    else:
        assert covered[0].endswith(held[0])
        assert held[1:-1] == covered[1:-1]
        assert covered[-1].startswith(held[-1])


def test_line_ranges_point_at_the_lines_that_hold_the_text() -> None:
    lines = numbered_lines(400)
    chunks = chunk_document(text_doc("\n".join(lines)), target_chars=300, overlap_chars=60)
    assert len(chunks) > 20
    assert any(c.first_line != c.last_line for c in chunks)
    for chunk in chunks:
        assert_lines_hold_text(chunk, lines)
        for line in chunk.text.split("\n"):
            if line.startswith("Line "):  # a line's start names its number
                number = int(line.split()[1])
                assert chunk.first_line is not None and chunk.last_line is not None
                assert chunk.first_line <= number <= chunk.last_line


def test_line_ranges_count_from_the_block_first_line() -> None:
    doc = text_doc("alpha\n\nbeta\ngamma", first_line=12)
    assert [(c.first_line, c.last_line) for c in chunk_document(doc)] == [(12, 15)]
    doc = text_doc("\n\n\nfour\nfive\n\n\n", first_line=1)
    assert [(c.text, c.first_line, c.last_line) for c in chunk_document(doc)] == [
        ("four\nfive", 4, 5)
    ]


def test_lines_of_a_real_file_with_a_citation(tmp_path: Path) -> None:
    lines = [f"Intro line {n} explains who the two parties are." for n in range(1, 12)] + [""]
    lines += [f"Clause {n}: the tenant pays rent on day {n}." for n in range(13, 31)] + [""]
    path = tmp_path / "lease.txt"
    path.write_text("\n".join(lines) + "\n")
    chunks = chunk_document(extract(path), target_chars=900, overlap_chars=0)
    clauses = [c for c in chunks if "Clause 13:" in c.text]
    assert [(c.first_line, c.last_line) for c in clauses] == [(13, 30)]
    assert clauses[0].text == "\n".join(lines[12:30])


def test_chunks_never_cross_pages() -> None:
    pages = tuple(TextBlock(f"Page {n}. " + PROSE * n, page=n, first_line=None) for n in (1, 2, 3))
    doc = ExtractedDocument(Path("book.pdf"), "pdf", pages)
    chunks = chunk_document(doc, target_chars=400, overlap_chars=80)
    assert [c.page for c in chunks] == sorted(c.page for c in chunks)
    assert {c.page for c in chunks} == {1, 2, 3}
    for chunk in chunks:
        assert chunk.page is not None
        assert chunk.text in pages[chunk.page - 1].text
        assert chunk.first_line is None and chunk.last_line is None
    assert [c.ordinal for c in chunks] == list(range(len(chunks)))
    first_of_page = {c.page: c.text for c in reversed(chunks)}
    assert all(first_of_page[n].startswith(f"Page {n}.") for n in (1, 2, 3))


@pytest.mark.parametrize("target", [50, 200, 1000])
def test_chunks_stay_within_the_target_and_cover_all_text(target: int) -> None:
    text = "\n".join(numbered_lines(150)) + "\n\n" + prose(100)
    chunks = chunk_document(text_doc(text), target_chars=target, overlap_chars=target // 5)
    assert all(0 < len(c.text) <= target for c in chunks)
    assert_covers(text, chunks)


def assert_covers(text: str, chunks: list[Chunk]) -> None:
    """Every non-space character of ``text`` is in some chunk, and chunks come in order."""
    covered = [False] * len(text)
    position = 0
    for chunk in chunks:
        start = text.find(chunk.text, position)
        assert start >= 0
        covered[start : start + len(chunk.text)] = [True] * len(chunk.text)
        position = start + 1
    assert all(done or char.isspace() for done, char in zip(covered, text, strict=True))


def test_default_chunks_fit_the_embedder() -> None:
    chunks = chunk_document(text_doc((PROSE * 8 + "\n\n") * 20))
    assert all(len(c.text) <= 1000 for c in chunks)
    assert sum(len(c.text) for c in chunks) / len(chunks) > 600  # not needlessly small


def test_next_chunk_repeats_the_end_of_the_previous_one() -> None:
    chunks = chunk_document(text_doc(prose(60)), target_chars=300, overlap_chars=100)
    assert len(chunks) > 5
    for before, after in itertools.pairwise(chunks):
        assert after.text.startswith("Sentence ")  # the overlap starts at a sentence
        shared = max(k for k in range(len(after.text) + 1) if before.text.endswith(after.text[:k]))
        assert 40 <= shared <= 100


def test_no_overlap_when_asked_for_none() -> None:
    text = prose(60)
    chunks = chunk_document(text_doc(text), target_chars=300, overlap_chars=0)
    assert " ".join(c.text for c in chunks) == text.strip()


def test_deterministic() -> None:
    text = "\n".join(numbered_lines(300)) + PROSE * 40
    first = chunk_document(text_doc(text), target_chars=250)
    assert first == chunk_document(text_doc(text), target_chars=250)


def test_a_giant_line_is_split_into_bounded_chunks_on_that_line() -> None:
    words = " ".join(f"w{n}" for n in range(3000))
    for line in (words, "x" * 5000):
        chunks = chunk_document(text_doc(f"head\n{line}\ntail"), target_chars=400, overlap_chars=50)
        assert all(len(c.text) <= 400 for c in chunks)
        assert sum(c.first_line == c.last_line == 2 for c in chunks) >= len(line) // 400
        # No overlap inside a sentence (no place to start it), so the chunks add up to the text.
        assert "".join("".join(c.text.split()) for c in chunks) == f"head{line}tail".replace(
            " ", ""
        )


def test_paragraph_and_heading_boundaries_are_preferred() -> None:
    paragraphs = [f"Paragraph {n}. " + PROSE for n in range(6)]
    text = (
        "# Guide\n\n"
        + "\n\n".join(paragraphs[:3])
        + "\n\n## Part two\n\n"
        + "\n\n".join(paragraphs[3:])
    )
    chunks = chunk_document(text_doc(text), target_chars=700, overlap_chars=100)
    assert any(c.text.startswith("## Part two") for c in chunks)  # no overlap before a heading
    for chunk in chunks[:-1]:
        assert chunk.text.endswith(("Why would they?", "their way."))  # a paragraph's end


def test_code_is_cut_between_top_level_definitions() -> None:
    functions = [
        f"def function_{n}(value: int) -> int:\n"
        + "".join(f"    value = value * {k} + {n}  # step {k}\n" for k in range(8))
        + "    return value\n"
        for n in range(12)
    ]
    source = "import math\n\n\n" + "\n\n".join(functions)
    chunks = chunk_document(text_doc(source, kind="code"), target_chars=900, overlap_chars=150)
    assert len(chunks) > 3
    for chunk in chunks[1:]:
        assert chunk.text.startswith("def function_")
    assert_covers(source, chunks)


def test_whitespace_only_blocks_give_no_chunks() -> None:
    blocks = (TextBlock(" \n\n \t", None, 1), TextBlock("real text", None, 9))
    chunks = chunk_document(ExtractedDocument(Path("a.txt"), "text", blocks))
    assert chunks == [Chunk("real text", None, 9, 9, 0)]


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        chunk_document(text_doc("x"), target_chars=100, overlap_chars=100)
    with pytest.raises(ValueError):
        chunk_document(text_doc("x"), target_chars=0, overlap_chars=0)


def test_csv_chunks_cite_the_rows_lines_in_the_file(tmp_path: Path) -> None:
    rows = [f"item{n},{n * 3},note {n}" for n in range(1, 200)]
    path = tmp_path / "items.csv"
    path.write_text("name,price,note\n" + "\n".join(rows) + "\n")
    file_lines = path.read_text().split("\n")
    for chunk in chunk_document(extract(path), target_chars=300, overlap_chars=50):
        assert chunk.first_line is not None and chunk.last_line is not None
        first_name = chunk.text.split(" | ")[0].removeprefix("name: ")
        last_name = chunk.text.split("\n")[-1].split(" | ")[0].removeprefix("name: ")
        assert file_lines[chunk.first_line - 1].startswith(f"{first_name},")
        assert file_lines[chunk.last_line - 1].startswith(f"{last_name},")


def test_large_text_is_chunked_in_linear_time() -> None:
    text = "\n".join(numbered_lines(2000)) * 10  # about 3 MB
    started = time.perf_counter()
    chunks = chunk_document(text_doc(text))
    assert time.perf_counter() - started < 10
    assert len(chunks) > len(text) // 1000
