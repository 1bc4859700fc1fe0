"""The routing chip's menu: who answered and why, the runner-up, and "Re-run with ▸" the other
installed specialists (or the router, when the user had chosen). Built apart from ``exec`` so that
tests can read it and trigger its actions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

from PySide6.QtWidgets import QMenu, QWidget

from app.core.fit import Verdict
from app.core.storage import StoredMessage
from app.core.storage.conversations import RouteRecord
from app.core.turns import RerunOption

RERUN = "Re-run with"
AUTOMATIC = "Automatic routing"
ONLY_LAST = "Only the last reply can be re-run"
NO_OTHERS = "No other specialist is installed (see Specialists…)"


def route_menu(
    reply: StoredMessage,
    speaker: str,
    options: Sequence[RerunOption],
    rerun: Callable[[str | None], None],
    parent: QWidget | None = None,
    *,
    rerun_allowed: bool = True,
) -> QMenu:
    """``rerun(specialist_id)`` is called with the specialist picked, or ``None`` for the
    router's choice (offered only when the user had chosen: a routed reply would go back).
    Without ``rerun_allowed`` (an earlier reply) the menu only explains the choice."""
    menu = QMenu(parent)
    route = reply.route
    for line in info_lines(speaker, route):
        menu.addAction(line).setEnabled(False)
    menu.addSeparator()
    again = menu.addMenu(RERUN)
    if not rerun_allowed:
        again.setEnabled(False)
        menu.addAction(ONLY_LAST).setEnabled(False)
    automatic = again.addAction(AUTOMATIC)
    automatic.setEnabled(route is None or route.forced)
    automatic.setToolTip("Let the router choose" if automatic.isEnabled() else "It did already")
    automatic.triggered.connect(partial(rerun, None))
    again.addSeparator()
    if not options:
        again.addAction(NO_OTHERS).setEnabled(False)
    for option in options:
        again.addAction(option_label(option)).triggered.connect(
            partial(rerun, option.specialist_id)
        )
    return menu


def info_lines(speaker: str, route: RouteRecord | None) -> list[str]:
    """ "Answered by Code · 82%", "Runner-up: General · 11%" and the router's reason."""
    if route is None:
        return [f"Answered by {speaker}"]
    if route.forced:
        return [f"Answered by {speaker} · chosen by you"]
    lines = [f"Answered by {speaker} · {route.confidence:.0%}"]
    if route.runner_up:
        score = route.scores.get(route.runner_up, 0.0)
        lines.append(f"Runner-up: {route.runner_up.capitalize()} · {score:.0%}")
    if route.reason:
        lines.append(route.reason)
    return lines


def option_label(option: RerunOption) -> str:
    """ "Tiny · 45%", with the memory verdict when it is not a plain fit (or not known yet)."""
    label = option.name
    if option.score is not None:
        label += f" · {option.score:.0%}"
    if option.fit is None:
        label += " (checking memory…)"
    elif option.fit is not Verdict.FITS:
        label += f" ({option.fit.value} now)"
    return label
