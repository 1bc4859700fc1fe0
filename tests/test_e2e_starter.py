"""End to end with the real embedded starter model (Gemma 3 270M, Q4_K_M): no download, offline."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.catalog import InstallState
from app.core.embedded import prepare_model
from app.core.paths import DataPaths
from app.core.service import CadreService, ReplyChunk
from app.core.tasks import run_job

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def starter_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The starter model prepared once per session through the real embedded-model path."""
    home = tmp_path_factory.mktemp("starter-home")
    os.environ["CADRE_HOME"] = str(home)
    try:
        paths = DataPaths(home / "data", home / "config", home / "cache", home / "logs").ensure()
        service = CadreService(paths)
        entry = service.catalog.entry("starter")
        assert entry.state is InstallState.EMBEDDED
        path = run_job(prepare_model(entry))
        assert service.catalog.entry("starter").state is InstallState.INSTALLED
        service.close()
    finally:
        del os.environ["CADRE_HOME"]
    return path


@pytest.fixture
def starter_installed(paths: DataPaths, starter_gguf: Path) -> Path:
    service = CadreService(paths)
    target = service.catalog.entry("starter").model_path
    service.close()
    target.parent.mkdir(parents=True, exist_ok=True)
    os.link(starter_gguf, target)
    return target


def test_embedded_model_is_assembled_intact(starter_gguf: Path) -> None:
    digest = hashlib.sha256(starter_gguf.read_bytes()).hexdigest()
    assert digest == "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
    assert not list(starter_gguf.parent.glob("*.partial"))


def test_cadre_ask_streams_a_real_answer_offline(starter_installed: Path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "app", "ask", "Summarise the plot of Hamlet in two sentences."],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.split()) >= 3, result.stdout
    assert "starter ·" in result.stderr and "tokens/s" in result.stderr


@pytest.fixture
def service(starter_installed: Path) -> Iterator[CadreService]:
    svc = CadreService()
    yield svc
    svc.close()


def test_follow_up_turn_reuses_the_conversation_cache(service: CadreService) -> None:
    conversation = service.conversations.create("starter")
    replies = []
    for question in ("What is the capital of Italy?", "And what is the capital of Spain?"):
        events = service.reply(conversation.id, question, "starter")
        chunks: list[str] = []
        while True:
            try:
                event = next(events)
            except StopIteration as stop:
                replies.append(stop.value)
                break
            if isinstance(event, ReplyChunk):
                chunks.append(event.text)
        assert "".join(chunks).strip()
    first, second = replies
    assert first.timings.cached_tokens == 0
    assert second.timings.cached_tokens >= first.timings.prompt_tokens
    new_tokens = second.timings.prompt_tokens - second.timings.cached_tokens
    assert new_tokens < 30  # only the new question, not the whole conversation


def test_window_self_test_answers_with_the_starter(starter_installed: Path, tmp_path: Path) -> None:
    shot = tmp_path / "window.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    result = subprocess.run(
        [sys.executable, "-m", "app", "--self-test", "--screenshot", str(shot)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "self-test passed" in result.stdout
    assert shot.stat().st_size > 1000
