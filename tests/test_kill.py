"""Processes killed in the middle of their work.

- kill -9 of the app during a streamed reply: every completed message survives, the database is
  intact, no engine worker is left running, and the next run works (here);
- the engine worker killed, or aborted by a hostile GGUF inside llama.cpp: the error is reported,
  conversations and document indexes keep working, and the next request starts a fresh worker
  (here; through the API: tests/test_api.py, test_an_engine_crash_is_a_503...);
- kill -9 during indexing: tests/test_documents_cli.py, test_kill_9_during_indexing_...;
- kill -9 during a download: tests/test_downloads.py, test_a_killed_download_resumes_...
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from app.core.embedder import Embedder
from app.core.engine.client import EngineClient
from app.core.engine.protocol import ChatMessage, LoadModel, SamplingParams
from app.core.errors import EngineCrashedError
from app.core.gguf_header import GGUFFormatError, validate_gguf
from app.core.paths import DataPaths
from app.core.service import CadreService, ReplyChunk
from app.core.tasks import run_job
from tests.conftest import install_specialist
from tests.test_cli import cadre
from tests.tiny_gguf import write_tiny_llama


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_kill_9_during_a_streamed_reply_loses_no_completed_message(
    tiny_specialist: str, cadre_home: Path
) -> None:
    first = cadre("ask", "--specialist", "tiny", "first question")  # a completed turn
    assert first.returncode == 0, first.stderr
    manifest = cadre_home / "data" / "specialists" / "tiny.toml"
    original = manifest.read_text()
    text = original.replace("context_size = 512", "context_size = 8192")
    manifest.write_text(text.replace("max_tokens = 24", "max_tokens = 65536"))  # the most allowed
    process = subprocess.Popen(
        [sys.executable, "-m", "app", "chat", "--specialist", "tiny"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    assert process.stdin is not None and process.stdout is not None
    database = cadre_home / "data" / "cadre.db"
    process.stdin.write(b"second question\n")
    process.stdin.flush()
    _wait_for(lambda: _rows(database, "SELECT count(*) FROM messages") >= 3)
    time.sleep(1.0)  # the second reply is streaming now (it would run for minutes)
    workers = psutil.Process(process.pid).children(recursive=True)
    process.send_signal(signal.SIGKILL)
    process.wait()
    process.stdin.close()
    process.stdout.close()

    _, alive = psutil.wait_procs(workers, timeout=15)
    assert not [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        roles = connection.execute(
            "SELECT role, content FROM messages ORDER BY created_at, position"
        ).fetchall()
    assert [role for role, _ in roles] == ["user", "assistant", "user"]
    assert roles[2][1] == "second question"
    manifest.write_text(original)  # short replies again
    again = cadre("ask", "--specialist", "tiny", "hello again")
    assert again.returncode == 0, again.stderr


def test_a_gguf_that_aborts_llama_cpp_takes_down_only_the_worker(
    tmp_path: Path, tiny_model: Path
) -> None:
    """A NaN norm epsilon trips an assertion (abort) in llama.cpp. The validator refuses it now, so
    the engine is driven below it here: this stands for any abort the validator does not foresee."""
    hostile = write_tiny_llama(tmp_path / "aborts.gguf", rms_eps=float("nan"))
    with pytest.raises(GGUFFormatError, match="norm epsilon"):
        validate_gguf(hostile)  # what the app does before every load
    engine = EngineClient(log_path=tmp_path / "worker.log")
    hello = [ChatMessage("user", "hello")]
    try:
        engine.load(LoadModel(str(hostile), n_ctx=512, n_threads=2, n_gpu_layers=0))
        with pytest.raises(EngineCrashedError, match="stopped unexpectedly") as crashed:
            "".join(engine.generate(hello, SamplingParams(max_tokens=4)))
        assert "next message starts the engine again" in str(crashed.value)
        assert "GGML_ASSERT" in (tmp_path / "worker.log").read_text(errors="replace")
        engine.load(LoadModel(str(tiny_model), n_ctx=512, n_threads=2, n_gpu_layers=0))
        assert "".join(engine.generate(hello, SamplingParams(max_tokens=4)))  # a fresh worker
    finally:
        engine.close()


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_the_worker_killed_mid_reply_leaves_chats_and_documents_working(
    paths: DataPaths, embedder: Embedder, tiny_model: Path, bread_notes: Path
) -> None:
    # replies run to the end of the context
    install_specialist(paths, "tiny", tiny_model, context_size=1024, max_tokens=4000)
    service = CadreService(paths, embedder=embedder)
    try:
        service.documents.add("notes", [bread_notes])
        run_job(service.documents.index("notes"))
        conversation = service.conversations.create("tiny", collection="notes")
        run_job(service.reply(conversation.id, "hello", "tiny"))  # a completed turn
        question = "What does sourdough need?"
        with pytest.raises(EngineCrashedError):
            for event in service.reply(conversation.id, question, "tiny", collection="notes"):
                if isinstance(event, ReplyChunk) and service.engine.pid is not None:
                    os.kill(service.engine.pid, signal.SIGKILL)  # mid-reply
        stored = service.conversations.messages(conversation.id)
        assert [m.role for m in stored] == ["user", "assistant", "user"]
        assert stored[2].content == question
        assert service.documents.search("notes", "sourdough starter")[0].chunk.path.endswith(
            "bread.md"
        )
        again = run_job(service.reply(conversation.id, question, "tiny", collection="notes"))
        assert again is not None and again.content  # from a fresh worker
        roles = [m.role for m in service.conversations.messages(conversation.id)]
        assert roles == ["user", "assistant", "user", "user", "assistant"]
    finally:
        service.close()
    with sqlite3.connect(paths.database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def _rows(database: Path, sql: str) -> int:
    if not database.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=1) as connection:
            return int(connection.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def _wait_for(condition: object, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("timed out")
