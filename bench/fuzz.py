"""A long fuzz run of the parsers that read hostile files: the GGUF validator and every document
reader (PDF, Word, HTML, CSV, Jupyter notebook, plain text), each followed by the chunker.

The test suite fuzzes the same code for a few seconds (tests/test_fuzz.py); this script runs for
minutes. Inputs are mutations of valid seed files (bytes flipped, cut, repeated, spliced, numbers
made huge, parser keywords inserted; a Word file is also mutated inside its zip), so that most of
them get past the first checks. Every input must end in a result or the parser's own refusal
(``GGUFFormatError``; ``SkippedFileError`` with a reason): any other exception, an escaping warning
or an input that takes longer than ``--hang-s`` is a failure, saved under ``--out`` to reproduce.

Usage: python bench/fuzz.py [--minutes 10] [--seed 1] [--out /tmp/cadre-fuzz] [--hang-s 10]
Prints, per target: inputs tried, accepted, refused, failures, the slowest input, inputs/s.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import random
import signal
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.documents.chunking import chunk_document
from app.core.documents.extract import SkippedFileError, extract
from app.core.gguf_header import GGUFFormatError, validate_gguf
from tests.doc_fixtures import write_docx, write_pdf
from tests.tiny_gguf import CHATML_TEMPLATE, write_tiny_llama

HUGE = (b"\xff" * 8, b"\x00" * 8, b"\xff\xff\xff\x7f" * 2, b"\x00\x00\x00\x80" * 2)
KEYWORDS = {
    "gguf": (b"GGUF", b"general.alignment", b"tokenizer.chat_template", b"\x08\x00\x00\x00"),
    "pdf": (b" obj ", b"endobj", b"stream\n", b"/Length 999999999", b"<<", b">>", b"/Encrypt"),
    "docx": (b"<w:p>", b"</w:p>", b"<w:tbl>", b"<w:t>", b"&amp;", b"<!ENTITY x 'y'>"),
    "html": (b"<div>", b"<script>", b"<!--", b"<table><tr><td>", b"&#x10FFFF;", b"<![CDATA["),
    "csv": (b'"', b",", b"\n", b"\t", b";", b'""'),
    "ipynb": (b"[", b"{", b'"cells":', b'"source":', b"null", b'"cell_type": "raw"'),
    "txt": (b"\xef\xbb\xbf", b"\xff\xfe", b"\x00", b"\r\n", b"\xe9", b"\xf0\x9f\x98"),
}


class Hang(BaseException):
    """Raised by the alarm: a BaseException, so no parser's ``except Exception`` swallows it."""


@dataclass
class Tally:
    tried: int = 0
    accepted: int = 0
    refused: int = 0
    failures: list[str] = field(default_factory=list)
    slowest_s: float = 0.0
    busy_s: float = 0.0


def seeds(folder: Path) -> dict[str, list[bytes]]:
    """Valid files of every kind, the starting points of the mutations."""
    gguf = write_tiny_llama(folder / "a.gguf", n_layer=1, n_embd=32, n_ff=64)
    chat = write_tiny_llama(
        folder / "b.gguf", n_layer=1, n_embd=32, n_ff=64, chat_template=CHATML_TEMPLATE
    )
    notebook = {
        "cells": [
            {"cell_type": "markdown", "source": ["# Title\n", "Some *text*."], "metadata": {}},
            {"cell_type": "code", "source": "print('hi')", "outputs": [], "metadata": {}},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    return {
        "gguf": [gguf.read_bytes(), chat.read_bytes()],
        "pdf": [write_pdf(folder / "a.pdf", ["Page one text.", "Page two text."]).read_bytes()],
        "docx": [
            write_docx(folder / "a.docx", ["# Head", "Hello", "World"], [["a", "b"]]).read_bytes()
        ],
        "html": [
            b"<html><head><title>T</title><style>x{}</style></head><body><h1>Hi</h1>"
            b"<p>Some <b>bold</b> text &amp; more.</p><pre>  code\n  here</pre>"
            b"<table><tr><td>a</td><td>b</td></tr></table><script>var x;</script></body></html>"
        ],
        "csv": [b'name,age\nAlice,30\n"Bob, Jr","multi\nline"\n', b"a\tb\n1\t2\n"],
        "ipynb": [json.dumps(notebook).encode()],
        "txt": [
            "Plain text, with accents: café, naïve.\n\nA second paragraph.\n".encode(),
            "UTF-16 text with a BOM.\n".encode("utf-16"),
        ],
    }


def mutate(rng: random.Random, data: bytes, keywords: tuple[bytes, ...]) -> bytes:
    """A few random edits of ``data``."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        at = rng.randrange(len(out) + 1)
        kind = rng.choice(("flip", "cut", "repeat", "truncate", "huge", "keyword", "splice"))
        if kind == "flip" and at < len(out):
            out[at] ^= rng.randint(1, 255)
        elif kind == "cut":
            del out[at : at + rng.randint(1, 256)]
        elif kind == "repeat":
            out[at:at] = out[at : at + rng.randint(1, 256)] * rng.randint(1, 50)
        elif kind == "truncate" and rng.random() < 0.3:
            del out[at:]
        elif kind == "huge" and at + 8 <= len(out):
            out[at : at + 8] = rng.choice(HUGE)
        elif kind == "keyword":
            out[at:at] = rng.choice(keywords) * rng.randint(1, 20)
        elif kind == "splice" and out:
            start = rng.randrange(len(out))
            out[at:at] = out[start : start + rng.randint(1, 512)]
    return bytes(out)


def mutate_inside_zip(rng: random.Random, data: bytes, keywords: tuple[bytes, ...]) -> bytes:
    """A Word file whose XML parts are mutated and zipped again (checksums valid), so that the
    XML parser and python-docx see the damage, not only the zip reader."""
    source = zipfile.ZipFile(io.BytesIO(data))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename.endswith(".xml") and rng.random() < 0.5:
                content = mutate(rng, content, keywords)
            target.writestr(item, content)
    return buffer.getvalue()


def check_gguf(path: Path) -> bool:
    """True when the file is accepted; False when refused as it should be."""
    try:
        validate_gguf(path)
    except GGUFFormatError:
        return False
    return True


def check_document(path: Path) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a parser warning escaping the reader is a failure too
        try:
            chunk_document(extract(path))
        except SkippedFileError as skipped:
            if not skipped.reason:
                raise AssertionError("skipped without a reason") from None
            return False
    return True


def run_one(
    check: Callable[[Path], bool], path: Path, data: bytes, hang_s: float, tally: Tally
) -> str:
    """Run one input; return "" or a one-line description of the failure."""
    path.write_bytes(data)
    signal.setitimer(signal.ITIMER_REAL, hang_s)
    started = time.perf_counter()
    try:
        accepted = check(path)
    except Hang:
        return f"took over {hang_s:g} s"
    except Exception as exc:
        detail = traceback.format_exception_only(type(exc), exc)[-1].strip()
        return f"{type(exc).__name__}: {detail[:200]}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        spent = time.perf_counter() - started
        tally.busy_s += spent
        tally.slowest_s = max(tally.slowest_s, spent)
    if accepted:
        tally.accepted += 1
    else:
        tally.refused += 1
    return ""


def fuzz(minutes: float, seed: int, out: Path, hang_s: float) -> dict[str, Tally]:
    rng = random.Random(seed)
    quiet = logging.getLogger("pypdf")  # its notes on odd fonts would flood the output
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    work = Path(tempfile.mkdtemp(prefix="cadre-fuzz-"))
    starts = seeds(work)
    tallies = {kind: Tally() for kind in starts}
    deadline = time.monotonic() + minutes * 60

    def alarm(signum: int, frame: object) -> None:
        raise Hang()

    signal.signal(signal.SIGALRM, alarm)
    while time.monotonic() < deadline:
        for kind, originals in starts.items():
            original = rng.choice(originals)
            inside = kind == "docx" and rng.random() < 0.7
            data = (mutate_inside_zip if inside else mutate)(rng, original, KEYWORDS[kind])
            check = check_gguf if kind == "gguf" else check_document
            tally = tallies[kind]
            tally.tried += 1
            failure = run_one(check, work / f"input.{kind}", data, hang_s, tally)
            if failure:
                saved = out / f"{kind}-{tally.tried:06d}.{kind}"
                out.mkdir(parents=True, exist_ok=True)
                saved.write_bytes(data)
                tally.failures.append(f"{saved}: {failure}")
    return tallies


def report(tallies: dict[str, Tally], minutes: float, seed: int) -> None:
    print(f"Fuzzed for {minutes:g} min (seed {seed}):")
    print(
        f"{'target':8} {'inputs':>8} {'accepted':>9} {'refused':>8} {'failures':>9} "
        f"{'slowest':>9} {'inputs/s':>9}"
    )
    for kind, tally in tallies.items():
        rate = tally.tried / tally.busy_s if tally.busy_s else 0.0
        print(
            f"{kind:8} {tally.tried:8d} {tally.accepted:9d} {tally.refused:8d} "
            f"{len(tally.failures):9d} {tally.slowest_s * 1000:7.0f}ms {rate:9.0f}"
        )
    total = sum(t.tried for t in tallies.values())
    failures = [line for t in tallies.values() for line in t.failures]
    print(f"total: {total} inputs, {len(failures)} failures")
    for line in failures[:50]:
        print(f"  {line}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / "cadre-fuzz")
    parser.add_argument("--hang-s", type=float, default=10.0)
    args = parser.parse_args()
    tallies = fuzz(args.minutes, args.seed, args.out, args.hang_s)
    report(tallies, args.minutes, args.seed)
    return 1 if any(t.failures for t in tallies.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
