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
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
        yield fake


@pytest.fixture
def service(cadre_home: Path) -> Iterator[CadreService]:
    service = CadreService()
    yield service
    service.close()


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
