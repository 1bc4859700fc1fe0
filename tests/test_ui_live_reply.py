"""The end of a streamed reply: it reads exactly as the same message does when its conversation is
opened again, pieces that streaming painted otherwise are repainted (off the GUI thread first),
and nothing is repainted when the reply streamed right or when the user has moved on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from PySide6.QtGui import QTextCursor
from pytestqt.qtbot import QtBot

from app.core.service import CadreService
from app.core.storage import StoredMessage
from app.core.storage.conversations import RouteRecord
from app.ui.transcript import TranscriptView, footer_for
from tests.ui_helpers import shown_transcript

ROUTED = RouteRecord("tiny", "general", 0.9, "", "")  # no reason: no routing note to add
REFERENCE_AT_END = (
    "See [the guide][guide] first.\n\nThen the [FAQ].\n\n"
    "- a point\n- another\n\n[guide]: https://example.com/guide\n[faq]: https://example.com/faq"
)
REFERENCE_EARLIER = (
    "[docs]: https://example.com/docs\n\nIntro.\n\n## Reading\n\nStart with [the docs][docs]."
)
SETEXT = "Intro line.\n\nA heading\n---------\n\nBody text.\n\nAnother\n===\n\nEnd."
HALF_WRITTEN_HEADING = "Intro.\n\n#Not a heading yet\n\n### Notes\n\nText.\n\n#\tTabbed\n\nEnd."
RULE_THEN_HEADING = "Intro.\n\n---\n\n## Next\n\nText.\n\n***\n\n> quoted\nlazy line\n\nEnd."
NORMAL = (
    "Some **bold** text.\n\n## A heading\n\n- one\n- two\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\nEnd."
)
SPEAKER = "Tiny"


@pytest.fixture
def view(qtbot: QtBot) -> Iterator[TranscriptView]:
    yield shown_transcript(qtbot)


def stored_turn(service: CadreService, reply: str) -> tuple[StoredMessage, StoredMessage]:
    store = service.conversations
    conversation = store.create("tiny")
    question = store.add_message(conversation.id, "user", "Explain", "tiny")
    answer = store.add_message(conversation.id, "assistant", reply, "tiny", route=ROUTED)
    return question, answer


def stream(view: TranscriptView, text: str, piece: int = 3) -> None:
    """The reply arrives a few characters at a time, painted at each flush."""
    for start in range(0, len(text), piece):
        view.add_reply_text(text[start : start + piece])
        view.flush()


def live_turn(
    qtbot: QtBot, view: TranscriptView, question: StoredMessage, answer: StoredMessage
) -> int:
    """One turn as the window runs it; returns how many stretches the end of it repainted."""
    view.add_user(question.content)
    view.begin_reply(SPEAKER)
    stream(view, answer.content)
    with qtbot.waitSignal(view.reply_checked, timeout=5000) as checked:
        view.end_reply(footer_for(answer))
        view.finish_turn(question, answer, lambda specialist: SPEAKER)
    return int(checked.args[0])


def reopened(qtbot: QtBot, messages: list[StoredMessage]) -> TranscriptView:
    fresh = shown_transcript(qtbot)
    fresh.show_conversation(messages, lambda specialist: SPEAKER)
    return fresh


@pytest.mark.parametrize(
    ("reply", "repainted"),
    [
        (REFERENCE_AT_END, True),
        (REFERENCE_EARLIER, True),
        (SETEXT, False),
        (HALF_WRITTEN_HEADING, False),
        (RULE_THEN_HEADING, False),
    ],
    ids=["reference-at-end", "reference-earlier", "setext", "half-heading", "rule-then-heading"],
)
def test_a_streamed_reply_ends_as_it_reads_when_reopened(
    qtbot: QtBot, view: TranscriptView, service: CadreService, reply: str, repainted: bool
) -> None:
    question, answer = stored_turn(service, reply)
    assert (live_turn(qtbot, view, question, answer) > 0) == repainted
    fresh = reopened(qtbot, [question, answer])
    assert same_but_the_key(view, fresh, answer)
    if "[" in reply:
        links = [fragment_href(view, text) for text in ("the guide", "FAQ", "the docs")]
        assert {link for link in links if link} <= {
            "https://example.com/guide",
            "https://example.com/faq",
            "https://example.com/docs",
        }
        assert any(links)


def same_but_the_key(live: TranscriptView, fresh: TranscriptView, *replies: StoredMessage) -> bool:
    """The two documents are the same, but for the key of each reply in its Copy links: a live
    reply keeps its placeholder (``live-1``); reopened, a reply is keyed by its message id."""
    html = live.toHtml()
    for number, reply in enumerate(replies, start=1):
        html = html.replace(f"/live-{number}", f"/{reply.id}")
    return html == fresh.toHtml()


def fragment_href(view: TranscriptView, text: str) -> str:
    """The link target of ``text`` in the transcript, or "" (not there, or not a link)."""
    found = view.document().find(text)
    if found.isNull():
        return ""
    cursor = QTextCursor(view.document())
    cursor.setPosition(found.selectionStart() + 1)
    return cursor.charFormat().anchorHref()


def test_a_reply_that_streamed_right_is_not_repainted_at_its_end(
    qtbot: QtBot, view: TranscriptView, service: CadreService
) -> None:
    question, answer = stored_turn(service, NORMAL)
    view.add_user(question.content)
    view.begin_reply(SPEAKER)
    stream(view, answer.content)
    view.end_reply(footer_for(answer))
    changes: list[tuple[int, int, int]] = []
    view.document().contentsChange.connect(lambda *change: changes.append(change))
    with qtbot.waitSignal(view.reply_checked, timeout=5000) as checked:
        pass
    assert checked.args == [0] and changes == []


def test_a_reply_repaired_while_the_next_turn_streams_leaves_both_whole(
    qtbot: QtBot, view: TranscriptView, service: CadreService
) -> None:
    """The whole render of the first reply comes back while the second is being written: the
    first is repaired in place and the second goes on streaming after it."""
    store = service.conversations
    conversation = store.create("tiny")
    first_question = store.add_message(conversation.id, "user", "One", "tiny")
    first = store.add_message(conversation.id, "assistant", REFERENCE_AT_END, "tiny", route=ROUTED)
    second_question = store.add_message(conversation.id, "user", "Two", "tiny")
    second = store.add_message(
        conversation.id, "assistant", REFERENCE_EARLIER, "tiny", route=ROUTED
    )
    view.add_user(first_question.content)
    view.begin_reply(SPEAKER)
    stream(view, first.content)
    with qtbot.waitSignal(view.reply_checked, timeout=5000) as checked:
        view.end_reply(footer_for(first))
        view.finish_turn(first_question, first, lambda specialist: SPEAKER)
        view.add_user(second_question.content)  # before the first's whole render is back
        view.begin_reply(SPEAKER)
        stream(view, second.content[:40])
    assert checked.args == [2]  # the two paragraphs with links
    stream(view, second.content[40:])
    with qtbot.waitSignal(view.reply_checked, timeout=5000):
        view.end_reply(footer_for(second))
        view.finish_turn(second_question, second, lambda specialist: SPEAKER)
    fresh = reopened(qtbot, [first_question, first, second_question, second])
    assert same_but_the_key(view, fresh, first, second)


def test_a_whole_render_that_comes_back_after_the_user_moved_on_changes_nothing(
    qtbot: QtBot, view: TranscriptView, service: CadreService
) -> None:
    question, answer = stored_turn(service, REFERENCE_AT_END)
    other = stored_turn(service, NORMAL)
    view.add_user(question.content)
    view.begin_reply(SPEAKER)
    stream(view, answer.content)
    with qtbot.assertNotEmitted(view.reply_checked, wait=500):
        view.end_reply(footer_for(answer))
        view.show_conversation(list(other), lambda specialist: SPEAKER)  # before it is back
    assert view.toHtml() == reopened(qtbot, list(other)).toHtml()
