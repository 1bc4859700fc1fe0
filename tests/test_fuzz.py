"""Hostile inputs, fuzzed with a fixed budget: whatever bytes arrive, the GGUF validator and the
document readers answer with a clear, known error (or a result), never a crash or a hang.

Mutations start from valid files (a tiny GGUF, a PDF, a Word file, HTML, CSV, a notebook, text)
so that the fuzzer reaches deep into the parsers. The budget here is small for the test suite; raise
it with ``CADRE_FUZZ_EXAMPLES`` (e.g. 5000), or run ``bench/fuzz.py --minutes 10`` for a long run.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.core.documents.chunking import chunk_document
from app.core.documents.extract import SkippedFileError, extract
from app.core.errors import CadreError
from app.core.gguf_header import validate_gguf
from tests.doc_fixtures import write_docx, write_pdf
from tests.tiny_gguf import write_tiny_llama

EXAMPLES = int(os.environ.get("CADRE_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same inputs every run: a failure reproduces
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@st.composite
def mutations(draw: st.DrawFn, original: bytes) -> bytes:
    """``original`` with a few bytes flipped, a slice cut out or repeated, or truncated."""
    data = bytearray(original)
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "cut", "repeat", "truncate", "int"]))
        at = draw(st.integers(0, max(0, len(data) - 1)))
        if kind == "flip" and data:
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "cut":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "repeat":
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
        elif kind == "truncate":
            del data[at:]
        elif kind == "int" and len(data) >= at + 8:  # a huge count or offset
            data[at : at + 8] = draw(
                st.sampled_from([b"\xff" * 8, b"\x00" * 8, b"\xff\xff\xff\x7f" * 2])
            )
    return bytes(data)


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("fuzz-seeds")
    return {
        "gguf": write_tiny_llama(folder / "tiny.gguf", n_layer=1, n_embd=32, n_ff=64).read_bytes(),
        "pdf": write_pdf(folder / "a.pdf", ["Page one text.", "Page two text."]).read_bytes(),
        "docx": write_docx(folder / "a.docx", ["Hello", "World"], [["a", "b"]]).read_bytes(),
        "html": b"<html><head><style>x{}</style></head><body><p>Hi <b>there</b></p></body></html>",
        "csv": b'name,age\nAlice,30\n"Bob, Jr","multi\nline"\n',
        "ipynb": json.dumps(
            {
                "cells": [
                    {"cell_type": "markdown", "source": ["# Title\n", "Some text."]},
                    {"cell_type": "code", "source": "print('hi')", "outputs": []},
                ],
                "nbformat": 4,
            }
        ).encode(),
        "txt": "Plain text: café, naïve.\n\nA second paragraph.\n".encode(),
    }


def test_the_gguf_validator_only_ever_says_corrupt(seeds: dict[str, bytes], tmp_path: Path) -> None:
    path = tmp_path / "fuzzed.gguf"

    @FUZZ
    @given(data=mutations(seeds["gguf"]))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        with contextlib.suppress(CadreError):  # a clear "damaged or not a GGUF" message
            validate_gguf(path)

    check()


@pytest.mark.parametrize("kind", ["pdf", "docx", "html", "csv", "ipynb", "txt"])
def test_document_readers_only_ever_skip_with_a_reason(
    seeds: dict[str, bytes], tmp_path: Path, kind: str
) -> None:
    path = tmp_path / f"fuzzed.{kind}"

    @FUZZ
    @given(data=mutations(seeds[kind]))
    def check(data: bytes) -> None:
        path.write_bytes(data)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # a parser warning escaping would be a failure too
            try:
                chunk_document(extract(path))
            except SkippedFileError as skipped:
                assert skipped.reason

    check()


@FUZZ
@given(text=st.text(max_size=3000))
def test_any_text_chunks_within_bounds_and_keeps_every_character(text: str) -> None:
    from app.core.documents.extract import ExtractedDocument, TextBlock

    document = ExtractedDocument(Path("x.txt"), "text", (TextBlock(text, None, 1),))
    chunks = chunk_document(document)
    assert all(0 < len(chunk.text) <= 1000 for chunk in chunks)
    body = "".join(text.split())
    assert all("".join(chunk.text.split()) in body for chunk in chunks)
