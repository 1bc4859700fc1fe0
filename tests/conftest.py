"""Shared fixtures: every test gets its own CADRE_HOME; tiny GGUF models are written once a session."""

from __future__ import annotations

import ipaddress
import json
import shutil
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.embedder import Embedder
from app.core.paths import DataPaths, data_paths
from app.core.service import CadreService
from app.core.settings import Settings
from app.core.tasks import run_job
from tests.fakehub import FakeHub
from tests.tiny_gguf import CHATML_TEMPLATE, write_tiny_llama

SQL_QUESTION = "Fix this SQL: SELECT * FORM users"  # a code question, in the router's eyes


# Every setting away from its default: the settings file's round trips and the dialog's form.
CUSTOM_SETTINGS = Settings(
    data_folder="/srv/cadre",
    threads=3,
    gpu_offload="off",
    context_size=2048,
    ram_budget_gb=6.5,
    default_specialist="code",
    theme="dark",
    api_enabled=True,
    api_port=9001,
)


def interruptible_cadre(*args: str) -> list[str]:
    """The command line of a ``cadre`` child that Ctrl+C (SIGINT) reaches as KeyboardInterrupt,
    even when this test run was started with SIGINT ignored (``nohup``, or ``&`` in a script):
    Python keeps an inherited "ignore" rather than install its handler."""
    prelude = (
        "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "runpy.run_module('app', run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", prelude, *args]


@pytest.fixture(autouse=True)
def cadre_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "cadre-home"
    monkeypatch.setenv("CADRE_HOME", str(home))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    return home


@pytest.fixture(autouse=True)
def no_internet(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Outside an explicit download Cadre makes no network call, and tests only reach 127.0.0.1.
    Any other connection is refused and fails the test, even where a library swallows the error."""
    real_connect = socket.socket.connect
    attempts: list[Any] = []

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            attempts.append(address)
            raise ConnectionRefusedError(f"tests may not reach the network: {address}")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    yield
    assert not attempts, f"the test tried to reach the network: {attempts}"


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@pytest.fixture(autouse=True)
def no_leaked_threads() -> Iterator[None]:
    """A test must not leave threads running behind it."""
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive() and not t.daemon]
    for thread in leaked:
        thread.join(timeout=5)
    assert not [t.name for t in leaked if t.is_alive()], "threads leaked"


@pytest.fixture
def paths(cadre_home: Path) -> DataPaths:
    return data_paths().ensure()


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A template-less tiny model (the transcript prompt format)."""
    return write_tiny_llama(tmp_path_factory.mktemp("models") / "tiny.gguf")


@pytest.fixture(scope="session")
def tiny_chat_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model with a ChatML chat template in its metadata."""
    folder = tmp_path_factory.mktemp("models")
    return write_tiny_llama(folder / "tiny-chat.gguf", chat_template=CHATML_TEMPLATE, seed=1)


def manifest_toml(
    specialist_id: str, model_path: Path, domain: str = "general", **extra: object
) -> str:
    examples = [f"example request {i} for {specialist_id}" for i in range(30)]
    fields = {
        "context_size": 512,
        "max_tokens": 24,
        "temperature": 0.0,
        **extra,
    }
    return f"""
schema = 1
id = "{specialist_id}"
name = "{specialist_id.title()}"
domain = "{domain}"
description = "A tiny test specialist."
system_prompt = "You are a test."
context_size = {fields["context_size"]}
license = "mit"
examples = {json.dumps(examples)}

[sampling]
temperature = {fields["temperature"]}
max_tokens = {fields["max_tokens"]}

[model]
source = "local"
file = "{model_path.name}"
path = {json.dumps(str(model_path))}
"""


def install_specialist(
    paths: DataPaths, specialist_id: str, model_path: Path, **manifest: Any
) -> str:
    """Write a user manifest (:func:`manifest_toml` with these options) where Cadre finds it."""
    folder = paths.user_manifests
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{specialist_id}.toml").write_text(
        manifest_toml(specialist_id, model_path, **manifest)
    )
    return specialist_id


@pytest.fixture
def tiny_specialist(paths: DataPaths, tiny_model: Path) -> str:
    """Installs a user manifest 'tiny' (domain general) backed by the tiny model."""
    return install_specialist(paths, "tiny", tiny_model)


@pytest.fixture
def tiny_coder(paths: DataPaths, tiny_specialist: str, tiny_chat_model: Path) -> str:
    """'tiny-coder' (code) beside 'tiny' (general), each with its own tiny model: the router
    sends ``SQL_QUESTION`` to 'tiny-coder'."""
    return install_specialist(paths, "tiny-coder", tiny_chat_model, domain="code")


@pytest.fixture
def bread_notes(tmp_path: Path) -> Path:
    """A folder of notes with one Markdown file, on sourdough: what a grounded question finds."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "bread.md").write_text("Sourdough needs an active starter, flour, water and salt.")
    return notes


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHub]:
    """A fake Hugging Face hub on 127.0.0.1, and HF_ENDPOINT pointing at it."""
    with FakeHub() as fake:
        monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
        yield fake


@pytest.fixture
def service(cadre_home: Path) -> Iterator[CadreService]:
    """The core facade on this test's CADRE_HOME (a test module may define its own)."""
    service = CadreService()
    yield service
    service.close()


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    shared = Embedder()
    shared.load()
    return shared


@pytest.fixture(scope="session")
def warm_cache(embedder: Embedder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manifests' example vectors, encoded once for the whole session."""
    home = tmp_path_factory.mktemp("routing-home")
    service = CadreService(DataPaths(home, home, home / "cache", home), embedder=embedder)
    run_job(service.routing.warm_up())
    service.close()
    return home / "cache" / "routing"


@pytest.fixture
def routing_ready(paths: DataPaths, warm_cache: Path) -> Path:
    """This test's data folder holds the session's example vectors: no re-encoding."""
    shutil.copytree(warm_cache, paths.cache / "routing", dirs_exist_ok=True)
    return paths.cache / "routing"


@pytest.fixture
def window_service(
    tiny_specialist: str, embedder: Embedder, routing_ready: Path
) -> Iterator[CadreService]:
    """A service for window tests: the tiny specialist installed, routing ready to answer."""
    service = CadreService(embedder=embedder)
    yield service
    service.close()
