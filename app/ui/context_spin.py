"""The context-size field of the Settings and Customise dialogs: it steps by doubling."""

from __future__ import annotations

from PySide6.QtWidgets import QSpinBox


class ContextSpin(QSpinBox):
    """A context size in tokens that steps by doubling (256, 512 …); any size can still be typed.

    With ``none_text``, 0 stands for no size of its own and shows as that text, one step below
    the lowest size.
    """

    def __init__(self, bounds: tuple[int, int], none_text: str = "") -> None:
        super().__init__()
        self._lowest = bounds[0]
        self.setRange(0 if none_text else bounds[0], bounds[1])
        self.setSpecialValueText(none_text)
        self.setSuffix(" tokens")

    def stepBy(self, steps: int) -> None:
        value, lowest = self.value(), self._lowest
        for _ in range(abs(steps)):
            if steps > 0:
                value = lowest if value < lowest else value * 2
            else:
                value = self.minimum() if value <= lowest else max(lowest, value // 2)
        self.setValue(min(value, self.maximum()))
