"""``cadre chat`` in this process (its loop reads stdin): ``/wrong ID`` replaces the last reply
as the window's re-run does, on tiny real models, the real store and the real router."""

from __future__ import annotations

import argparse
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.cli.converse import run_chat
from app.core.embedder import Embedder
from app.core.paths import DataPaths
from app.core.service import CadreService
from app.core.storage import StoredMessage
from tests.conftest import SQL_QUESTION


@pytest.fixture
def service(
    paths: DataPaths, tiny_coder: str, embedder: Embedder, routing_ready: Path
) -> Iterator[CadreService]:
    """Two tiny specialists: 'tiny' (general) and 'tiny-coder' (code)."""
    svc = CadreService(paths, embedder=embedder)
    yield svc
    svc.close()


def chat(
    service: CadreService, monkeypatch: pytest.MonkeyPatch, lines: list[str], forced: str = ""
) -> list[StoredMessage]:
    """Type ``lines`` into ``cadre chat``; the messages of the one conversation it made."""
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join([*lines, "/exit", ""])))
    assert run_chat(service, argparse.Namespace(specialist=forced or None)) == 0
    (conversation,) = service.conversations.recent()
    return service.conversations.messages(conversation.id)


def test_wrong_replaces_a_routed_reply_and_teaches_the_router(
    service: CadreService, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = chat(service, monkeypatch, [SQL_QUESTION, "/wrong tiny"])
    assert messages[0].content == SQL_QUESTION
    assert [(m.role, m.specialist_id) for m in messages] == [
        ("user", "tiny-coder"),  # the router's first choice
        ("assistant", "tiny"),
    ]
    reply = messages[1]
    assert reply.route is not None and reply.route.forced
    assert reply.route.reason == "chosen by you (re-run with Tiny)"
    assert service.routing._corrections.all() == [(SQL_QUESTION, "tiny", "general")]
    err = capsys.readouterr().err
    assert "Noted: questions like that go to tiny" in err and "Teaching the router" in err
    assert service.routing.route(SQL_QUESTION).specialist_id == "tiny"


def test_wrong_after_a_chosen_specialist_replaces_the_reply_and_teaches_nothing(
    service: CadreService, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = chat(service, monkeypatch, [SQL_QUESTION, "/wrong tiny"], forced="tiny-coder")
    assert [(m.role, m.specialist_id) for m in messages] == [
        ("user", "tiny-coder"),
        ("assistant", "tiny"),
    ]
    assert service.routing._corrections.all() == []
    assert "Noted" not in capsys.readouterr().err


def test_wrong_before_any_reply_or_with_an_unknown_id_changes_nothing(
    service: CadreService, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    messages = chat(service, monkeypatch, ["/wrong tiny", "hello there", "/wrong nobody"])
    assert [m.role for m in messages] == ["user", "assistant"]
    err = capsys.readouterr().err
    assert "There is no reply to write again yet." in err and "nobody" in err
    assert service.routing._corrections.all() == []
