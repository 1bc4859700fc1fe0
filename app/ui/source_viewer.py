"""The source viewer: a cited document's text in a Cadre window, scrolled to the cited page or
lines with them highlighted, as chat apps show a citation.

One non-modal dialog is reused for every source link. The file is read off the GUI thread
(:func:`app.core.documents.passage.read_passage_job`); while it reads, the viewer says so. A file
that cannot be shown (moved, deleted, unreadable) is a message here, not an error dialog, and its
folder can still be opened when it exists.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QPoint, Qt, QUrl
from PySide6.QtGui import (
    QCloseEvent,
    QColor,
    QDesktopServices,
    QFont,
    QFontDatabase,
    QFontMetricsF,
    QPalette,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
)
from PySide6.QtWidgets import (
    QDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QTextEdit,
    QVBoxLayout,
    QWidget,
)

from app.core.documents.passage import (
    Citation,
    Passage,
    Section,
    SourceUnavailableError,
    read_passage_job,
)
from app.core.errors import CadreError
from app.ui.access import named
from app.ui.errors import show_bug
from app.ui.reveal import reveal
from app.ui.runner import JobRunner, RunningJob
from app.ui.theme import is_dark

CHANGED_LINES = "This file changed after the reply; the cited lines may have moved."
CHANGED_TEXT = "This file changed after the reply; the cited text may have moved or be gone."
MONOSPACED_KINDS = frozenset(("text", "code", "csv"))  # their lines are the file's lines
_WARNING = {False: ("#fff4ce", "#5c4400"), True: ("#4a3c10", "#ffe69c")}  # (background, text)
_ERROR = {False: ("#fde7e9", "#8a1c25"), True: ("#4c1f24", "#ffb3ba")}


class SourceViewer(QDialog):
    """Shows one citation at a time: :meth:`show_citation` replaces whatever it showed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModal(False)
        self.setWindowTitle("Source")
        self.resize(860, 680)
        self.title = QLabel()
        self.path_label = QLabel()
        self.message = QLabel()
        self.text = QTextEdit()
        self.extent = QLabel()
        self.open_button = QPushButton("Open in default app")
        self.folder_button = QPushButton("Show in folder")
        self._runner = JobRunner("source viewer", max_threads=1, parent=self)
        self._job: RunningJob | None = None
        self._citation: Citation | None = None
        self._passage: Passage | None = None
        self._folder: Path | None = None
        self._colours: dict[bool, tuple[str, str]] | None = None  # the message's, by dark theme
        self._cited: tuple[int, int] | None = None  # the highlighted range of the document
        self._build()

    def _build(self) -> None:
        self.title.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title.font()
        font.setPointSizeF(font.pointSizeF() * 1.25)
        font.setBold(True)
        self.title.setFont(font)
        for label in (self.path_label, self.message, self.extent):
            label.setTextFormat(Qt.TextFormat.PlainText)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.path_label.setWordWrap(True)
        self.message.setWordWrap(True)
        self.message.setMargin(6)
        self.text.setReadOnly(True)
        self.text.setUndoRedoEnabled(False)
        named(self.text, "Source text", "The cited passage is highlighted")
        self.open_button.clicked.connect(self.open_in_default_app)
        self.folder_button.clicked.connect(self.show_in_folder)
        close = QPushButton("Close")
        close.clicked.connect(self.close)
        buttons = QHBoxLayout()
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.folder_button)
        buttons.addStretch(1)
        buttons.addWidget(self.extent)
        buttons.addWidget(close)
        layout = QVBoxLayout(self)
        for label in (self.title, self.path_label, self.message):
            layout.addWidget(label)
        layout.addWidget(self.text, 1)
        layout.addStretch(0)  # takes the room while the text is hidden
        layout.addLayout(buttons)

    # -- showing a citation ---------------------------------------------------------------------

    def show_citation(self, citation: Citation) -> None:
        """Open (or reuse) the viewer on ``citation``; the file is read in the background."""
        if self._job is not None:
            self._job.cancel()
        self._citation, self._passage = citation, None
        path = Path(citation.path)
        self._folder = None
        place = citation.place()
        self.setWindowTitle(f"{path.name} — Source")
        self.title.setText(f"{path.name} · {place}" if place else path.name)
        self.path_label.setText(str(path))
        self._say("Reading…", None)
        self._clear_text()
        self.text.show()
        self.extent.clear()
        self.open_button.setEnabled(False)
        self.folder_button.setEnabled(False)
        self.show()
        self.raise_()
        self.activateWindow()
        self._job = job = self._runner.start(
            lambda token: read_passage_job(citation, token),
            succeeded=lambda passage: self._on_read(job, passage),
            failed=lambda exc: self._on_failed(job, exc),
        )

    def _on_read(self, job: RunningJob, passage: Passage) -> None:
        if job is not self._job:
            return  # an older click's result, after a newer one
        self._job = None
        self._passage = passage
        self._folder = passage.path.parent
        self.open_button.setEnabled(True)
        self.folder_button.setEnabled(True)
        self.extent.setText(f"Showing {passage.extent}")
        if passage.changed:
            lines = passage.sections[passage.focus].first_line is not None
            self._say(CHANGED_LINES if lines else CHANGED_TEXT, _WARNING)
        else:
            self._say("", None)
        self._render(passage)

    def _on_failed(self, job: RunningJob, exc: BaseException) -> None:
        if job is not self._job:
            return
        self._job = None
        if not isinstance(exc, CadreError):
            show_bug(self, exc)
            return
        self.text.hide()  # nothing to show: the message says why
        self._folder = exc.folder if isinstance(exc, SourceUnavailableError) else None
        self.folder_button.setEnabled(self._folder is not None)
        self._say(str(exc), _ERROR)

    def _say(self, text: str, colours: dict[bool, tuple[str, str]] | None) -> None:
        """A line above the text: plain while reading, coloured for a warning or an error."""
        self.message.setVisible(bool(text))
        self.message.setText(text)
        self._colours = colours
        if colours is None:
            self.message.setStyleSheet("")
            return
        background, foreground = colours[is_dark(self.palette())]
        self.message.setStyleSheet(
            f"background-color:{background}; color:{foreground}; border-radius:4px;"
        )

    # -- buttons --------------------------------------------------------------------------------

    def open_in_default_app(self) -> None:
        if self._citation is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(self._citation.path))

    def show_in_folder(self) -> None:
        """The file selected in the file manager; its folder when the file is gone."""
        if self._passage is not None:
            reveal(self._passage.path)
        elif self._folder is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._folder)))

    # -- the text -------------------------------------------------------------------------------

    def _clear_text(self) -> None:
        self._cited = None
        self.text.setExtraSelections([])
        self.text.clear()

    def highlighted_text(self) -> str:
        """The cited text the highlight marks ("" when none): what the user is pointed at."""
        if self._cited is None:
            return ""
        cursor = QTextCursor(self.text.document())
        cursor.setPosition(self._cited[0])
        cursor.setPosition(self._cited[1], QTextCursor.MoveMode.KeepAnchor)
        return cursor.selectedText().replace("\u2029", "\n")

    def _render(self, passage: Passage) -> None:
        """Fill the text view, highlight the cited range and scroll to it."""
        self._clear_text()
        # The dialog's palette: on a theme switch its children learn of it only after it does.
        writer = _Writer(self.text, self.palette(), passage.kind in MONOSPACED_KINDS)
        focus_start, focus_lines = 0, [0]
        writer.cursor.beginEditBlock()  # one layout pass for the whole text
        for index, section in enumerate(passage.sections):
            starts = writer.section(section, first=index == 0)
            if index == passage.focus:
                focus_start, focus_lines = writer.heading_position, starts
        cursor = QTextCursor(self.text.document())
        cursor.setPosition(focus_start)
        if passage.highlight is not None:
            section = passage.sections[passage.focus]
            start, end = (_position(focus_lines, section.text, o) for o in passage.highlight)
            cursor.setPosition(start)
            self._highlight(start, end, whole_lines=section.first_line is not None)
        writer.cursor.endEditBlock()
        self.text.setTextCursor(cursor)
        self._scroll_to(cursor)

    def _highlight(self, start: int, end: int, *, whole_lines: bool) -> None:
        """Mark ``start``..``end``: cited lines as whole blocks (their background, gutter to edge,
        wrapped lines included); an excerpt as its exact text (an extra selection)."""
        self._cited = (start, end)
        colour = _highlight_colour(self.palette())
        document = self.text.document()
        if whole_lines:
            block, last = document.findBlock(start), document.findBlock(end)
            while block.isValid() and block.blockNumber() <= last.blockNumber():
                marked = block.blockFormat()
                marked.setBackground(colour)
                QTextCursor(block).setBlockFormat(marked)
                block = block.next()
            return
        selection = QTextEdit.ExtraSelection()
        selection.format.setBackground(colour)
        selection.cursor = QTextCursor(document)
        selection.cursor.setPosition(start)
        selection.cursor.setPosition(end, QTextCursor.MoveMode.KeepAnchor)
        self.text.setExtraSelections([selection])

    def _scroll_to(self, cursor: QTextCursor) -> None:
        """The cited place a quarter of the way down, with what leads to it above."""
        bar = self.text.verticalScrollBar()
        top = self.text.cursorRect(cursor).top() + bar.value()
        bar.setValue(max(0, top - self.text.viewport().height() // 4))
        if bar.value() > 0:  # start at a whole line, not one cut in half
            first = self.text.cursorForPosition(QPoint(1, 1))
            bar.setValue(self.text.cursorRect(first).top() + bar.value())

    def changeEvent(self, event: QEvent) -> None:
        """A theme switch repaints the text and the message in the new colours."""
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:
            if self._colours is not None:
                self._say(self.message.text(), self._colours)
            if self._passage is not None:
                self._render(self._passage)

    def closeEvent(self, event: QCloseEvent) -> None:
        self._runner.cancel_all()
        super().closeEvent(event)


class _Writer:
    """Writes sections into a QTextEdit: page headings, and lines with their numbers in a muted
    gutter (wrapped lines hang under the text, not under the number)."""

    def __init__(self, view: QTextEdit, palette: QPalette, monospaced: bool) -> None:
        self.cursor = QTextCursor(view.document())
        font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        self.text_format = QTextCharFormat()
        if monospaced:
            self.text_format.setFont(font)
        self.number_format = QTextCharFormat()
        self.number_format.setFont(font)
        self.number_format.setForeground(palette.color(QPalette.ColorRole.PlaceholderText))
        self.heading_format = QTextCharFormat()
        self.heading_format.setFontWeight(QFont.Weight.Bold)
        self.heading_format.setFontPointSize(view.font().pointSizeF() * 1.15)
        self.heading_format.setForeground(palette.color(QPalette.ColorRole.Text))
        self.digit_width = QFontMetricsF(font).horizontalAdvance("0")
        self.heading_position = 0

    def section(self, section: Section, *, first: bool) -> list[int]:
        """Write ``section``; return the document position where each of its lines starts."""
        if not first:
            self.cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
        self.heading_position = self.cursor.position()
        if section.heading is not None:
            block = QTextBlockFormat()
            block.setTopMargin(0 if first else 18)
            block.setBottomMargin(6)
            self.cursor.setBlockFormat(block)
            self.cursor.insertText(section.heading, self.heading_format)
            self.cursor.insertBlock(QTextBlockFormat(), QTextCharFormat())
        lines = section.text.split("\n")
        last_number = (section.first_line or 0) + len(lines) - 1
        width = len(f"{last_number}") + 2
        gutter = QTextBlockFormat()
        if section.first_line is not None:
            gutter.setLeftMargin(width * self.digit_width)
            gutter.setTextIndent(-width * self.digit_width)
        starts: list[int] = []
        for index, line in enumerate(lines):
            if index:
                self.cursor.insertBlock(gutter, self.text_format)
            else:
                self.cursor.setBlockFormat(gutter)
            if section.first_line is not None:
                number = f"{section.first_line + index}".rjust(width - 2) + "  "
                self.cursor.insertText(number, self.number_format)
            starts.append(self.cursor.position())
            self.cursor.insertText(line, self.text_format)
        return starts


def _position(line_starts: list[int], text: str, offset: int) -> int:
    """The document position of character ``offset`` of a section's text."""
    line = text.count("\n", 0, offset)
    column = offset - (text.rfind("\n", 0, offset) + 1)
    return line_starts[line] + column


def _highlight_colour(palette: QPalette) -> QColor:
    """The palette's selection colour, faded into the background: readable in both themes."""
    accent = palette.color(QPalette.ColorRole.Highlight)
    base = palette.color(QPalette.ColorRole.Base)
    share = 0.45 if is_dark(palette) else 0.28
    return QColor.fromRgbF(
        accent.redF() * share + base.redF() * (1 - share),
        accent.greenF() * share + base.greenF() * (1 - share),
        accent.blueF() * share + base.blueF() * (1 - share),
    )
