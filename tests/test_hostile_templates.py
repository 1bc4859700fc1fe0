"""Malicious chat templates: a GGUF's ``tokenizer.chat_template`` is code from whoever made the file.

Each hostile template tries to run a shell command that would create a marker file. The templates
are loaded through Cadre's real path (the engine worker, llama-cpp-python's sandboxed Jinja
formatter, Cadre's trial render and time limit) and through the local API: the marker never
appears, the user gets a clear error naming the template, and the app keeps working.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from app.core.api import ApiServer
from app.core.embedder import Embedder
from app.core.engine.client import EngineClient
from app.core.engine.protocol import ChatMessage, LoadModel, SamplingParams
from app.core.errors import ChatTemplateError
from app.core.paths import DataPaths
from app.core.service import CadreService
from tests.conftest import install_specialist
from tests.tiny_gguf import CHATML_TEMPLATE, write_tiny_llama

GREEDY = SamplingParams(temperature=0.0, max_tokens=8)


def escapes(marker: Path) -> dict[str, str]:
    """Known ways out of a Jinja template, each aimed at creating ``marker``."""
    shell = f"touch {marker}"
    return {
        "cycler globals": f"{{{{ cycler.__init__.__globals__.os.popen('{shell}').read() }}}}",
        "joiner globals": f"{{{{ joiner.__init__.__globals__.os.popen('{shell}').read() }}}}",
        "lipsum globals": f"{{{{ lipsum.__globals__['os'].popen('{shell}').read() }}}}",
        "class mro": (
            "{% for c in ''.__class__.__mro__[1].__subclasses__() %}"
            "{% if c.__name__ == 'Popen' %}{{ c('" + shell + "', shell=True) }}{% endif %}"
            "{% endfor %}"
        ),
        "template context": (
            "{{ self._TemplateReference__context.cycler.__init__.__globals__.os"
            ".popen('" + shell + "').read() }}"
        ),
        "helper globals": (
            "{{ raise_exception.__globals__['__builtins__']['__import__']('os')"
            ".system('" + shell + "') }}"
        ),
        "attr filter": (
            "{{ (cycler|attr('__init__')|attr('__globals__'))['os'].popen('" + shell + "') }}"
        ),
        "mutating a list": "{% set x = messages %}{{ x.append({'role': 'user'}) }}",
    }


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[EngineClient]:
    client = EngineClient(log_path=tmp_path / "worker.log")
    yield client
    client.close()


def load(engine: EngineClient, model: Path) -> None:
    engine.load(LoadModel(path=str(model), n_ctx=512, n_threads=2, n_gpu_layers=0))


def reply(engine: EngineClient, text: str) -> str:
    return "".join(engine.generate([ChatMessage("user", text)], GREEDY))


def test_every_escape_is_refused_and_runs_nothing(
    engine: EngineClient, tmp_path: Path, tiny_model: Path
) -> None:
    marker = tmp_path / "MARKER"
    for name, template in escapes(marker).items():
        model = write_tiny_llama(
            tmp_path / f"{name.replace(' ', '-')}.gguf", chat_template=template
        )
        with pytest.raises(ChatTemplateError) as refused:
            load(engine, model)  # most are refused here, by the trial render
            reply(engine, "hello")  # Jinja's sandboxed attr filter gives undefined: fails here
        message = str(refused.value)
        assert "outside its sandbox" in message or "cannot format" in message, name
        assert not marker.exists(), name
    with pytest.raises(ChatTemplateError, match=r"escape\.gguf: .* outside its sandbox") as named:
        load(
            engine,
            write_tiny_llama(tmp_path / "escape.gguf", chat_template=escapes(marker)["class mro"]),
        )
    assert "cadre rm" in str(named.value)  # and what to do about it
    load(engine, tiny_model)  # the same worker serves the next, harmless model
    assert reply(engine, "hello")


def test_an_escape_triggered_by_one_message_is_refused_then(
    engine: EngineClient, tmp_path: Path
) -> None:
    """The trial render at load cannot see it: the template behaves until a word appears."""
    marker = tmp_path / "MARKER"
    trap = (
        "{% if 'open sesame' in messages[-1]['content'] %}"
        + escapes(marker)["cycler globals"]
        + "{% endif %}"
        + CHATML_TEMPLATE
    )
    load(engine, write_tiny_llama(tmp_path / "trap.gguf", chat_template=trap))
    assert reply(engine, "hello")
    with pytest.raises(ChatTemplateError, match="outside its sandbox"):
        reply(engine, "open sesame")
    assert not marker.exists()
    assert reply(engine, "hello again")  # the model stays usable for other messages


@pytest.mark.skipif(sys.platform == "win32", reason="the time limit uses a POSIX timer signal")
def test_a_template_that_never_ends_is_stopped(engine: EngineClient, tmp_path: Path) -> None:
    endless = (
        "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
        + CHATML_TEMPLATE
    )
    with pytest.raises(ChatTemplateError, match="was stopped"):
        load(engine, write_tiny_llama(tmp_path / "endless.gguf", chat_template=endless))
    assert engine.pid is not None  # the worker lived through it


def test_a_template_that_is_not_jinja_is_a_clear_error(
    engine: EngineClient, tmp_path: Path
) -> None:
    with pytest.raises(ChatTemplateError, match="not valid Jinja"):
        load(engine, write_tiny_llama(tmp_path / "broken.gguf", chat_template="{% for %}"))


def test_through_the_api_a_hostile_model_is_an_error_and_the_server_keeps_serving(
    paths: DataPaths, embedder: Embedder, tiny_specialist: str, tmp_path: Path
) -> None:
    marker = tmp_path / "MARKER"
    hostile = write_tiny_llama(
        tmp_path / "hostile.gguf", chat_template=escapes(marker)["lipsum globals"]
    )
    install_specialist(paths, "hostile", hostile)
    service = CadreService(paths, embedder=embedder)
    try:
        with ApiServer(service, port=0) as server:
            server.start()
            with openai.OpenAI(
                base_url=server.base_url, api_key=server.token, max_retries=0, timeout=60
            ) as client:
                hello = [{"role": "user", "content": "hello"}]
                with pytest.raises(openai.InternalServerError, match="outside its sandbox"):
                    client.chat.completions.create(model="hostile", messages=hello)
                assert not marker.exists()
                after = client.chat.completions.create(model="tiny", messages=hello)
                assert after.choices[0].message.content
    finally:
        service.close()
