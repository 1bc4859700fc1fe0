"""The transcript's work off the GUI thread, on its one-thread pool: warming the renderer up,
rendering the earlier messages of a stored conversation (:mod:`app.ui.transcript_load`), and
rendering a finished reply whole.

That render is the check at the end of a streamed reply: the text its painter painted, rendered
whole, so that the pieces streaming painted otherwise are repainted (see
:meth:`app.ui.live_reply.LiveRender.differences`). The view drops a check when the user moves on
(the reply painted afresh, or gone) before it is done."""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field

from app.core.tasks import CancelToken
from app.ui.live_reply import LiveRender, Stretch
from app.ui.markdown_html import Blocks, Colours, render_blocks, warm_up
from app.ui.runner import JobFactory
from app.ui.transcript_items import Item, ReplyItem, item_html

log = logging.getLogger(__name__)


@dataclass(eq=False)
class ReplyCheck:
    reply: ReplyItem
    painter: LiveRender
    stretches: list[Stretch] = field(default_factory=list)  # still to repaint, the last first
    repainted: int = 0

    def job(self, colours: Colours) -> JobFactory:
        """Renders the painted text whole; pure Python, for a worker thread."""
        markdown, copy_href = self.painter.markdown, self.painter.copy_href

        def render(token: CancelToken) -> Generator[None, None, Blocks]:
            yield from ()
            return render_blocks(markdown, colours, copy_href)

        return render


def render_job(
    items: Sequence[Item], colours: Colours, regenerate: Item | None, seconds: float
) -> JobFactory:
    """Renders ``items`` newest first for about ``seconds`` (one item at least); returns the
    ``(item, html)`` rendered. Pure Python, for a worker thread. (A reply's rendering keeps its
    code blocks for their Copy links.)"""
    items = list(items)

    def render(token: CancelToken) -> Generator[None, None, list[tuple[Item, str]]]:
        yield from ()
        rendered: list[tuple[Item, str]] = []
        until = time.perf_counter() + seconds
        for item in reversed(items):
            token.raise_if_cancelled()
            rendered.append((item, item_html(item, colours, item is regenerate)))
            if time.perf_counter() > until:
                break
        return rendered

    return render


def log_load_failure(exc: BaseException) -> None:
    """Rendering a stored message failed: a bug, logged; the messages after it stay shown."""
    log.error("rendering a stored conversation failed", exc_info=exc)


def log_bug(exc: BaseException) -> None:
    """Rendering a reply whole failed where painting it in pieces did not: a bug, logged (the
    reply stays as it was painted)."""
    log.error("rendering a finished reply whole failed", exc_info=exc)


def warm_up_job(token: CancelToken) -> Generator[None, None, None]:
    warm_up()
    yield from ()


def log_warm_up_failure(exc: BaseException) -> None:
    """The renderer's warm-up failed: the first reply will meet the same error and report it."""
    log.warning("transcript warm-up failed: %r", exc)
