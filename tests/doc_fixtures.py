"""Real documents written at test time: PDFs with fpdf2, Word files with python-docx."""

from __future__ import annotations

from pathlib import Path

import docx
from fpdf import FPDF
from fpdf.enums import EncryptionMethod, XPos, YPos


def write_pdf(
    path: Path,
    pages: list[str],
    *,
    user_password: str | None = None,
    owner_password: str | None = None,
) -> Path:
    """One page per string, in Helvetica (Latin-1 text only). A password encrypts it (AES-128)."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 6, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)
    if user_password is not None or owner_password is not None:
        pdf.set_encryption(
            owner_password=owner_password or "owner",
            user_password=user_password,
            encryption_method=EncryptionMethod.AES_128,
        )
    path.write_bytes(bytes(pdf.output()))
    return path


def write_odd_encoding_pdf(path: Path, text: str) -> Path:
    """A one-page PDF whose font names an encoding pypdf does not know: it reads the text with
    its standard encoding and logs "Advanced encoding ... not implemented" (with the whole table)."""
    data = write_pdf(path, [text]).read_bytes()
    assert data.count(b"/WinAnsiEncoding") == 1
    path.write_bytes(data.replace(b"/WinAnsiEncoding", b"/CadreOddEncodin"))  # same length
    return path


def write_drawing_pdf(path: Path) -> Path:
    """A page with shapes and no text layer, as a scanner's output looks to a text extractor."""
    pdf = FPDF()
    pdf.add_page()
    pdf.rect(20, 20, 80, 40, style="F")
    pdf.line(20, 100, 180, 200)
    path.write_bytes(bytes(pdf.output()))
    return path


def write_docx(path: Path, paragraphs: list[str], table: list[list[str]] | None = None) -> Path:
    """The paragraphs ("# Text" is a heading), then the table (no header styling)."""
    document = docx.Document()
    for text in paragraphs:
        if text.startswith("# "):
            document.add_heading(text.removeprefix("# "), level=1)
        else:
            document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for row, values in zip(grid.rows, table, strict=True):
            for cell, value in zip(row.cells, values, strict=True):
                cell.text = value
        document.add_paragraph("After the table.")
    document.save(str(path))
    return path
