"""Keyboard and screen-reader access: labels that name the field beside them, and the check every
window passes (no visible control that a screen reader could not name).

A control's name is what a screen reader announces. Qt takes it from the accessible name, the
control's own text (a button's), or the label whose buddy it is (a form's row label). The check
asks Qt's accessibility interface, so it hears what assistive technology hears.
"""

from __future__ import annotations

import itertools

from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractSpinBox,
    QComboBox,
    QDialogButtonBox,
    QGroupBox,
    QLabel,
    QLineEdit,
    QWidget,
)

_TAB = Qt.FocusPolicy.TabFocus
_LABELLED = QAccessible.RelationFlag.Label
_OWNERS = (QAbstractSpinBox, QComboBox)  # their inner line edit takes the focus for them


def buddy(text: str, field: QWidget) -> QLabel:
    """A label for ``field``: it names the field for a screen reader, and its ``&`` mnemonic
    (``"&Theme:"`` is Alt+T) moves the focus there."""
    label = QLabel(text)
    label.setBuddy(field)
    return label


def mnemonic(text: str, letter: str) -> str:
    """``text`` with an ``&`` before the first ``letter`` (any case): the Alt+letter key."""
    at = text.lower().find(letter.lower())
    return text if at < 0 else f"{text[:at]}&{text[at:]}"


def named(widget: QWidget, name: str, description: str = "") -> None:
    """The spoken name of a control whose visible text is missing or ambiguous."""
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)


def tab_as_shown(box: QDialogButtonBox) -> None:
    """Tab visits a button box's buttons in the order the platform lays them out (Restore
    Defaults at the left on Linux), not the order they were made in."""
    layout = box.layout()
    items = [layout.itemAt(i) for i in range(layout.count())] if layout is not None else []
    widgets = (item.widget() for item in items if item is not None)
    shown = [widget for widget in widgets if widget is not None]
    for before, after in itertools.pairwise(shown):
        QWidget.setTabOrder(before, after)


def control(widget: QWidget) -> QWidget:
    """The control a focused widget is part of: a spin box for its inner line edit."""
    parent = widget.parentWidget()
    if isinstance(parent, _OWNERS) and parent.focusProxy() is widget:
        return parent
    return widget


def accessible_name(widget: QWidget) -> str:
    """The name a screen reader announces for ``widget`` ("" when it has none). A group box's
    title, which Qt falls back on for any unlabelled field inside it, does not count."""
    interface = QAccessible.queryAccessibleInterface(widget)
    if interface is None:
        return ""
    parent = widget.parentWidget()
    group = parent.title() if isinstance(parent, QGroupBox) else None
    candidates = [widget.accessibleName()]
    if not isinstance(widget, QComboBox):  # a combo's "name" on Linux is its current value
        candidates.append(interface.text(QAccessible.Text.Name))
    candidates += [label.text(QAccessible.Text.Name) for label, _ in interface.relations(_LABELLED)]
    names = (text.replace("&", "").strip() for text in candidates)
    return next((name for name in names if name and name != group), "")


def takes_tab(widget: QWidget) -> bool:
    """Tab can land on ``widget`` now: it is shown, enabled and accepts Tab focus."""
    policy = widget.focusPolicy()
    return widget.isVisible() and widget.isEnabled() and (policy & _TAB) == _TAB


def unnamed_controls(window: QWidget) -> list[QWidget]:
    """The visible interactive widgets of ``window`` that a screen reader could not name."""
    found: list[QWidget] = []
    for widget in window.findChildren(QWidget):
        if widget.window() is not window or not widget.isVisible():
            continue
        if widget.focusProxy() is not None and not isinstance(widget, _OWNERS):
            continue  # a tab widget: its tab bar takes the focus and is checked itself
        owner = control(widget)
        interactive = isinstance(owner, (QAbstractButton, *_OWNERS, QLineEdit)) or takes_tab(owner)
        if interactive and owner not in found and not accessible_name(owner):
            found.append(owner)
    return found


def describe(widget: QWidget) -> str:
    """ "QPushButton 'Send'": a control as a person reading a test failure knows it."""
    return f"{type(widget).__name__} {accessible_name(widget)!r}"
