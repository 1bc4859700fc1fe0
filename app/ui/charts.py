"""A sparkline: one small chart of a ring buffer's values, drawn with QPainter (no QtCharts in
PySide6-Essentials). Colours come from the widget's palette, so light and dark themes both work."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

PAD = 4  # pixels between the frame and the text or the plot
PLOT_HEIGHT = 20
WIDEST_TEXT = "idle (last 000.0 tok/s)"  # the longest value text the dock shows


class Sparkline(QWidget):
    """A title and the current value on one line, the recent values as a filled line below.

    The newest value sits at the right edge; ``None`` values are gaps. Values run from 0 at the
    bottom to ``maximum`` at the top.
    """

    def __init__(self, title: str, capacity: int = 120, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = title
        self.text = ""
        self.capacity = capacity
        self.maximum = 1.0
        self._values: Sequence[float | None] = ()
        self.setAccessibleName(title)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.fontMetrics().height() + PLOT_HEIGHT + 3 * PAD)

    def set_values(self, values: Sequence[float | None], maximum: float, text: str) -> None:
        """Show ``values`` (kept by reference: the caller's ring buffer) and ``text``."""
        self._values = values
        self.maximum = maximum if maximum > 0 else 1.0
        self.text = text
        self.setAccessibleDescription(text)
        self.update()

    def sizeHint(self) -> QSize:
        metrics = self.fontMetrics()
        width = metrics.horizontalAdvance(f"{self.title}  {WIDEST_TEXT}") + 4 * PAD
        return QSize(max(200, width), self.height())

    def minimumSizeHint(self) -> QSize:
        return QSize(120, self.height())

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        try:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing)
            palette = self.palette()
            frame = QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5)
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Mid), 1))
            painter.setBrush(palette.color(QPalette.ColorRole.Base))
            painter.drawRoundedRect(frame, 3, 3)
            self._draw_text(painter, palette)
            self._draw_plot(painter, palette)
        finally:
            painter.end()

    def _draw_text(self, painter: QPainter, palette: QPalette) -> None:
        metrics = self.fontMetrics()
        line = QRectF(PAD, PAD, self.width() - 2 * PAD, metrics.height())
        text_colour = palette.color(QPalette.ColorRole.Text)
        painter.setPen(text_colour)
        value_width = metrics.horizontalAdvance(self.text)
        painter.drawText(
            line, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, self.text
        )
        room = max(0, int(line.width() - value_width - PAD))
        title = metrics.elidedText(self.title, Qt.TextElideMode.ElideRight, room)
        dim = QColor(text_colour)
        dim.setAlphaF(0.7)
        painter.setPen(dim)
        painter.drawText(line, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title)

    def plot_rect(self) -> QRectF:
        top = PAD + self.fontMetrics().height() + PAD
        return QRectF(PAD, top, self.width() - 2 * PAD, self.height() - top - PAD)

    def _draw_plot(self, painter: QPainter, palette: QPalette) -> None:
        colour = palette.color(QPalette.ColorRole.Highlight)
        fill = QColor(colour)
        fill.setAlphaF(0.25)
        line = QPen(colour, 1.0)  # a 1 px line takes Qt's fast path: ten times cheaper than 1.5
        area = self.plot_rect()
        runs = self._runs(area)
        # The fill's edge lies under the line: it needs no antialiasing, which is most of the cost.
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(fill)
        for run in runs:
            floor = [QPointF(run[-1].x(), area.bottom()), QPointF(run[0].x(), area.bottom())]
            painter.drawPolygon(QPolygonF([*run, *floor]))
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(line)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        for run in runs:
            if len(run) == 1:  # a lone value between gaps: a dot, so it is not lost
                painter.drawPoint(run[0])
            else:
                painter.drawPolyline(QPolygonF(run))

    def _runs(self, area: QRectF) -> list[list[QPointF]]:
        """The values as points, split into runs at the gaps."""
        values = list(self._values)[-self.capacity :]
        step = area.width() / max(1, self.capacity - 1)
        left = area.right() - (len(values) - 1) * step
        bottom, top = area.bottom(), self.maximum
        scale = area.height() / top
        points = [
            None if value is None else QPointF(left + i * step, bottom - min(value, top) * scale)
            for i, value in enumerate(values)
        ]
        runs: list[list[QPointF]] = [[]]
        for point in points:
            if point is not None:
                runs[-1].append(point)
            elif runs[-1]:
                runs.append([])
        return [run for run in runs if run]
