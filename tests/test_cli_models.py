"""`cadre pull`, `import`, `rm` and the fit column, as a user runs them, against the fake hub."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.conftest import interruptible_cadre
from tests.fakehub import FakeHub, HubFile
from tests.test_cli import cadre

CODE_REPO, CODE_FILE = (
    "Qwen/Qwen2.5-Coder-3B-Instruct-GGUF",
    "qwen2.5-coder-3b-instruct-q4_k_m.gguf",
)


def specialists() -> dict[str, dict[str, object]]:
    result = cadre("specialists", "--json")
    assert result.returncode == 0, result.stderr
    return {entry["id"]: entry for entry in json.loads(result.stdout)}


def test_pull_a_catalog_specialist_shows_progress_and_installs_it(
    hub: FakeHub, tiny_chat_model: Path
) -> None:
    hub.add(HubFile(CODE_REPO, CODE_FILE, tiny_chat_model.read_bytes(), chunk_size=8192))
    result = cadre("pull", "code")
    assert result.returncode == 0, result.stderr
    assert "Downloaded and verified Code" in result.stdout
    assert "Memory: fits" in result.stdout
    assert f"Downloading {CODE_FILE} [" in result.stderr and "100%" in result.stderr
    assert "Verifying" in result.stderr
    entry = specialists()["code"]
    assert entry["state"] == "installed"
    assert entry["fit"]["verdict"] in ("fits", "tight", "won't fit")  # type: ignore[index]
    again = cadre("pull", "code")
    assert "Already installed and current" in again.stdout
    assert len(hub.gets(CODE_FILE)) == 1


def test_pull_any_hub_gguf_as_a_new_specialist(hub: FakeHub, tiny_chat_model: Path) -> None:
    hub.add(HubFile("someone/fine-tune-GGUF", "ft.Q4_K_M.gguf", tiny_chat_model.read_bytes()))
    args = ["--repo", "someone/fine-tune-GGUF", "--file", "ft.Q4_K_M.gguf"]
    result = cadre("pull", *args, "--as", "my-ft", "--domain", "legal", "--name", "My FT")
    assert result.returncode == 0, result.stderr
    entry = specialists()["my-ft"]
    assert (entry["name"], entry["domain"], entry["state"]) == ("My FT", "legal", "installed")
    assert entry["user_added"] is True
    answer = cadre("ask", "--specialist", "my-ft", "hello")
    assert answer.returncode == 0, answer.stderr


def test_a_corrupted_download_is_reported_plainly(hub: FakeHub, tiny_chat_model: Path) -> None:
    hub.add(HubFile(CODE_REPO, CODE_FILE, tiny_chat_model.read_bytes(), corrupt=True))
    result = cadre("pull", "code")
    assert result.returncode == 1
    assert "is corrupted" in result.stderr and "nothing was installed" in result.stderr
    assert "Traceback" not in result.stderr
    assert specialists()["code"]["state"] == "not installed"


def test_pull_explains_what_it_needs() -> None:
    for args, message in (
        ((), "Say which specialist"),
        (("nope",), "There is no specialist 'nope'"),
        (("--repo", "a/b", "--file", "x.gguf"), "needs --as ID and --domain"),
    ):
        result = cadre("pull", *args)
        assert result.returncode == 1 and message in result.stderr, result.stderr


def test_rm_asks_first_and_then_deletes(hub: FakeHub, tiny_chat_model: Path) -> None:
    hub.add(HubFile(CODE_REPO, CODE_FILE, tiny_chat_model.read_bytes()))
    assert cadre("pull", "code").returncode == 0
    refused = cadre("rm", "code")  # stdin is not a terminal: no silent yes
    assert refused.returncode == 1 and "without confirmation" in refused.stderr
    assert specialists()["code"]["state"] == "installed"
    removed = cadre("rm", "code", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert "delete" in removed.stdout and "frees" in removed.stdout
    assert specialists()["code"]["state"] == "not installed"


def test_import_registers_a_local_file_and_rejects_a_broken_one(
    tmp_path: Path, tiny_chat_model: Path
) -> None:
    result = cadre("import", str(tiny_chat_model), "--as", "mine", "--domain", "math")
    assert result.returncode == 0, result.stderr
    assert specialists()["mine"]["state"] == "installed"
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + bytes(40))
    failed = cadre("import", str(broken), "--as", "broken", "--domain", "math")
    assert failed.returncode == 1 and "broken.gguf" in failed.stderr
    assert "Traceback" not in failed.stderr
    removed = cadre("rm", "mine", "--yes")
    assert removed.returncode == 0 and "unregister" in removed.stdout
    assert tiny_chat_model.is_file()


def test_ctrl_c_pauses_a_pull_and_the_next_pull_resumes(
    hub: FakeHub, tiny_chat_model: Path
) -> None:
    data = tiny_chat_model.read_bytes()
    slow = hub.add(HubFile(CODE_REPO, CODE_FILE, data, chunk_size=4096, delay_s=0.05))
    process = subprocess.Popen(
        interruptible_cadre("pull", "code"),
        env=os.environ.copy(),
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        partial = Path(specialists()["code"]["model"]["path"] + ".partial")  # type: ignore[index]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not (
            partial.exists() and partial.stat().st_size > 8192
        ):
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=10)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 130
    assert "Run the same command again to resume" in stderr
    assert "Traceback" not in stderr
    kept = partial.stat().st_size
    slow.delay_s = 0.0
    resumed = cadre("pull", "code")
    assert resumed.returncode == 0, resumed.stderr
    assert "Resuming" in resumed.stderr
    assert hub.gets(CODE_FILE)[-1].range == f"bytes={kept}-"
