"""Painting a reply while it streams, at a cost that does not grow with the reply.

Re-rendering a whole long reply every 40 ms costs ~100 ms a flush (Qt parses and lays out the HTML
again). Instead the reply's Markdown is cut where its complete top-level blocks end
(:func:`settled_length`): those are inserted once and stay, and only the tail, the block still being
written, is replaced on each flush.

Rendered alone, a piece can come out otherwise than in the whole reply: a reference link whose
definition is in another piece stays text, an empty code block has no line. So when the reply ends,
the whole text is rendered block by block (:func:`render_blocks`, off the GUI thread) and
the view repaints only the pieces that differ (:meth:`LiveRender.differences`), usually none.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtGui import QTextCursor as Cursor
from PySide6.QtGui import QTextDocument

from app.ui.markdown_html import (
    CODE_CLOSE,
    Blocks,
    Colours,
    closes_fence,
    code_lines,
    code_open,
    highlight_lines,
    line_starts,
    open_fence,
    render_markdown,
    settled_length,
)

_JOINT = "<p>&nbsp;</p>"
_END_OF_FRAME = "\ufdd1"  # the character that ends a frame in a QTextDocument


def insert_html(cursor: Cursor, html: str) -> None:
    """Insert ``html`` at the end of the document as blocks of its own, formats intact.

    ``insertHtml`` merges the fragment's first block into the cursor's block and drops that
    block's format (a heading's size, a paragraph's margins). So the fragment starts with a
    throwaway paragraph that merges into the end of the previous block, and its character is then
    removed: every real block keeps the format it would have had in one whole document."""
    if cursor.position() == 0:
        cursor.insertHtml(html.rstrip())  # a trailing newline would become a space
        return
    insert_joined(cursor, html)


def insert_joined(cursor: Cursor, html: str) -> None:
    """:func:`insert_html` at any end of a block, the first block's too: there the throwaway
    paragraph stays behind, empty (the anchor a long conversation is inserted after, newest
    first: see :mod:`app.ui.transcript_load`)."""
    html = html.rstrip()  # a fragment's trailing newline would become a space in its last block
    start = cursor.position()
    cursor.insertHtml(_JOINT + html)
    end = cursor.position()
    joint = Cursor(cursor.document())
    joint.setPosition(start)
    joint.setPosition(start + 1, Cursor.MoveMode.KeepAnchor)
    if joint.selectedText() == "\N{NO-BREAK SPACE}":
        joint.removeSelectedText()
        end -= 1
    cursor.setPosition(end)


def remove_selection(cursor: Cursor) -> None:
    """Remove the cursor's selection (which starts at the end of a block) and keep the format of
    that block. Qt gives the merged block the format of the last block removed into it, which
    would turn an empty block before the selection (a rule) into that block's kind."""
    block = cursor.document().findBlock(cursor.selectionStart())
    block_format, char_format = block.blockFormat(), block.charFormat()
    cursor.removeSelectedText()
    if cursor.blockFormat() != block_format or cursor.blockCharFormat() != char_format:
        cursor.setBlockFormat(block_format)
        cursor.setBlockCharFormat(char_format)


Stretch = tuple[int, int, str]  # (first part, the part after the last, the HTML they should have)


@dataclass
class _Fence:
    """A code block still being written: its header and whole lines are in the document."""

    marker: str
    language: str
    body_start: int  # where its first code line starts in the Markdown
    lines: int = 0  # code lines inserted so far
    restart: int = 0  # the line lexing starts from (a restart line: see highlight_lines)


def _code_cell_end(document: QTextDocument) -> int:
    """Where the open code block's lines go: the end of its last line (or header), before the
    strip that ends its box. The box is last in the document (the reply being written is at the
    end): its last line, the strip, the frame's end, and the empty block Qt keeps after a frame.
    Found by position: inside an edit block Qt has not yet built the document's frames."""
    end = document.characterCount() - 4
    assert document.characterAt(end + 2) == _END_OF_FRAME, "the open code block is not last"
    return end


class LiveRender:
    """The streaming reply's body in the document: ``settled`` Markdown inserted for good, then
    the tail from ``tail_start`` to the end of the document. A top-level code block that is still
    open grows line by line instead of being the (ever longer) tail; its tail, the partial last
    line, ends at the end of the block's lines (:func:`_code_cell_end`)."""

    def __init__(self, copy_href: Callable[[int], str]) -> None:
        self.copy_href = copy_href
        self.markdown = ""  # the text painted
        self.settled = 0  # characters of the Markdown inserted for good
        self.settled_code: tuple[str, ...] = ()
        self.origin = 0  # where the body starts in the document
        # The parts inserted, settled parts then the tail: the HTML each adds to the body as one
        # whole render would have it, where it starts in the body, where its Markdown starts
        # (the parts of one code block share that: where the block opens).
        self.html: list[str] = []
        self.starts: list[int] = []
        self.sources: list[int] = []
        self.code: tuple[str, ...] = ()  # every code block so far, for the Copy links
        self._fence: _Fence | None = None

    @property
    def tail_start(self) -> int:
        return self.origin + self.starts[-1]

    def insert(self, cursor: Cursor, markdown: str, colours: Colours) -> None:
        """Render the body from scratch at the cursor (the end of the document)."""
        self.settled = 0
        self.settled_code = ()
        self.origin = cursor.position()
        self.html, self.starts, self.sources = [], [], []
        self._fence = None
        self._insert_from(cursor, markdown, colours)

    def update(self, document: QTextDocument, markdown: str, colours: Colours) -> None:
        """Replace the tail with what ``markdown`` (the whole reply so far) now ends with."""
        cursor = Cursor(document)
        cursor.beginEditBlock()
        cursor.setPosition(self.tail_start)
        if self._fence is None:
            cursor.movePosition(Cursor.MoveOperation.End, Cursor.MoveMode.KeepAnchor)
        else:
            cursor.setPosition(_code_cell_end(document), Cursor.MoveMode.KeepAnchor)
        remove_selection(cursor)
        for parts in (self.html, self.starts, self.sources):
            parts.pop()  # the old tail
        self._insert_from(cursor, markdown, colours)
        cursor.endEditBlock()

    def replace(self, document: QTextDocument, stretch: Stretch, end: int) -> None:
        """Repaint one stretch of :meth:`differences`, where the body ends at ``end``. Taken from
        the last: the parts before a stretch stay where they are."""
        first, stop, html = stretch
        size = document.characterCount()
        cursor = Cursor(document)
        cursor.beginEditBlock()
        cursor.setPosition(self.origin + self.starts[first])
        stretch_end = self.origin + self.starts[stop] if stop < len(self.starts) else end
        cursor.setPosition(stretch_end, Cursor.MoveMode.KeepAnchor)
        remove_selection(cursor)
        insert_html(cursor, html)
        cursor.endEditBlock()
        grew = document.characterCount() - size
        self.html[first:stop] = [html]
        self.starts[first:stop] = [self.starts[first]]
        self.sources[first:stop] = [self.sources[first]]
        self.starts[first + 1 :] = [start + grew for start in self.starts[first + 1 :]]

    def differences(self, whole: Blocks) -> list[Stretch]:
        """Where the body differs from ``whole`` (:func:`render_blocks` of the painted text):
        ``(first, stop, html)``, parts ``first..stop-1``, one stretch of Markdown (a settled
        piece, a code block, the tail), should read ``html``, the whole render's blocks that
        start in that stretch."""
        firsts = [n for n, at in enumerate(self.sources) if n == 0 or at != self.sources[n - 1]]
        if not firsts:
            return []
        lines = line_starts(self.markdown)
        first_lines = [bisect_right(lines, self.sources[n]) - 1 for n in firsts]
        wanted: list[list[str]] = [[] for _ in firsts]
        for line, html in whole.blocks:
            wanted[max(0, bisect_right(first_lines, line) - 1)].append(html)
        stops = [*firsts[1:], len(self.html)]
        painted = [
            "".join(self.html[first:stop]) for first, stop in zip(firsts, stops, strict=True)
        ]
        if self._fence is not None:  # the reply ended in an open code block: whole, it closes
            painted[-1] += CODE_CLOSE
        return [
            (first, stop, "".join(want))
            for first, stop, want, have in zip(firsts, stops, wanted, painted, strict=True)
            if have != "".join(want)
        ]

    def _insert_from(self, cursor: Cursor, markdown: str, colours: Colours) -> None:
        self.markdown = markdown
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
                box = code_open(opened[1], href, colours)
                self._add(cursor, box, inserted=box + CODE_CLOSE)
                cursor.setPosition(_code_cell_end(cursor.document()))
            else:
                tail = self._render(rest, colours)
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
        self._add(cursor, code_lines(new))
        fence.lines = whole
        fence.restart += max((r for r in window.restarts if fence.restart + r < whole), default=0)
        if closing is None:  # the tail: the partial last line
            if lines[-1] and not closes_fence(lines[-1], fence.marker):
                return code_lines(coloured[-1:])
            self.code = (*self.settled_code, "\n".join(lines[:-1]))
            return ""
        self._add(cursor, CODE_CLOSE, inserted="")  # the box was inserted closed
        cursor.movePosition(Cursor.MoveOperation.End)  # out of the block's box
        self.settled = fence.body_start + sum(len(line) + 1 for line in lines[: closing + 1])
        self.settled_code = self.code
        self._fence = None
        return None

    def _add(self, cursor: Cursor, html: str, inserted: str | None = None) -> None:
        """Add a part whose HTML in a whole render is ``html``, by inserting ``inserted``
        (``html`` unless given: a code block's box is inserted closed, and grows inside)."""
        self.html.append(html)
        self.starts.append(cursor.position() - self.origin)
        self.sources.append(self.settled)
        inserted = html if inserted is None else inserted
        if inserted:
            insert_html(cursor, inserted)

    def _render(self, markdown: str, colours: Colours) -> str:
        offset = len(self.settled_code)
        rendered = render_markdown(markdown, colours, lambda n: self.copy_href(offset + n))
        self.code = self.settled_code + rendered.code
        return rendered.html
