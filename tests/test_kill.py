"""kill -9 in the middle of a streamed reply: every completed message survives, the database is
intact, no engine worker is left running, and the next run works."""

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

from tests.test_cli import cadre


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_kill_9_during_a_streamed_reply_loses_no_completed_message(
    tiny_specialist: str, cadre_home: Path
) -> None:
    first = cadre("ask", "--specialist", "tiny", "first question")  # a completed turn
    assert first.returncode == 0, first.stderr
    manifest = cadre_home / "data" / "specialists" / "tiny.toml"
    original = manifest.read_text()
    text = original.replace("context_size = 512", "context_size = 8192")
    manifest.write_text(text.replace("max_tokens = 24", "max_tokens = 100000"))
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
