"""The ``cadre`` command as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import interruptible_cadre


def cadre(*args: str, stdin: str = "", timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        check=False,
    )


def test_help_lists_commands_without_heavy_imports() -> None:
    probe = (
        "import sys; from app.cli.main import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('llama_cpp', 'PySide6', 'torch', 'numpy', 'huggingface_hub') "
        "if m in sys.modules]\nprint('HEAVY', heavy)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    commands = ("ask", "chat", "specialists", "doctor", "pull", "import", "rm", "route", "index")
    for command in (*commands, "search"):
        assert command in result.stdout
    assert "HEAVY []" in result.stdout


def test_specialists_json_lists_the_catalog_with_state() -> None:
    result = cadre("specialists", "--json")
    assert result.returncode == 0, result.stderr
    entries = {entry["id"]: entry for entry in json.loads(result.stdout)}
    assert {"starter", "general", "code", "math", "medical", "legal"} <= set(entries)
    assert entries["starter"]["state"] in ("embedded", "installed")
    assert entries["code"]["state"] == "not installed"
    assert entries["code"]["model"]["repo"]


def test_specialists_table_is_readable() -> None:
    result = cadre("specialists")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0].split()[:3] == ["ID", "DOMAIN", "STATE"]


def test_doctor_reports_cpu_memory_versions_and_paths(cadre_home: Path) -> None:
    result = cadre("doctor", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["cpu"]["physical_cores"] >= 1
    assert report["ram_total_bytes"] > 0
    assert report["versions"]["llama-cpp-python"] != "not installed"
    assert report["paths"]["data"].startswith(str(cadre_home.resolve()))
    text = cadre("doctor").stdout
    assert "physical cores" in text and "instruction sets" in text


def test_ask_streams_an_answer_from_a_chosen_specialist(tiny_specialist: str) -> None:
    result = cadre("ask", "--specialist", "tiny", "hello", "world")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip()
    assert "tokens/s" in result.stderr


def test_ask_for_a_missing_specialist_is_a_clear_error() -> None:
    result = cadre("ask", "--specialist", "code", "print hello")
    assert result.returncode == 1
    assert "not installed" in result.stderr and "cadre pull code" in result.stderr
    assert "Traceback" not in result.stderr


def test_chat_keeps_the_conversation(tiny_specialist: str, cadre_home: Path) -> None:
    result = cadre("chat", "--specialist", "tiny", stdin="hello\nthe world\n/exit\n")
    assert result.returncode == 0, result.stderr
    assert "prompt tokens reused" in result.stderr  # the second turn reused the cache
    import sqlite3

    db = sqlite3.connect(cadre_home / "data" / "cadre.db")
    roles = [row[0] for row in db.execute("select role from messages order by created_at")]
    assert roles == ["user", "assistant", "user", "assistant"]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_the_reply_cleanly(tiny_specialist: str, cadre_home: Path) -> None:
    import signal
    import time

    (cadre_home / "data" / "specialists" / "tiny.toml").write_text(
        (cadre_home / "data" / "specialists" / "tiny.toml")
        .read_text()
        .replace("max_tokens = 24", "max_tokens = 65536")  # the most a manifest may ask
        .replace("context_size = 512", "context_size = 8192")
    )
    process = subprocess.Popen(
        interruptible_cadre("ask", "--specialist", "tiny", "hello"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    process.stdout.read(1)  # wait for the first streamed text
    time.sleep(0.3)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "[stopped]" in err
    assert "Traceback" not in err


def test_a_bug_is_shown_and_saved_to_the_crash_log(
    cadre_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from app.cli.main import _report_bug

    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        code = _report_bug(exc)
    assert code == 70
    log = (cadre_home / "logs" / "crash.log").read_text()
    assert "RuntimeError: boom" in log and "Traceback" in log
    assert "This is a bug" in capsys.readouterr().err


def test_an_invalid_user_manifest_is_a_clear_error(cadre_home: Path) -> None:
    folder = cadre_home / "data" / "specialists"
    folder.mkdir(parents=True)
    (folder / "mine.toml").write_text('schema = 1\nid = "mine"\nflavour = "odd"\n')
    result = cadre("specialists")
    assert result.returncode == 1
    assert "mine.toml" in result.stderr and "unknown key" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland check")
def test_window_without_a_display_explains_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    result = cadre()
    assert result.returncode == 1
    assert "No display" in result.stderr and "cadre chat" in result.stderr
