"""The window and the background-job adapter, with pytest-qt, on a tiny real model."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QMenu
from pytestqt.qtbot import QtBot

from app.core.embedder import Embedder
from app.core.errors import CadreError
from app.core.service import CadreService
from app.core.tasks import CancelToken, Progress
from app.ui.chat_window import ChatWindow
from app.ui.runner import JobRunner
from tests.ui_helpers import shown_window


@pytest.fixture
def runner(qtbot: QtBot) -> Iterator[JobRunner]:
    jobs = JobRunner("test", max_threads=1)
    yield jobs
    jobs.cancel_all()
    jobs.wait(5000)


def steps(token: CancelToken) -> Generator[Progress, None, str]:
    for i in range(3):
        token.raise_if_cancelled()
        yield Progress("step", i + 1, 3)
    return "done"


def test_runner_delivers_progress_and_result(qtbot: QtBot, runner: JobRunner) -> None:
    seen: list[Progress] = []
    results: list[str] = []
    failures: list[BaseException] = []
    runner.start(steps, failed=failures.append, succeeded=results.append, progress=seen.append)
    qtbot.waitUntil(lambda: results == ["done"], timeout=5000)
    assert [p.done for p in seen] == [1, 2, 3]
    assert not failures


def test_runner_delivers_failures(qtbot: QtBot, runner: JobRunner) -> None:
    def failing(token: CancelToken) -> Generator[Progress, None, None]:
        yield Progress("about to fail")
        raise CadreError("disk full")

    failures: list[BaseException] = []
    runner.start(failing, failed=failures.append)
    qtbot.waitUntil(lambda: bool(failures), timeout=5000)
    assert isinstance(failures[0], CadreError)


def test_runner_reports_cancel_as_its_own_outcome(qtbot: QtBot, runner: JobRunner) -> None:
    def endless(token: CancelToken) -> Generator[Progress, None, None]:
        while True:
            token.raise_if_cancelled()
            yield Progress("spinning")

    outcomes: list[str] = []
    job = runner.start(
        endless,
        failed=lambda exc: outcomes.append("failed"),
        cancelled=lambda: outcomes.append("cancelled"),
    )
    job.cancel()
    qtbot.waitUntil(lambda: outcomes == ["cancelled"], timeout=5000)


@pytest.fixture
def window(
    qtbot: QtBot, tiny_specialist: str, embedder: Embedder, routing_ready: Path
) -> Iterator[ChatWindow]:
    with shown_window(qtbot, CadreService(embedder=embedder)) as win:
        yield win


def test_window_offers_ready_specialists(window: ChatWindow) -> None:
    ids = [window.specialists.itemData(i) for i in range(window.specialists.count())]
    assert "tiny" in ids and "starter" in ids
    assert "code" not in ids  # not installed
    assert window.specialists.currentData() is None  # automatic routing comes first
    assert window.specialists.currentText().startswith("Automatic")


def test_enter_sends_and_the_reply_streams_into_the_transcript(
    qtbot: QtBot, window: ChatWindow
) -> None:
    window.input.setPlainText("hello world")
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60_000) as finished:
        qtbot.keyClick(window.input, "\r")
    message = finished.args[0]
    assert message is not None and message.content
    assert window.transcript.reply_text == message.content
    assert "hello world" in window.transcript.toPlainText()
    assert message.route is not None and message.route.reason in window.transcript.toPlainText()
    qtbot.waitUntil(lambda: window.send_button.text() == "Send", timeout=5000)
    assert window.input.toPlainText() == ""


def test_stop_ends_a_long_reply(qtbot: QtBot, window: ChatWindow, cadre_home: object) -> None:
    window.input.setPlainText("hello")
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60_000):
        window.send()
        assert window.send_button.text() == "Stop"
        window.controller.stop()
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=10_000)
    assert window.send_button.text() == "Send"


def test_the_window_has_the_resource_dock_and_a_settings_action(
    qtbot: QtBot, window: ChatWindow
) -> None:
    dock = window.extras.resources
    assert dock.windowTitle() == "Resources"
    titles = [action.text() for action in window.menuBar().actions()]
    assert titles == ["&Cadre", "&View"]
    menu = window.menuBar().actions()[0].menu()
    assert isinstance(menu, QMenu)
    assert menu.actions()[0].text() == "&Settings…"


def test_the_default_specialist_from_settings_is_preselected_and_the_api_starts(
    qtbot: QtBot, tiny_specialist: str, embedder: Embedder, routing_ready: Path
) -> None:
    from app.core.settings import Settings
    from app.ui.app import _start_api

    settings = Settings(default_specialist="tiny", api_enabled=True, api_port=0)
    service = CadreService(embedder=embedder, settings=settings)
    win = ChatWindow(service)
    qtbot.addWidget(win)
    try:
        assert win.specialists.currentData() == "tiny"
        api = _start_api(service, win)
        assert api is not None
        try:
            assert "Local API on http://127.0.0.1:" in win.statusBar().currentMessage()
        finally:
            api.stop()
    finally:
        win.close()
        service.close()
