"""Painting a reply while it streams, at a cost that does not grow with the reply.

Re-rendering a whole long reply every 40 ms costs ~100 ms a flush (Qt parses and lays out the HTML
again). Instead the reply's Markdown is cut where its complete top-level blocks end
(:func:`settled_length`): those are inserted once and stay, and only the tail, the block still being
written, is replaced on each flush.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QTextCursor as Cursor
from PySide6.QtGui import QTextDocument

from app.ui.markdown_html import (
    Colours,
    closes_fence,
    code_end,
    code_header,
    code_lines,
    highlight_lines,
    open_fence,
    render_markdown,
    settled_length,
)

_JOINT = "<p>&nbsp;</p>"


def insert_html(cursor: Cursor, html: str) -> None:
    """Insert ``html`` at the end of the document as blocks of its own, formats intact.

    ``insertHtml`` merges the fragment's first block into the cursor's block and drops that
    block's format (a heading's size, a paragraph's margins). So the fragment starts with a
    throwaway paragraph that merges into the end of the previous block, and its character is then
    removed: every real block keeps the format it would have had in one whole document."""
    html = html.rstrip()  # a fragment's trailing newline would become a space in its last block
    start = cursor.position()
    if start == 0:
        cursor.insertHtml(html)
        return
    cursor.insertHtml(_JOINT + html)
    end = cursor.position()
    joint = Cursor(cursor.document())
    joint.setPosition(start)
    joint.setPosition(start + 1, Cursor.MoveMode.KeepAnchor)
    if joint.selectedText() == "\N{NO-BREAK SPACE}":
        joint.removeSelectedText()
        end -= 1
    cursor.setPosition(end)


@dataclass
class _Fence:
    """A code block still being written: its header and whole lines are in the document."""

    marker: str
    language: str
    body_start: int  # where its first code line starts in the Markdown
    lines: int = 0  # code lines inserted so far
    restart: int = 0  # the line lexing starts from (a restart line: see highlight_lines)


class LiveRender:
    """The streaming reply's body in the document: ``settled`` Markdown inserted for good, then
    the tail from ``tail_start`` to the end of the document. A top-level code block that is still
    open grows line by line instead of being the (ever longer) tail."""

    def __init__(self, copy_href: Callable[[int], str]) -> None:
        self.copy_href = copy_href
        self.settled = 0  # characters of the Markdown inserted for good
        self.settled_code: tuple[str, ...] = ()
        self.tail_start = 0
        self.html: list[str] = []  # what was inserted, settled parts then the tail
        self.code: tuple[str, ...] = ()  # every code block so far, for the Copy links
        self._fence: _Fence | None = None

    def insert(self, cursor: Cursor, markdown: str, colours: Colours) -> None:
        """Render the body from scratch at the cursor (the end of the document)."""
        self.settled = 0
        self.settled_code = ()
        self.html = []
        self._fence = None
        self._insert_from(cursor, markdown, colours)

    def update(self, document: QTextDocument, markdown: str, colours: Colours) -> None:
        """Replace the tail with what ``markdown`` (the whole reply so far) now ends with."""
        cursor = Cursor(document)
        cursor.beginEditBlock()
        cursor.setPosition(self.tail_start)
        cursor.movePosition(Cursor.MoveOperation.End, Cursor.MoveMode.KeepAnchor)
        cursor.removeSelectedText()
        if self.html:
            self.html.pop()  # the old tail
        self._insert_from(cursor, markdown, colours)
        cursor.endEditBlock()

    def _insert_from(self, cursor: Cursor, markdown: str, colours: Colours) -> None:
        tail: str | None = None  # the tail's HTML
        while tail is None:
            if self._fence is not None:
                tail = self._grow_fence(cursor, markdown, self._fence, colours)
                continue
            rest = markdown[self.settled :]
            cut = settled_length(rest)
            opened = None if cut else open_fence(rest)
            if cut:
                self._add(cursor, self._render(rest[:cut], colours))
                self.settled += cut
                self.settled_code = self.code
            elif opened is not None:
                self._fence = _Fence(*opened, self.settled + rest.index("\n") + 1)
                href = self.copy_href(len(self.settled_code))
                self._add(cursor, code_header(opened[1], href, colours))
            else:
                tail = self._render(rest, colours)
        self.tail_start = cursor.position()
        self._add(cursor, tail)

    def _grow_fence(
        self, cursor: Cursor, markdown: str, fence: _Fence, colours: Colours
    ) -> str | None:
        """Insert the fence's new whole lines. Returns the tail's HTML (the partial last line),
        or None once the fence has closed and all of it is settled."""
        lines = markdown[fence.body_start :].split("\n")
        closing = next(
            (n for n in range(fence.lines, len(lines) - 1) if closes_fence(lines[n], fence.marker)),
            None,
        )
        shown = lines if closing is None else lines[:closing]  # with the partial line, if open
        self.code = (*self.settled_code, "\n".join(shown))
        window = highlight_lines("\n".join(shown[fence.restart :]), fence.language, colours)
        coloured = window.lines
        whole = len(shown) - 1 if closing is None else len(shown)
        new = coloured[fence.lines - fence.restart : whole - fence.restart]
        self._add(cursor, code_lines(new, colours))
        fence.lines = whole
        fence.restart += max((r for r in window.restarts if fence.restart + r < whole), default=0)
        if closing is None:  # the tail: the partial last line, and the strip that ends a block
            if lines[-1] and not closes_fence(lines[-1], fence.marker):
                return code_lines(coloured[-1:], colours) + code_end(colours)
            self.code = (*self.settled_code, "\n".join(lines[:-1]))
            return code_end(colours)
        self._add(cursor, code_end(colours))
        self.settled = fence.body_start + sum(len(line) + 1 for line in lines[: closing + 1])
        self.settled_code = self.code
        self._fence = None
        return None

    def _add(self, cursor: Cursor, html: str) -> None:
        self.html.append(html)
        if html:
            insert_html(cursor, html)

    def _render(self, markdown: str, colours: Colours) -> str:
        offset = len(self.settled_code)
        rendered = render_markdown(markdown, colours, lambda n: self.copy_href(offset + n))
        self.code = self.settled_code + rendered.code
        return rendered.html
