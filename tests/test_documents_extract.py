"""Reading real files of every supported format, and every way a file can be skipped."""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.documents.extract import (
    MAX_FILE_BYTES,
    SUPPORTED_SUFFIXES,
    ExtractedDocument,
    SkippedFileError,
    TextBlock,
    extract,
    is_supported,
)
from app.core.errors import CadreError
from tests.doc_fixtures import write_docx, write_drawing_pdf, write_odd_encoding_pdf, write_pdf


def only_text(doc: ExtractedDocument) -> str:
    assert len(doc.blocks) == 1
    return doc.blocks[0].text


def skip_reason(path: Path, **kwargs: int) -> str:
    with pytest.raises(SkippedFileError) as caught:
        extract(path, **kwargs)
    assert caught.value.path == path
    assert str(caught.value) == f"Skipped {path.name}: {caught.value.reason}"
    return caught.value.reason


# Formats --------------------------------------------------------------------------------------


def test_plain_text_is_one_block_from_line_one_with_unix_newlines(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes(b"\xef\xbb\xbfFirst line\r\nSecond line\rThird line\n")
    doc = extract(path)
    assert doc.kind == "text"
    assert doc.path == path
    assert doc.blocks == (TextBlock("First line\nSecond line\nThird line\n", None, 1),)


def test_markdown_and_code_files(tmp_path: Path) -> None:
    (tmp_path / "README.MD").write_text("# Title\n\nSome prose.\n")
    (tmp_path / "tool.py").write_text("def main() -> None:\n    pass\n")
    assert extract(tmp_path / "README.MD").kind == "text"
    code = extract(tmp_path / "tool.py")
    assert code.kind == "code"
    assert code.blocks == (TextBlock("def main() -> None:\n    pass\n", None, 1),)


def test_text_that_is_not_utf8_is_decoded_by_guess(tmp_path: Path) -> None:
    path = tmp_path / "old.txt"
    path.write_bytes("Un café très crème, s'il vous plaît.\n".encode("cp1252"))
    assert only_text(extract(path)) == "Un café très crème, s'il vous plaît.\n"


def test_utf16_with_a_bom_is_text_not_binary(tmp_path: Path) -> None:
    path = tmp_path / "windows.txt"
    path.write_bytes("Grüße aus Windows\r\n".encode("utf-16"))
    assert only_text(extract(path)) == "Grüße aus Windows\n"


def test_csv_rows_name_their_values_and_keep_their_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        'name,age,note\nAlice,30,"two\nlines"\nBob,,tall\n\nCarl,5,short,extra\n', newline=""
    )
    doc = extract(path)
    assert doc.kind == "csv"
    block = doc.blocks[0]
    assert block.first_line == 2
    lines = block.text.split("\n")
    assert lines[0] == "name: Alice | age: 30 | note: two lines"
    assert lines[1] == ""  # line 3 of the file is the rest of Alice's row
    assert lines[4 - 2] == "name: Bob | note: tall"
    assert lines[6 - 2] == "name: Carl | age: 5 | note: short | column 4: extra"


def test_tsv_and_semicolon_csv(tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("city\tcountry\nLyon\tFrance\n")
    (tmp_path / "b.csv").write_text("Stadt;Land\nKöln;Deutschland\n")
    assert only_text(extract(tmp_path / "a.tsv")) == "city: Lyon | country: France"
    assert only_text(extract(tmp_path / "b.csv")) == "Stadt: Köln | Land: Deutschland"


def test_pdf_gives_one_block_per_page_numbered_from_one(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "report.pdf", ["Alpha page.", "Beta page.", "Gamma page."])
    doc = extract(path)
    assert doc.kind == "pdf"
    assert [(block.page, block.text.strip(), block.first_line) for block in doc.blocks] == [
        (1, "Alpha page.", None),
        (2, "Beta page.", None),
        (3, "Gamma page.", None),
    ]


def test_blank_pdf_pages_are_left_out_but_keep_the_numbering(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "gaps.pdf", ["First.", "", "Third."])
    assert [block.page for block in extract(path).blocks] == [1, 3]


def test_pdf_encrypted_only_against_editing_opens(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "locked.pdf", ["Readable by anyone."], owner_password="admin")
    assert extract(path).blocks[0].text.strip() == "Readable by anyone."


def test_docx_paragraphs_and_tables_in_order_without_line_numbers(tmp_path: Path) -> None:
    path = write_docx(
        tmp_path / "memo.docx",
        ["Quarterly memo", "", "# Results", "Sales went up."],
        table=[["Region", "Sales", ""], ["North", "12", ""]],
    )
    doc = extract(path)
    assert doc.kind == "docx"
    assert doc.blocks == (
        TextBlock(
            "Quarterly memo\n\nResults\nSales went up.\n\nRegion | Sales\nNorth | 12\n\n"
            "After the table.",
            page=None,
            first_line=None,
        ),
    )


def test_html_keeps_visible_text_only(tmp_path: Path) -> None:
    path = tmp_path / "page.html"
    path.write_text(
        "<!doctype html><html><head><title>The  Title</title><style>p {color: red}</style>"
        "<script>var hidden = 1;</script></head><body><nav>Home | About</nav>"
        "<!-- a comment --><h1>Heading</h1><p>Some <b>bold</b>\n   text.</p>"
        "<ul><li>one</li><li>two</li></ul><table><tr><th>Name</th><th>Age</th></tr>"
        "<tr><td>Ann</td><td>7</td></tr></table><footer>Copyright</footer></body></html>"
    )
    text = only_text(extract(path))
    assert text == ("The Title\n\nHeading\n\nSome bold text.\n\none\ntwo\n\nName | Age\nAnn | 7")


def test_xhtml_and_preformatted_text(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml">'
        "<body><p>Hi <i>there</i></p><pre>first\nsecond</pre>after</body></html>"
    )
    assert only_text(extract(path)) == "Hi there\n\nfirst\nsecond\nafter"


def test_big_html_page_is_read_quickly(tmp_path: Path) -> None:
    """BeautifulSoup took half a minute on a 10 MB page; quadratic tree edits take longer."""
    block = (
        "<div><p>Paragraph {} <b>bold</b>.</p><ul><li>a</li></ul><!-- c --><script>x</script></div>"
    )
    path = tmp_path / "big.html"
    path.write_text(
        "<html><body>" + "".join(block.format(n) for n in range(20_000)) + "</body></html>"
    )
    started = time.perf_counter()
    text = only_text(extract(path))
    assert time.perf_counter() - started < 10
    assert text.startswith("Paragraph 0 bold.\n\na\n\nParagraph 1 bold.")
    assert "x" not in text and "c" not in text.replace("Paragraph", "")


def test_notebook_cells_without_outputs(tmp_path: Path) -> None:
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Analysis\n", "We load data."]},
            {"cell_type": "code", "source": "x = 1", "outputs": [{"text": "noise"}]},
        ]
    }
    path = tmp_path / "analysis.ipynb"
    path.write_text(json.dumps(notebook))
    assert only_text(extract(path)) == "# Analysis\nWe load data.\n\nx = 1"


def test_is_supported_by_suffix_whatever_the_case() -> None:
    assert {".pdf", ".docx", ".md", ".csv", ".py", ".html"} <= SUPPORTED_SUFFIXES
    assert is_supported(Path("A.PDF"))
    assert is_supported(Path("notes.Markdown"))
    assert not is_supported(Path("photo.jpg"))
    assert not is_supported(Path("Makefile"))


# Files that are skipped -----------------------------------------------------------------------


def test_skipped_file_error_is_a_cadre_error(tmp_path: Path) -> None:
    (tmp_path / "photo.jpg").write_bytes(b"\xff\xd8\xff")
    assert skip_reason(tmp_path / "photo.jpg") == "not a supported file type (.jpg)"
    assert issubclass(SkippedFileError, CadreError)
    error = pickle.loads(pickle.dumps(SkippedFileError(Path("a.pdf"), "empty")))
    assert (str(error), error.path, error.reason) == (
        "Skipped a.pdf: empty",
        Path("a.pdf"),
        "empty",
    )


@pytest.mark.parametrize(
    "data",
    [b"%PDF-1.7\n1 0 obj garbage \x00\x01\x02", b"not a pdf at all, just words"],
    ids=["garbage", "words"],
)
def test_damaged_pdf(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "broken.pdf"
    path.write_bytes(data)
    assert skip_reason(path).startswith("damaged PDF: ")


def test_truncated_pdf(tmp_path: Path) -> None:
    whole = write_pdf(tmp_path / "whole.pdf", ["Some text."] * 3).read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(whole[: len(whole) // 3])
    assert skip_reason(path).startswith("damaged PDF: ")


def test_pdf_oddities_log_nothing_and_failures_still_give_a_reason(tmp_path: Path) -> None:
    """pypdf logs what it works around at ERROR, which Python prints on stderr when no handler is
    set up: indexing odd PDFs flooded the terminal. A fresh interpreter, as the CLI has."""
    odd = write_odd_encoding_pdf(tmp_path / "odd.pdf", "Readable despite its font.")
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n1 0 obj garbage \x00\x01\x02")
    script = (
        "import sys; from pathlib import Path\n"
        "from app.core.documents.extract import SkippedFileError, extract\n"
        "print(extract(Path(sys.argv[1])).blocks[0].text)\n"
        "try:\n    extract(Path(sys.argv[2]))\n"
        "except SkippedFileError as exc:\n    print(exc.reason)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script, str(odd), str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert run.stderr == ""
    text, reason = run.stdout.splitlines()
    assert text == "Readable despite its font."
    assert reason.startswith("damaged PDF: ")


def test_pdf_without_a_text_layer(tmp_path: Path) -> None:
    assert skip_reason(write_drawing_pdf(tmp_path / "scan.pdf")) == "no text layer (scanned PDF?)"


def test_pdf_that_needs_a_password(tmp_path: Path) -> None:
    path = write_pdf(tmp_path / "secret.pdf", ["Hidden."], user_password="s3cret")
    assert skip_reason(path) == "encrypted PDF: it needs a password to open"


def test_damaged_docx(tmp_path: Path) -> None:
    whole = write_docx(tmp_path / "whole.docx", ["Text."]).read_bytes()
    (tmp_path / "cut.docx").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "fake.docx").write_bytes(b"PK\x03\x04 this is no zip")
    assert skip_reason(tmp_path / "cut.docx").startswith("damaged Word document: ")
    assert skip_reason(tmp_path / "fake.docx").startswith("damaged Word document: ")


def test_binary_data_under_a_text_extension(tmp_path: Path) -> None:
    (tmp_path / "image.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200))
    (tmp_path / "blob.py").write_bytes(bytes(range(1, 32)) * 40)  # no NUL, all control bytes
    assert skip_reason(tmp_path / "image.txt") == "binary data, not text"
    assert skip_reason(tmp_path / "blob.py") == "binary data, not text"


def test_empty_and_blank_files(tmp_path: Path) -> None:
    (tmp_path / "empty.md").write_bytes(b"")
    (tmp_path / "blank.txt").write_text(" \n\n\t\n")
    assert skip_reason(tmp_path / "empty.md") == "empty"
    assert skip_reason(tmp_path / "blank.txt") == "no text"
    (tmp_path / "comment.html").write_text("<!-- nothing to see -->")
    assert skip_reason(tmp_path / "comment.html") == "no text"


def test_file_over_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "huge.txt"
    with path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES + 1)  # sparse: no data is written
    assert skip_reason(path) == "too large (200.0 MB; the limit is 200.0 MB)"
    small = tmp_path / "small.txt"
    small.write_text("x" * 1500)
    assert skip_reason(small, max_bytes=1000) == "too large (1.5 KB; the limit is 1.0 KB)"


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads anything")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "private.txt"
    path.write_text("secret")
    path.chmod(0)
    try:
        assert skip_reason(path) == "cannot be read: permission denied"
    finally:
        path.chmod(0o600)


def test_vanished_file_and_folder(tmp_path: Path) -> None:
    (tmp_path / "folder.txt").mkdir()
    assert skip_reason(tmp_path / "gone.txt") == "cannot be read: it no longer exists"
    assert skip_reason(tmp_path / "folder.txt") == "not a regular file"


def test_damaged_notebook_and_csv(tmp_path: Path) -> None:
    (tmp_path / "a.ipynb").write_text('{"nbformat": 4}')
    (tmp_path / "b.ipynb").write_text("{not json")
    (tmp_path / "c.csv").write_text('a,b\n"' + "x" * 200_000 + "\n")  # beyond csv's field limit
    assert skip_reason(tmp_path / "a.ipynb") == "damaged notebook: no 'cells' in it"
    assert skip_reason(tmp_path / "b.ipynb").startswith("damaged notebook: ")
    assert skip_reason(tmp_path / "c.csv").startswith("damaged CSV file: ")


@pytest.mark.parametrize("suffix", [".pdf", ".docx", ".html", ".csv", ".ipynb", ".txt"])
def test_no_parser_error_escapes_on_random_bytes(tmp_path: Path, suffix: str) -> None:
    rng = random.Random(suffix)
    seeds = {
        ".pdf": write_pdf(tmp_path / "seed.pdf", ["Seed text."]).read_bytes(),
        ".docx": write_docx(tmp_path / "seed.docx", ["Seed text."]).read_bytes(),
    }
    for attempt in range(20):
        data = bytearray(seeds.get(suffix, b'<p>a,b</p>\n{"cells": []}\n' * 20))
        for _ in range(rng.randint(1, 30)):  # flip bytes, then maybe cut the end off
            data[rng.randrange(len(data))] = rng.randrange(256)
        path = tmp_path / f"fuzz{attempt}{suffix}"
        path.write_bytes(bytes(data[: rng.randint(1, len(data))]))
        with contextlib.suppress(SkippedFileError):
            extract(path)
