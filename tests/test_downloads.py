"""Downloads against a fake hub on 127.0.0.1, through the same huggingface_hub calls a user's
machine makes, with the faults users meet: dropped connections, servers that ignore Range,
corrupted bytes, missing files, slow servers, cancel and a killed process."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from app.core.catalog import InstallState
from app.core.downloads import transfer
from app.core.downloads.transfer import DownloadProgress, PartialFile
from app.core.errors import Cancelled, ChecksumMismatchError, DiskSpaceError, DownloadError
from app.core.gguf_header import GGUFFormatError
from app.core.installer import PullResult
from app.core.service import CadreService
from app.core.tasks import CancelToken, Job, Progress, run_job
from app.core.user_manifests import NewSpecialist
from specialists import ModelSource
from tests.fakehub import FakeHub, HubFile

REPO, FILE = "acme/tiny-GGUF", "tiny-q8.gguf"


@pytest.fixture(autouse=True)
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transfer, "RETRY_DELAYS_S", (0.05,) * 6)


@pytest.fixture
def model_bytes(tiny_model: Path) -> bytes:
    return tiny_model.read_bytes()


def add_job(service: CadreService, cancel: CancelToken | None = None) -> Job[PullResult]:
    new = NewSpecialist("tiny-hub", "general")
    return service.installer.add_from_hub(new, REPO, FILE, "main", cancel or CancelToken())


def collect(job: Job[PullResult]) -> tuple[PullResult, list[Progress]]:
    reports: list[Progress] = []
    return run_job(job, reports.append), reports


def assert_installed(service: CadreService, data: bytes) -> Path:
    entry = service.catalog.entry("tiny-hub")
    assert entry.state is InstallState.INSTALLED
    assert hashlib.sha256(entry.model_path.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert not PartialFile(entry.model_path).data.exists()
    assert not PartialFile(entry.model_path).note.exists()
    return entry.model_path


def test_a_download_is_verified_registered_and_recorded(
    hub: FakeHub, service: CadreService, model_bytes: bytes
) -> None:
    hub.add(HubFile(REPO, FILE, model_bytes))
    result, reports = collect(add_job(service))
    path = assert_installed(service, model_bytes)
    assert result.downloaded and result.path == path and result.size_bytes == len(model_bytes)
    assert path.relative_to(service.paths.models / "hf" / "acme" / "tiny-GGUF")
    record = service.model_files.get(path)
    assert record is not None and record.sha256 == hashlib.sha256(model_bytes).hexdigest()
    assert record.commit_hash == HubFile(REPO, FILE, b"").commit
    assert any(isinstance(r, DownloadProgress) for r in reports)
    assert any(r.message.startswith("Verifying") for r in reports)
    manifest = service.catalog.manifest("tiny-hub")
    assert (manifest.domain, manifest.model.repo, manifest.model.file) == ("general", REPO, FILE)


def test_pulling_again_downloads_nothing(
    hub: FakeHub, service: CadreService, model_bytes: bytes
) -> None:
    hub.add(HubFile(REPO, FILE, model_bytes))
    collect(add_job(service))
    result, _ = collect(service.installer.pull("tiny-hub", CancelToken()))
    assert not result.downloaded
    assert len(hub.gets(FILE)) == 1


def test_a_new_version_on_the_hub_replaces_the_old_one(
    hub: FakeHub, service: CadreService, model_bytes: bytes
) -> None:
    hub.add(HubFile(REPO, FILE, model_bytes))
    collect(add_job(service))
    newer = model_bytes[:-64] + bytes(64)  # same header, different tail: a new upload
    hub.add(HubFile(REPO, FILE, newer, commit="f" * 40))
    result, _ = collect(service.installer.pull("tiny-hub", CancelToken()))
    assert result.downloaded and result.commit == "f" * 40
    assert_installed(service, newer)


def test_progress_is_reported_at_most_ten_times_a_second(
    hub: FakeHub, service: CadreService, model_bytes: bytes
) -> None:
    hub.add(HubFile(REPO, FILE, model_bytes, chunk_size=2048, delay_s=0.002))
    started = time.monotonic()
    _, reports = collect(add_job(service))
    elapsed = time.monotonic() - started
    downloads = [r for r in reports if isinstance(r, DownloadProgress)]
    assert len(downloads) <= elapsed * 10 + 3
    assert downloads[-1].done == downloads[-1].total == len(model_bytes)
    assert all(r.rate >= 0 for r in downloads)


def test_a_dropped_connection_resumes_with_a_range_request(
    hub: FakeHub, service: CadreService, model_bytes: bytes
) -> None:
    half = len(model_bytes) // 2
    hub.add(HubFile(REPO, FILE, model_bytes, drop_after=half))
    _, reports = collect(add_job(service))
    assert_installed(service, model_bytes)
    ranges = [request.range for request in hub.gets(FILE)]
    assert ranges[0] is None and ranges[1] == f"bytes={half}-"
    assert any("Connection lost" in r.message for r in reports)


def test_a_server_that_ignores_range_restarts_the_file_cleanly(
    hub: FakeHub, service: CadreService, model_bytes: bytes
) -> None:
    hub.add(HubFile(REPO, FILE, model_bytes, drop_after=len(model_bytes) // 3, ignore_range=True))
    _, reports = collect(add_job(service))
    assert_installed(service, model_bytes)
    assert len(hub.gets(FILE)) == 2
    assert any("cannot resume" in r.message for r in reports)


def test_corrupted_bytes_are_deleted_and_nothing_is_registered(
    hub: FakeHub, service: CadreService, model_bytes: bytes
) -> None:
    hub.add(HubFile(REPO, FILE, model_bytes, corrupt=True))
    with pytest.raises(ChecksumMismatchError, match="corrupted") as caught:
        collect(add_job(service))
    assert "nothing was installed" in caught.value.message
    assert "tiny-hub" not in service.catalog.ids()
    target = service.catalog.path_for(_hub_source())
    assert not target.exists() and not PartialFile(target).data.exists()


def test_the_sha256_comes_from_the_file_listing_when_the_etag_is_not_one(
    hub: FakeHub, service: CadreService, model_bytes: bytes
) -> None:
    hub.add(HubFile(REPO, FILE, model_bytes, etag_is_sha256=False, corrupt=True))
    with pytest.raises(ChecksumMismatchError):
        collect(add_job(service))
    assert any(r.method == "POST" and "paths-info" in r.path for r in hub.requests)
    hub.add(HubFile(REPO, FILE, model_bytes, etag_is_sha256=False))
    collect(add_job(service))
    assert_installed(service, model_bytes)


@pytest.mark.parametrize(
    ("where", "message"),
    [((REPO, "missing.gguf"), "has no file missing.gguf"), (("acme/nothing", FILE), "not found")],
)
def test_missing_files_and_repos_are_explained(
    hub: FakeHub, service: CadreService, where: tuple[str, str], message: str
) -> None:
    hub.add(HubFile(REPO, FILE, b"GGUF"))
    new = NewSpecialist("tiny-hub", "general")
    with pytest.raises(DownloadError, match=message):
        collect(service.installer.add_from_hub(new, *where, "main", CancelToken()))
    assert "tiny-hub" not in service.catalog.ids()


def test_a_gated_repo_says_what_to_do(hub: FakeHub, service: CadreService) -> None:
    hub.add(HubFile(REPO, FILE, b"GGUF", gated=True))
    with pytest.raises(DownloadError, match="gated") as caught:
        collect(add_job(service))
    assert "hf auth login" in caught.value.hint


def test_a_busy_server_is_retried(hub: FakeHub, service: CadreService, model_bytes: bytes) -> None:
    hub.add(HubFile(REPO, FILE, model_bytes, busy_gets=2))
    _, reports = collect(add_job(service))
    assert_installed(service, model_bytes)
    assert sum("answered 503" in r.message for r in reports) == 2


def test_a_file_that_is_not_a_gguf_is_refused_after_download(
    hub: FakeHub, service: CadreService
) -> None:
    hub.add(HubFile(REPO, FILE, b"<html>Not a model</html>" * 100))
    with pytest.raises(GGUFFormatError, match="not a usable GGUF model"):
        collect(add_job(service))
    target = service.catalog.path_for(_hub_source())
    assert not target.exists() and not PartialFile(target).data.exists()
    assert "tiny-hub" not in service.catalog.ids()


def test_an_unreachable_hub_is_explained(
    service: CadreService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(DownloadError, match="Could not reach the hub"):
        collect(add_job(service))


def test_offline_mode_refuses_before_any_request(
    hub: FakeHub, service: CadreService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DownloadError, match="HF_HUB_OFFLINE"):
        collect(add_job(service))
    assert hub.requests == []


def test_disk_space_is_checked_before_downloading(
    hub: FakeHub, service: CadreService, model_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.add(HubFile(REPO, FILE, model_bytes))
    from app.core.downloads import verify

    tiny_disk = SimpleNamespace(total=10**9, used=10**9 - 50_000, free=50_000)
    monkeypatch.setattr(verify.shutil, "disk_usage", lambda _: tiny_disk)
    with pytest.raises(DiskSpaceError, match="Not enough disk space"):
        collect(add_job(service))
    assert hub.gets(FILE) == []


def test_a_silent_server_is_treated_as_a_dropped_connection(
    hub: FakeHub, service: CadreService, model_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(transfer, "STALL_TIMEOUT_S", 0.5)
    hub.add(HubFile(REPO, FILE, model_bytes, drop_after=len(model_bytes) // 2, stall_s=5.0))
    collect(add_job(service))
    assert_installed(service, model_bytes)
    assert hub.gets(FILE)[1].range == f"bytes={len(model_bytes) // 2}-"


def test_cancelling_a_slow_download_is_prompt_and_the_next_pull_resumes(
    hub: FakeHub, service: CadreService, model_bytes: bytes
) -> None:
    slow = hub.add(HubFile(REPO, FILE, model_bytes, chunk_size=4096, delay_s=0.05))
    cancel = CancelToken()
    outcome: list[BaseException] = []
    progressed = threading.Event()

    def run() -> None:
        try:
            run_job(add_job(service, cancel), lambda r: progressed.set())
        except BaseException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    target = service.catalog.path_for(_hub_source())
    assert _wait_for(lambda: PartialFile(target).data.exists() and _size(target) > 8192)
    cancel.cancel()
    cancelled_at = time.monotonic()
    worker.join(timeout=5)
    assert time.monotonic() - cancelled_at < 1.0
    assert outcome and isinstance(outcome[0], Cancelled)
    assert_resumes(hub, service, slow, model_bytes)


def test_a_killed_download_resumes_where_it_stopped(
    hub: FakeHub, service: CadreService, model_bytes: bytes
) -> None:
    slow = hub.add(HubFile(REPO, FILE, model_bytes, chunk_size=4096, delay_s=0.05))
    command = [sys.executable, "-m", "app", "pull", "--repo", REPO, "--file", FILE]
    command += ["--as", "tiny-hub", "--domain", "general"]
    process = subprocess.Popen(command, env=os.environ.copy(), stderr=subprocess.DEVNULL)
    target = service.catalog.path_for(_hub_source())
    try:
        assert _wait_for(lambda: PartialFile(target).data.exists() and _size(target) > 16384)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)
    assert_resumes(hub, service, slow, model_bytes)


def assert_resumes(hub: FakeHub, service: CadreService, slow: HubFile, data: bytes) -> None:
    """The next pull asks only for the bytes the partial file lacks, and installs the file."""
    kept = _size(service.catalog.path_for(_hub_source()))
    assert 0 < kept < len(data)
    slow.delay_s = 0.0
    collect(add_job(service))
    assert_installed(service, data)
    assert hub.gets(FILE)[-1].range == f"bytes={kept}-"


def _hub_source() -> ModelSource:
    return ModelSource("huggingface", FILE, repo=REPO)


def _size(target: Path) -> int:
    return PartialFile(target).data.stat().st_size


def _wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False
