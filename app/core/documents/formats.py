"""One reader per file format: bytes in, :class:`TextBlock` list out, :class:`Unusable` on failure.

The parser libraries (pypdf, python-docx, lxml, charset-normalizer) are imported on first
use, so importing this module stays cheap. Their warnings are silenced and their errors
become a short reason (:func:`parsing`).
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import logging
import re
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from docx.document import Document as DocxDocument
    from docx.table import Table
    from docx.text.paragraph import Paragraph
    from pypdf import PdfReader

_CODE_SUFFIXES = [
    ".py", ".js", ".ts", ".tsx", ".jsx", ".java", ".c", ".h", ".cpp", ".hpp", ".cc", ".cs",
    ".go", ".rs", ".rb", ".php", ".swift", ".kt", ".scala", ".sh", ".bash", ".sql", ".r", ".m",
    ".lua", ".pl", ".toml", ".yaml", ".yml", ".json", ".ini", ".cfg", ".css", ".scss", ".xml",
]  # fmt: skip
KIND_BY_SUFFIX: dict[str, str] = {
    **dict.fromkeys((".txt", ".md", ".markdown", ".rst"), "text"),
    **dict.fromkeys(_CODE_SUFFIXES, "code"),
    **dict.fromkeys((".csv", ".tsv"), "csv"),
    **dict.fromkeys((".html", ".htm"), "html"),
    ".pdf": "pdf",
    ".docx": "docx",
    ".ipynb": "notebook",
}
_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class TextBlock:
    """A piece of a document and where it came from.

    ``page`` is 1-based (PDFs only). ``first_line`` is the 1-based line of the file holding the
    block's first line of text, and each ``\\n`` in ``text`` moves to the next line of the file.
    It is ``None`` where the format has no lines a reader could look up (PDF, Word, HTML and
    notebooks, whose line breaks depend on layout or are made up here).
    """

    text: str
    page: int | None
    first_line: int | None


class Unusable(Exception):
    """Raised by the readers, which do not know the file's path; ``extract`` adds it."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@contextmanager
def parsing(what: str) -> Iterator[None]:
    """Parser libraries warn and raise on odd files: the warnings are silenced (noise to the
    user) and any error becomes ``damaged <what>: <cause>``. MemoryError still propagates."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        except (Unusable, MemoryError):
            raise
        except Exception as exc:
            raise Unusable(f"damaged {what}: {_short_cause(exc)}") from exc


def _short_cause(exc: Exception) -> str:
    if isinstance(exc, KeyError):
        return f"no {exc.args[0]!r} in it" if exc.args else "a part is missing"
    lines = str(exc).strip().splitlines()
    cause = lines[0] if lines else type(exc).__name__
    return cause if len(cause) <= 80 else cause[:79] + "…"


# Plain text -------------------------------------------------------------------------------------

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),  # before UTF-16 LE, whose BOM is its prefix
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1a\x1c-\x1f]")  # not tab, newlines, FF, ESC


def decode_text(data: bytes) -> str:
    """The text of a text file with ``\\n`` newlines: UTF-8, a BOM-marked Unicode encoding, or
    what charset-normalizer guesses. Binary data (judged by its first 8 KB) is refused."""
    bom_encoding = next((name for bom, name in _BOMS if data.startswith(bom)), None)
    if bom_encoding is not None:
        text = data.decode(bom_encoding, errors="replace")
    elif _looks_binary(data[:_SNIFF_BYTES]):
        raise Unusable("binary data, not text")
    else:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            text = data.decode(_guess_encoding(data), errors="replace")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _looks_binary(sample: bytes) -> bool:
    if b"\x00" in sample:
        return True
    return len(_CONTROL_BYTES.findall(sample)) > len(sample) // 20


def _guess_encoding(data: bytes) -> str:
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise Unusable("binary data, not text")
    # In a short text many single-byte code pages tie; Windows-1252 is then the likeliest.
    ties = {m.encoding for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)}
    return "cp1252" if "cp1252" in ties else best.encoding


def _read_text(data: bytes, suffix: str) -> list[TextBlock]:
    return [TextBlock(decode_text(data), page=None, first_line=1)]


# Tables -----------------------------------------------------------------------------------------


def _read_table(data: bytes, suffix: str) -> list[TextBlock]:
    """One line per row, ``name: value | name: value``, so a row found alone still says what its
    values are. Each row keeps its line number in the file: a row spanning several lines (a
    quoted newline) is followed by blank lines that keep the count."""
    text = decode_text(data)
    delimiter = "\t" if suffix == ".tsv" else _csv_delimiter(text)
    with parsing("CSV file"):
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return []
        names = [name.strip() or f"column {number}" for number, name in enumerate(header, 1)]
        first_line = reader.line_num + 1
        lines: list[str] = []
        for row in reader:
            lines.append(_render_row(names, row))
            lines.extend([""] * (reader.line_num - (first_line + len(lines) - 1)))
    return [TextBlock("\n".join(lines), page=None, first_line=first_line)]


def _csv_delimiter(text: str) -> str:
    """Comma, or the separator the header line uses most (semicolons in many locales)."""
    header = text.partition("\n")[0]
    return max((",", ";", "\t", "|"), key=header.count)


def _render_row(names: list[str], row: list[str]) -> str:
    pairs = []
    for index, value in enumerate(row):
        if value.strip():
            name = names[index] if index < len(names) else f"column {index + 1}"
            pairs.append(f"{name}: {' '.join(value.split())}")
    return " | ".join(pairs)


# PDF --------------------------------------------------------------------------------------------


NO_TEXT_LAYER = "no text layer (scanned PDF?)"


class PdfPages:
    """A PDF opened to read its pages' text one at a time: the indexer reads every page, the
    source viewer only the few it shows (pypdf parses a page's content only when asked)."""

    def __init__(self, data: bytes) -> None:
        from pypdf import PdfReader

        _quiet_pypdf()
        with parsing("PDF"):
            self._reader = PdfReader(io.BytesIO(data))
            _unlock(self._reader)
            self.count = len(self._reader.pages)

    def text(self, number: int) -> str:
        """The text layer of page ``number`` (1-based); :class:`Unusable` if that page is damaged."""
        with parsing("PDF"):
            text = self._reader.pages[number - 1].extract_text()
        return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def _read_pdf(data: bytes, suffix: str) -> list[TextBlock]:
    """One block per page, from the text layer. A page that fails alone is left out; a file whose
    every page fails is damaged."""
    pdf = PdfPages(data)
    blocks: list[TextBlock] = []
    failure: Unusable | None = None
    for number in range(1, pdf.count + 1):
        try:
            text = pdf.text(number)
        except Unusable as exc:
            failure = exc
            continue
        blocks.append(TextBlock(text, page=number, first_line=None))
    if failure is not None and not blocks:
        raise failure
    return blocks


def _quiet_pypdf() -> None:
    """pypdf logs every oddity it works around, some at ERROR with whole encoding tables in them
    ("Advanced encoding ... not implemented"): noise to the user, flooding stderr while indexing.
    What it cannot work around it raises, and that still becomes the file's skip reason."""
    logger = logging.getLogger("pypdf")
    logger.setLevel(logging.CRITICAL)
    logger.propagate = False
    if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
        logger.addHandler(logging.NullHandler())  # else Python's last-resort handler prints it


def _unlock(reader: PdfReader) -> None:
    """Open an encrypted PDF that needs no password to read (only to edit); refuse the rest."""
    from pypdf import PasswordType

    if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
        raise Unusable("encrypted PDF: it needs a password to open")


# Word -------------------------------------------------------------------------------------------


def _read_docx(data: bytes, suffix: str) -> list[TextBlock]:
    """Paragraphs and table rows in document order, a line each. Word has no page or line
    numbers a reader could look up (both depend on the layout), so the block has neither."""
    from docx import Document

    with parsing("Word document"):
        document = Document(io.BytesIO(data))
        lines = list(_docx_lines(document))
    return [TextBlock("\n".join(lines), page=None, first_line=None)]


def _docx_lines(document: DocxDocument) -> Iterator[str]:
    from docx.text.paragraph import Paragraph

    headings = _heading_style_ids(document)
    for item in document.iter_inner_content():
        if isinstance(item, Paragraph):
            if item.text.strip():
                if _style_id(item) in headings:
                    yield ""  # a blank line before a heading: the chunker prefers to cut there
                yield item.text
        else:
            yield ""  # a blank line sets a table apart from the paragraphs around it
            yield from _table_lines(item)
            yield ""


def _heading_style_ids(document: DocxDocument) -> set[str]:
    """Ids of the paragraph styles named Heading… or Title, read once: ``paragraph.style`` looks
    the style up again for every paragraph (7.8 of 8.2 s for 1,500 paragraphs)."""
    return {
        style.style_id
        for style in document.styles
        if isinstance(style.name, str) and style.name.startswith(("Heading", "Title"))
    }


def _style_id(paragraph: Paragraph) -> str | None:
    properties = paragraph._p.pPr
    return properties.style if properties is not None else None


def _table_lines(table: Table) -> Iterator[str]:
    for row in table.rows:
        cells: list[str] = []
        previous = None
        for cell in row.cells:
            if cell._tc is previous:  # a merged cell is listed once per grid column it spans
                continue
            previous = cell._tc
            cells.append(" ".join(cell.text.split()))
        while cells and not cells[-1]:
            cells.pop()
        if cells:
            yield " | ".join(cells)


# HTML -------------------------------------------------------------------------------------------

_HIDDEN_TAGS = (
    "head", "script", "style", "noscript", "template", "svg", "canvas", "iframe", "object",
    "nav", "aside", "footer", "button", "select",
)  # fmt: skip
_BLOCK_TAGS = frozenset((
    "p", "div", "section", "article", "main", "header", "h1", "h2", "h3", "h4", "h5", "h6",
    "ul", "ol", "dl", "table", "blockquote", "pre", "figure", "figcaption", "hr", "address",
    "details", "summary", "form", "fieldset",
))  # fmt: skip
_AFTER_TAG = {
    **dict.fromkeys(_BLOCK_TAGS, "\n"),
    **dict.fromkeys(("br", "li", "tr", "dt", "dd", "option"), "\n"),
    **dict.fromkeys(("td", "th"), " | "),
}
_WHITESPACE = re.compile(r"\s+")
_XML_DECLARATION = re.compile(r"\A\s*<\?xml[^>]*>")  # lxml refuses it in a str


def _read_html(data: bytes, suffix: str) -> list[TextBlock]:
    """The visible text, a line per block element: no scripts, styles or navigation.

    lxml rather than BeautifulSoup: it parses a 10 MB page in under a second, not half a minute.
    """
    import lxml.html
    from lxml.etree import ParserError

    text = _XML_DECLARATION.sub("", decode_text(data), count=1)
    with parsing("HTML"):
        try:
            root = lxml.html.document_fromstring(text)
        except ParserError:  # nothing but white space and comments
            return []
        title = " ".join((root.findtext(".//title") or "").split())
        body = _visible_text(root)
    return [TextBlock(f"{title}\n\n{body}" if title else body, page=None, first_line=None)]


def _visible_text(root: Any) -> str:
    """The text a browser shows, with a blank line between blocks and a line per list item or
    table row. Source line breaks are spaces, except inside <pre>."""
    from lxml import etree

    hidden = root.iter(*_HIDDEN_TAGS, etree.Comment, etree.ProcessingInstruction)
    for element in list(hidden):
        element.drop_tree()  # keeps the text that follows it
    parts: list[str] = []
    in_pre = 0
    for event, element in etree.iterwalk(root, events=("start", "end")):
        tag = element.tag
        if event == "start":
            if tag == "pre":
                in_pre += 1
            parts.append("\n" if tag in _BLOCK_TAGS else "")
            parts.append(_flowed(element.text, in_pre=in_pre > 0))
        else:
            if tag == "pre":
                in_pre -= 1
            parts.append(_AFTER_TAG.get(tag, ""))
            parts.append(_flowed(element.tail, in_pre=in_pre > 0))
    return _tidy_lines("".join(parts))


def _flowed(text: str | None, *, in_pre: bool) -> str:
    if not text:
        return ""
    return text if in_pre else _WHITESPACE.sub(" ", text)


def _tidy_lines(raw: str) -> str:
    """Strip each line (and stray cell separators); keep at most one blank line in a row."""
    lines: list[str] = []
    for line in raw.split("\n"):
        tidy = line.strip().strip("|").strip()
        if tidy or (lines and lines[-1]):
            lines.append(tidy)
    return "\n".join(lines).strip()


# Notebooks --------------------------------------------------------------------------------------


def _read_notebook(data: bytes, suffix: str) -> list[TextBlock]:
    """The markdown and code cells of a Jupyter notebook; outputs are left out."""
    text = decode_text(data)
    with parsing("notebook"):
        cells = json.loads(text)["cells"]
        sources = ["".join(cell["source"]) for cell in cells if cell["cell_type"] != "raw"]
    return [TextBlock("\n\n".join(sources), page=None, first_line=None)]


READERS: dict[str, Callable[[bytes, str], list[TextBlock]]] = {
    "text": _read_text,
    "code": _read_text,
    "csv": _read_table,
    "pdf": _read_pdf,
    "docx": _read_docx,
    "html": _read_html,
    "notebook": _read_notebook,
}
