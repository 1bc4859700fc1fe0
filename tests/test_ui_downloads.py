"""A download runs as a background job for the window: progress on the GUI thread, and cancel."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.core.downloads.transfer import DownloadProgress, PartialFile
from app.core.installer import PullResult
from app.core.service import CadreService
from app.core.tasks import Progress
from app.ui.runner import JobRunner
from tests.fakehub import FakeHub, HubFile

CODE_REPO, CODE_FILE = (
    "Qwen/Qwen2.5-Coder-3B-Instruct-GGUF",
    "qwen2.5-coder-3b-instruct-q4_k_m.gguf",
)


@pytest.fixture
def downloads(qtbot: QtBot) -> Iterator[JobRunner]:
    runner = JobRunner("downloads", max_threads=2)
    yield runner
    runner.cancel_all()
    runner.wait(10_000)


def test_a_pull_reports_progress_can_be_cancelled_and_then_resumes(
    qtbot: QtBot, hub: FakeHub, service: CadreService, downloads: JobRunner, tiny_model: Path
) -> None:
    hub_file = hub.add(HubFile(CODE_REPO, CODE_FILE, tiny_model.read_bytes(), chunk_size=4096))
    hub_file.delay_s = 0.05
    seen: list[Progress] = []
    outcomes: list[object] = []
    job = downloads.start(
        lambda token: service.installer.pull("code", token),
        failed=outcomes.append,
        succeeded=outcomes.append,
        progress=seen.append,
        cancelled=lambda: outcomes.append("cancelled"),
    )
    qtbot.waitUntil(lambda: any(isinstance(p, DownloadProgress) and p.done > 0 for p in seen))
    job.cancel()
    qtbot.waitUntil(lambda: outcomes == ["cancelled"], timeout=3000)
    partial = PartialFile(service.catalog.entry("code").model_path)
    assert partial.data.stat().st_size > 0
    hub_file.delay_s = 0.0
    downloads.start(
        lambda token: service.installer.pull("code", token),
        failed=outcomes.append,
        succeeded=outcomes.append,
    )
    qtbot.waitUntil(lambda: len(outcomes) == 2, timeout=10_000)
    result = outcomes[1]
    assert isinstance(result, PullResult) and result.downloaded
    assert service.catalog.entry("code").state.value == "installed"


def test_the_specialists_window_downloads_shows_progress_and_removes(
    qtbot: QtBot, hub: FakeHub, tiny_chat_model: Path, tiny_specialist: str
) -> None:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QMessageBox

    from app.ui.chat_window import ChatWindow

    hub_file = hub.add(HubFile(CODE_REPO, CODE_FILE, tiny_chat_model.read_bytes(), chunk_size=4096))
    hub_file.delay_s = 0.01
    service = CadreService()
    window = ChatWindow(service)
    qtbot.addWidget(window)
    dialog = window.open_specialists()
    qtbot.waitUntil(lambda: dialog.table.rowCount() >= 6)
    code_row = next(
        row
        for row in range(dialog.table.rowCount())
        if dialog.table.item(row, 0).text().startswith("Code")
    )
    dialog.table.selectRow(code_row)
    assert dialog.download_button.isEnabled() and not dialog.remove_button.isEnabled()
    dialog.download_button.click()
    assert dialog.cancel_button.isEnabled()
    qtbot.waitUntil(lambda: "Downloading" in dialog.table.item(code_row, 4).text())
    qtbot.waitUntil(lambda: window.specialists.findData("code") >= 0, timeout=15_000)
    qtbot.waitUntil(lambda: dialog.table.item(code_row, 4).text() == "installed")
    assert "fits" in dialog.table.item(code_row, 3).text()
    dialog.table.selectRow(code_row)
    assert dialog.remove_button.isEnabled()

    def answer_yes() -> None:
        assert dialog.confirmation is not None
        assert "Remove Code" in dialog.confirmation.text()
        dialog.confirmation.button(QMessageBox.StandardButton.Yes).click()

    QTimer.singleShot(200, answer_yes)
    dialog.remove_button.click()
    qtbot.waitUntil(lambda: window.specialists.findData("code") < 0)
    qtbot.waitUntil(lambda: dialog.table.item(code_row, 4).text() == "not installed")
    window.close()
    service.close()
