"""The core facade end to end on a tiny model: what is stored, what is streamed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.core.catalog import InstallState
from app.core.engine_io import history_for, sampling_for
from app.core.errors import ModelNotInstalledError
from app.core.service import CadreService, ModelReady, ReplyChunk
from app.core.storage import StoredMessage
from app.core.storage.conversations import MessageTimings
from app.core.tasks import CancelToken


@pytest.fixture
def service(tiny_specialist: str) -> Iterator[CadreService]:
    svc = CadreService()
    yield svc
    svc.close()


def drain(events: Iterator[object]) -> tuple[list[object], StoredMessage | None]:
    seen: list[object] = []
    while True:
        try:
            seen.append(next(events))
        except StopIteration as stop:
            return seen, stop.value


def test_reply_is_streamed_and_both_messages_are_stored(service: CadreService) -> None:
    conversation = service.conversations.create("tiny")
    events, reply = drain(service.reply(conversation.id, "hello world", "tiny"))
    assert any(isinstance(e, ModelReady) for e in events)
    streamed = "".join(e.text for e in events if isinstance(e, ReplyChunk))
    assert reply is not None and reply.content == streamed.strip()
    stored = service.conversations.messages(conversation.id)
    assert [(m.role, m.specialist_id) for m in stored] == [("user", "tiny"), ("assistant", "tiny")]
    assert stored[1].timings.completion_tokens > 0
    assert stored[1].timings.ttft_ms > 0


def test_second_turn_reuses_the_cache(service: CadreService) -> None:
    conversation = service.conversations.create("tiny")
    drain(service.reply(conversation.id, "hello world", "tiny"))
    _, second = drain(service.reply(conversation.id, "and the world", "tiny"))
    assert second is not None and second.timings.cached_tokens > 0


def test_cancelled_before_any_text_stores_only_the_question(service: CadreService) -> None:
    conversation = service.conversations.create("tiny")
    token = CancelToken()
    token.cancel()
    events = service.reply(conversation.id, "hello", "tiny", token)
    _, reply = drain(events)
    stored = service.conversations.messages(conversation.id)
    assert stored[0].content == "hello"
    if reply is None:
        assert len(stored) == 1
    else:  # one token may arrive before the cancel is seen
        assert reply.finish_reason == "cancelled"


def test_not_installed_specialist_says_how_to_get_it(service: CadreService) -> None:
    assert service.catalog.entry("code").state is InstallState.NOT_INSTALLED
    with pytest.raises(ModelNotInstalledError, match="not installed") as info:
        service.catalog.require_ready("code")
    assert "cadre pull code" in info.value.hint


def test_default_specialist_prefers_a_downloaded_general_model(service: CadreService) -> None:
    assert service.default_specialist().manifest.id == "tiny"


def test_history_merges_turns_left_by_a_cancelled_reply(service: CadreService) -> None:
    manifest = service.catalog.manifest("tiny")

    def msg(role: str, content: str) -> StoredMessage:
        return StoredMessage("i", "c", 0, role, content, "tiny", "t", "", MessageTimings())

    history = history_for(manifest, [msg("user", "one"), msg("user", "two"), msg("assistant", "")])
    assert [(m.role, m.content) for m in history] == [
        ("system", manifest.system_prompt),
        ("user", "one\n\ntwo"),
    ]


def test_sampling_defaults_come_from_the_manifest(service: CadreService) -> None:
    manifest = service.catalog.manifest("code")
    params = sampling_for(manifest)
    assert params.temperature == manifest.sampling.temperature
    assert params.max_tokens == manifest.sampling.max_tokens
    assert params.top_k == manifest.sampling.top_k
