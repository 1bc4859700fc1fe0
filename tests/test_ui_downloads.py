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
    qtbot.waitUntil(lambda: len(dialog.cards) >= 6, timeout=15_000)
    card = dialog.cards["code"]
    assert card.state.text() == "Not installed" and "Licence: qwen-research" in card.licence.text()
    assert "2.1 GB download" in card.model.text() and "Fits: " in card.fit.text()
    assert card.download_button.isVisible() and not card.remove_button.isVisible()
    assert "free" in dialog.memory_label.text()
    card.download_button.click()
    qtbot.waitUntil(lambda: card.cancel_button.isVisible() and card.bar.isVisible())
    qtbot.waitUntil(lambda: card.state.text() == "Downloading", timeout=15_000)
    qtbot.waitUntil(lambda: window.specialists.findData("code") >= 0, timeout=15_000)
    qtbot.waitUntil(lambda: card.state.text() == "Installed", timeout=15_000)
    assert card.detail.text() == "Downloaded and verified." and not card.bar.isVisible()
    assert card.download_button.text() == "Check for update" and card.remove_button.isVisible()

    def answer_yes() -> None:
        assert dialog.confirmation is not None
        assert "Remove Code" in dialog.confirmation.text()
        dialog.confirmation.button(QMessageBox.StandardButton.Yes).click()

    QTimer.singleShot(200, answer_yes)
    card.remove_button.click()
    qtbot.waitUntil(lambda: window.specialists.findData("code") < 0)
    qtbot.waitUntil(lambda: card.state.text() == "Not installed")
    window.close()
    service.close()


def test_a_cancelled_download_offers_resume(
    qtbot: QtBot, hub: FakeHub, tiny_chat_model: Path, service: CadreService
) -> None:
    from app.ui.model_ops import ModelOps
    from app.ui.specialists_dialog import SpecialistsDialog

    hub_file = hub.add(HubFile(CODE_REPO, CODE_FILE, tiny_chat_model.read_bytes(), chunk_size=1024))
    hub_file.delay_s = 0.05
    ops = ModelOps(service)
    dialog = SpecialistsDialog(ops)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(lambda: "code" in dialog.cards)
    card = dialog.cards["code"]
    card.download_button.click()
    qtbot.waitUntil(lambda: "%" in card.detail.text() and " of " in card.detail.text())
    card.cancel_button.click()
    qtbot.waitUntil(lambda: card.download_button.text() == "Resume", timeout=5000)
    assert card.state.text() == "Partly downloaded" and card.remove_button.isVisible()
    assert "resumes" in card.detail.text()
    ops.shutdown()


def test_adding_a_specialist_from_the_hub_and_from_a_file(
    qtbot: QtBot, hub: FakeHub, tiny_chat_model: Path, tiny_model: Path, service: CadreService
) -> None:
    from app.ui.add_specialist_dialog import FILE
    from app.ui.model_ops import ModelOps
    from app.ui.specialists_dialog import SpecialistsDialog

    hub.add(HubFile("someone/Tiny-GGUF", "tiny-q4.gguf", tiny_chat_model.read_bytes()))
    ops = ModelOps(service)
    dialog = SpecialistsDialog(ops)
    qtbot.addWidget(dialog)
    dialog.show()
    form = dialog.open_add_dialog()
    form.repo.setText("someone/../etc")
    form.file.setText("tiny-q4.gguf")
    assert form.specialist_id.text() == "tiny-q4"  # suggested from the file name
    form.buttons.button(form.buttons.StandardButton.Ok).click()
    assert form.isVisible() and "someone/../etc" in form.error.text()  # refused before any fetch
    form.repo.setText("someone/Tiny-GGUF")
    form.domain.setCurrentText("math")
    form.buttons.button(form.buttons.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: not form.isVisible())
    qtbot.waitUntil(lambda: "tiny-q4" in service.catalog.ids(), timeout=15_000)
    card = dialog.cards["tiny-q4"]
    qtbot.waitUntil(lambda: card.state.text() == "Installed")
    assert "added by you" in card.licence.text() and card.remove_button.isVisible()
    assert service.catalog.manifest("tiny-q4").domain == "math"

    form = dialog.open_add_dialog()
    form.tabs.setCurrentIndex(FILE)
    form.path.setText(str(tiny_model))
    form.specialist_id.setText("mine")
    form.buttons.button(form.buttons.StandardButton.Ok).click()
    qtbot.waitUntil(lambda: "mine" in service.catalog.ids(), timeout=10_000)
    qtbot.waitUntil(lambda: dialog.cards["mine"].state.text() == "Installed")
    assert str(tiny_model) in dialog.cards["mine"].model.text()
    ops.shutdown()
