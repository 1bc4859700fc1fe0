"""The local OpenAI-compatible API (``cadre serve``), end to end: the official ``openai`` client and raw
HTTP against a real server on 127.0.0.1, a real CadreService and the tiny GGUF models."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from app.core.api import ApiServer, load_or_create_token
from app.core.api.errors import ApiError, ClientGone
from app.core.api.gate import GenerationGate
from app.core.documents.grounding import Grounding
from app.core.embedder import Embedder
from app.core.engine.protocol import GenerationStats
from app.core.errors import CadreError
from app.core.paths import DataPaths
from app.core.service import CadreService
from app.core.tasks import run_job
from tests.conftest import interruptible_cadre, manifest_toml
from tests.test_cli import cadre
from tests.tiny_gguf import write_tiny_llama

HELLO = [{"role": "user", "content": "hello"}]
posix_only = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals and file modes")


@pytest.fixture(scope="module")
def long_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny model with a long context, so a reply can run for a few seconds."""
    return write_tiny_llama(tmp_path_factory.mktemp("models") / "long.gguf", context_length=8192)


@pytest.fixture
def long_specialist(paths: DataPaths, long_model: Path) -> str:
    folder = paths.user_manifests
    folder.mkdir(parents=True, exist_ok=True)
    toml = manifest_toml("long", long_model, context_size=8192, max_tokens=7000)
    examples = next(line for line in toml.splitlines() if line.startswith("examples = "))
    (folder / "long.toml").write_text(toml.replace(examples, "examples = []"))  # less to encode
    return "long"


@pytest.fixture
def service(
    tiny_specialist: str, long_specialist: str, paths: DataPaths, embedder: Embedder
) -> Iterator[CadreService]:
    svc = CadreService(paths, embedder=embedder)
    yield svc
    svc.close()


@pytest.fixture
def server(service: CadreService) -> Iterator[ApiServer]:
    api = ApiServer(service, port=0)
    api.start()
    yield api
    api.stop()


@pytest.fixture
def client(server: ApiServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=server.base_url, api_key=server.token, max_retries=0, timeout=60
    ) as official:
        yield official


def raw(
    server: ApiServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    """One request with exactly these headers (Host and Authorization default to the right ones)."""
    sent = {"Host": f"127.0.0.1:{server.port}", "Authorization": f"Bearer {server.token}"}
    sent.update(headers or {})
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in sent.items():
            connection.putheader(name, value)
        if body is not None and "Content-Length" not in sent:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        connection.close()


def record_generations(
    service: CadreService, monkeypatch: pytest.MonkeyPatch, crash: bool = False
) -> list[str]:
    """How each generation the API started ended: its finish reason, or "closed" when the API
    abandoned it. With ``crash``, the engine worker is killed after the first piece of text."""
    outcomes: list[str] = []
    real = service.engine.generate

    def recording(*args: Any, **kwargs: Any) -> Generator[str, None, GenerationStats]:
        stream = real(*args, **kwargs)
        try:
            first = next(stream)
            if crash:
                assert service.engine.pid is not None
                os.kill(service.engine.pid, signal.SIGKILL)
            yield first
            stats = yield from stream
        except GeneratorExit:
            outcomes.append("closed")
            raise
        outcomes.append(stats.finish_reason)
        return stats

    monkeypatch.setattr(service.engine, "generate", recording)
    return outcomes


# The official client


def test_models_lists_the_ready_specialists_and_auto(
    client: openai.OpenAI, service: CadreService
) -> None:
    ids = [model.id for model in client.models.list()]
    ready = {entry.manifest.id for entry in service.catalog.ready()}
    assert set(ids) == ready | {"auto"}
    assert {"tiny", "long"} <= set(ids) and "code" not in ids
    assert client.models.retrieve("tiny").owned_by == "cadre"


def test_completion_and_stream_with_the_openai_client(client: openai.OpenAI) -> None:
    whole = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=4000)
    assert whole.object == "chat.completion" and whole.model == "tiny"
    text = whole.choices[0].message.content
    assert text and whole.choices[0].finish_reason in ("stop", "length")
    assert whole.usage is not None and 0 < whole.usage.completion_tokens <= 24  # the manifest's cap
    assert whole.usage.total_tokens == whole.usage.prompt_tokens + whole.usage.completion_tokens

    stream = client.chat.completions.create(
        model="tiny",
        messages=HELLO,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    pieces = [
        c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
    ]
    assert len(pieces) >= 2  # text arrives as it is generated, not in one piece
    assert "".join(pieces) == text  # greedy: the same reply, streamed
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == whole.choices[0].finish_reason
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0


def test_the_client_system_prompt_or_the_specialist_s(client: openai.OpenAI) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "hello"}]},
    ]
    reply = client.chat.completions.create(model="tiny", messages=messages, seed=7)
    assert reply.choices[0].message.content


def test_auto_routes_each_request(client: openai.OpenAI, service: CadreService) -> None:
    routed = client.chat.completions.create(model="auto", messages=HELLO, max_tokens=24)
    assert routed.model in {entry.manifest.id for entry in service.catalog.ready()}
    forced = client.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "@long hello"}],
        max_tokens=24,
    )
    assert forced.model == "long"


def test_embeddings_are_the_embedder_s_vectors(client: openai.OpenAI, embedder: Embedder) -> None:
    texts = ["The cat sat on the mat.", "Quarterly revenue grew by ten percent."]
    default = client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)  # base64 on the wire
    floats = client.embeddings.create(model="cadre-embed", input=texts, encoding_format="float")
    for response in (default, floats):
        vectors = np.array([item.embedding for item in response.data], dtype=np.float32)
        assert vectors.shape == (2, 384)
        assert np.allclose(vectors, embedder.encode(texts), atol=1e-5)
    one = client.embeddings.create(model="cadre-embed", input="one text")
    assert len(one.data) == 1 and len(one.data[0].embedding) == 384


def test_a_collection_grounds_the_answer_or_says_it_found_nothing(
    client: openai.OpenAI, service: CadreService, tmp_path: Path
) -> None:
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "contract.txt").write_text(
        "Employment contract.\n\nThe notice period is three months, given in writing.\n"
    )
    service.documents.add("contracts", [folder])
    run_job(service.documents.index("contracts"))

    def ask(question: str) -> Any:
        return client.chat.completions.create(
            model="long",  # room in its context for the excerpts
            max_tokens=24,
            messages=[{"role": "user", "content": question}],
            extra_body={"collection": "contracts"},
        )

    grounded = ask("How long is the notice period in the employment contract?")
    sources = (grounded.model_extra or {})["sources"]
    assert sources and sources[0]["number"] == 1
    assert sources[0]["path"].endswith("contract.txt") and "place" in sources[0]

    nothing = ask("Which volcanoes erupted in Iceland last century?")
    assert (nothing.model_extra or {})["sources"] == []
    expected = Grounding("contracts", ()).not_found_reply()
    assert nothing.choices[0].message.content == expected

    with pytest.raises(openai.NotFoundError, match="collection"):
        client.chat.completions.create(
            model="tiny",
            messages=HELLO,
            extra_body={"collection": "nope"},
        )


# Concurrency, disconnects and crashes


def test_two_concurrent_streams_take_turns(
    client: openai.OpenAI, service: CadreService, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes = record_generations(service, monkeypatch)
    start = threading.Barrier(2)
    spans: list[tuple[float, float, str]] = []
    failures: list[BaseException] = []

    def stream_one() -> None:
        try:
            start.wait()
            stream = client.chat.completions.create(
                model="long",
                messages=HELLO,
                stream=True,
                max_tokens=100,
            )
            times, text = [], []
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    times.append(time.monotonic())
                    text.append(chunk.choices[0].delta.content)
            spans.append((times[0], times[-1], "".join(text)))
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=stream_one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not failures
    assert outcomes == ["length", "length"]
    first, second = sorted(spans)
    assert first[1] < second[0]  # one generation at a time: the second began after the first
    assert first[2] == second[2]


def test_a_client_that_hangs_up_stops_the_generation(
    server: ApiServer, service: CadreService, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes = record_generations(service, monkeypatch)
    body = json.dumps({"model": "long", "messages": HELLO, "stream": True}).encode()
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request(
        "POST",
        "/v1/chat/completions",
        body,
        {"Authorization": f"Bearer {server.token}", "Content-Type": "application/json"},
    )
    response = connection.getresponse()
    assert response.status == 200
    assert response.readline().startswith(b"data: ")  # the reply has begun
    response.close()
    connection.close()  # the user closed the tab
    deadline = time.monotonic() + 20
    while not outcomes and time.monotonic() < deadline:
        time.sleep(0.02)
    assert outcomes and outcomes[0] in ("cancelled", "closed")  # not "length": 7000 tokens
    status, reply = raw(
        server,
        "POST",
        "/v1/chat/completions",
        json.dumps({"model": "tiny", "messages": HELLO}).encode(),
    )
    assert status == 200 and reply["choices"][0]["message"]["content"]  # the engine is free


def test_stopping_the_server_cancels_what_is_in_flight(
    server: ApiServer, service: CadreService, monkeypatch: pytest.MonkeyPatch
) -> None:
    outcomes = record_generations(service, monkeypatch)
    with openai.OpenAI(base_url=server.base_url, api_key=server.token, max_retries=0) as official:
        stream = official.chat.completions.create(model="long", messages=HELLO, stream=True)
        next(iter(stream))  # generating now
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 10
        assert outcomes and outcomes[0] in ("cancelled", "closed")
        with contextlib.suppress(openai.APIError):
            list(stream)  # the stream just ends
        stream.close()


@posix_only
def test_an_engine_crash_is_a_503_and_the_server_keeps_serving(
    client: openai.OpenAI, service: CadreService, monkeypatch: pytest.MonkeyPatch
) -> None:
    record_generations(service, monkeypatch, crash=True)
    with pytest.raises(openai.InternalServerError, match="engine stopped") as crashed:
        client.chat.completions.create(model="long", messages=HELLO)
    assert crashed.value.status_code == 503
    stream = client.chat.completions.create(model="long", messages=HELLO, stream=True)
    with pytest.raises(openai.APIError, match="engine stopped"):
        list(stream)  # mid-stream, the error is the last event
    monkeypatch.undo()
    after = client.chat.completions.create(model="tiny", messages=HELLO)
    assert after.choices[0].message.content  # a fresh worker


def test_the_gate_serves_in_order_and_bounds_the_queue() -> None:
    gate = GenerationGate(max_waiting=2)
    order: list[int] = []

    def wait_turn(number: int) -> None:
        with gate.turn(lambda: False):
            order.append(number)

    threads = [threading.Thread(target=wait_turn, args=(number,)) for number in (1, 2)]
    with gate.turn(lambda: False):
        for number, thread in enumerate(threads, start=1):
            thread.start()
            while gate.waiting < number:
                time.sleep(0.005)
        with pytest.raises(ApiError) as full, gate.turn(lambda: False):
            pass
        assert full.value.status == 429 and full.value.headers["Retry-After"]
    for thread in threads:
        thread.join(timeout=10)
    assert order == [1, 2]


def test_a_waiter_whose_client_left_gives_up_its_place() -> None:
    gate = GenerationGate(max_waiting=1)
    with gate.turn(lambda: False):
        with pytest.raises(ClientGone), gate.turn(lambda: True):
            pass
        assert gate.waiting == 0
    with gate.turn(lambda: False):
        pass  # free again


# Security and bounds


def test_wrong_or_missing_token_is_a_401(client: openai.OpenAI, server: ApiServer) -> None:
    stranger = openai.OpenAI(base_url=server.base_url, api_key="wrong", max_retries=0)
    with stranger, pytest.raises(openai.AuthenticationError):
        stranger.models.list()
    for headers in ({"Authorization": ""}, {"Authorization": f"Basic {server.token}"}):
        status, body = raw(server, "GET", "/v1/models", headers=headers)
        assert status == 401 and body["error"]["code"] == "invalid_api_key"


def test_other_hosts_and_web_pages_are_refused(server: ApiServer) -> None:
    port = server.port
    for host in (f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{port + 1}"):
        status, body = raw(server, "GET", "/v1/models", headers={"Host": host})
        assert status == 403 and body["error"]["type"] == "permission_error", host
    for origin in ("http://evil.example", "null", f"https://localhost:{port}"):
        status, _ = raw(server, "GET", "/v1/models", headers={"Origin": origin})
        assert status == 403, origin
    assert raw(server, "GET", "/v1/models", headers={"Host": f"localhost:{port}"})[0] == 200
    assert (
        raw(server, "GET", "/v1/models", headers={"Origin": f"http://localhost:{port}"})[0] == 200
    )


def test_a_body_over_one_mib_is_refused_unread(server: ApiServer) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.putrequest("POST", "/v1/chat/completions")
        connection.putheader("Authorization", f"Bearer {server.token}")
        connection.putheader("Content-Length", str(2 * 1024 * 1024))
        connection.endheaders()  # the body never comes: the server must answer without it
        response = connection.getresponse()
        assert response.status == 413
        assert json.loads(response.read())["error"]["code"] == "too_large"
    finally:
        connection.close()


def test_bad_requests_get_openai_shaped_errors(client: openai.OpenAI, server: ApiServer) -> None:
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=5000)
    with pytest.raises(openai.NotFoundError, match="code"):
        client.chat.completions.create(model="code", messages=HELLO)
    path = "/v1/chat/completions"
    cases: list[tuple[bytes, int, str]] = [
        (b"{not json", 400, "invalid_json"),
        (b"[1, 2]", 400, "invalid_json"),
        (b'{"model": "tiny", "messages": [], "temperature": NaN}', 400, "invalid_json"),
        (b"[" * 100_000, 400, "invalid_json"),
        (json.dumps({"model": "tiny", "messages": []}).encode(), 400, "invalid_value"),
        (
            json.dumps({"model": "tiny", "messages": [{"role": "tool", "content": "x"}]}).encode(),
            400,
            "invalid_value",
        ),
        (
            json.dumps({"model": "tiny", "messages": [{"role": "user", "content": 3}]}).encode(),
            400,
            "invalid_value",
        ),
        (json.dumps({"model": "tiny", "messages": HELLO, "n": 2}).encode(), 400, "invalid_value"),
        (
            json.dumps(
                {"model": "tiny", "messages": [{"role": ["user"], "content": "x"}]}
            ).encode(),
            400,
            "invalid_value",
        ),
    ]
    for body, status, code in cases:
        got, reply = raw(server, "POST", path, body, {"Content-Type": "application/json"})
        assert (got, reply["error"]["code"]) == (status, code), body[:60]
        assert set(reply["error"]) >= {"message", "type", "code"}
    assert raw(server, "GET", "/v1/nothing-here")[0] == 404
    status, reply = raw(server, "GET", path)
    assert status == 405 and reply["error"]["code"] == "method_not_allowed"
    assert (
        raw(server, "POST", "/v1/embeddings", json.dumps({"model": "x", "input": "a"}).encode())[0]
        == 400
    )
    too_many = json.dumps({"model": "cadre-embed", "input": ["a"] * 257}).encode()
    assert raw(server, "POST", "/v1/embeddings", too_many)[0] == 400


def test_a_prompt_longer_than_the_context_is_a_400_whole_or_streamed(
    client: openai.OpenAI, server: ApiServer
) -> None:
    """The tiny specialist's context holds 512 tokens; this message alone needs well over that."""
    long = [{"role": "user", "content": "hello world and the cadre " * 300}]
    with pytest.raises(openai.BadRequestError, match="too long") as whole:
        client.chat.completions.create(model="tiny", messages=long)
    assert whole.value.code == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError, match="too long") as streamed:
        client.chat.completions.create(model="tiny", messages=long, stream=True)
    assert streamed.value.code == "context_length_exceeded"  # before the stream began
    status, body = raw(
        server,
        "POST",
        "/v1/chat/completions",
        json.dumps({"model": "tiny", "messages": long}).encode(),
    )
    assert status == 400 and body["error"]["param"] == "messages"
    assert body["error"]["type"] == "invalid_request_error"
    reply = client.chat.completions.create(model="tiny", messages=HELLO)
    assert reply.choices[0].message.content  # and the next request is served


def test_specialists_added_or_removed_by_another_cadre_while_serving(
    client: openai.OpenAI, tiny_model: Path, tmp_path: Path
) -> None:
    """`cadre import` and `cadre rm` in another process, while this server runs."""
    own = tmp_path / "own.gguf"
    own.write_bytes(tiny_model.read_bytes())
    added = cadre("import", str(own), "--as", "extra", "--domain", "general")
    assert added.returncode == 0, added.stderr
    assert "extra" in [model.id for model in client.models.list()]
    assert client.models.retrieve("extra").id == "extra"
    reply = client.chat.completions.create(model="extra", messages=HELLO, max_tokens=4)
    assert reply.model == "extra" and reply.choices[0].message.content

    removed = cadre("rm", "extra", "--yes")
    assert removed.returncode == 0, removed.stderr
    assert "extra" not in [model.id for model in client.models.list()]
    with pytest.raises(openai.NotFoundError, match="extra") as gone:
        client.chat.completions.create(model="extra", messages=HELLO)
    assert gone.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("extra")


@posix_only
def test_the_token_is_private_and_kept(server: ApiServer, service: CadreService) -> None:
    path = service.paths.api_token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_token(path) == server.token
    path.chmod(0o644)
    assert load_or_create_token(path) == server.token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.write_text("")  # damaged: replaced by a new one
    assert len(load_or_create_token(path)) >= 43


def test_only_loopback_and_a_free_port(service: CadreService, server: ApiServer) -> None:
    for host in ("0.0.0.0", "192.168.1.10", "::", "localhost"):
        with pytest.raises(CadreError, match="only listens on"):
            ApiServer(service, port=0, host=host)
    with pytest.raises(CadreError, match="already in use"):
        ApiServer(service, port=server.port)


@posix_only
def test_cadre_serve_prints_url_and_token_and_stops_on_ctrl_c(tiny_specialist: str) -> None:
    process = subprocess.Popen(
        interruptible_cadre("serve", "--port", "0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().split()[-1]
        token = process.stdout.readline().split()[-1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        with openai.OpenAI(base_url=url, api_key=token, max_retries=0) as official:
            assert "tiny" in [model.id for model in official.models.list()]
        process.send_signal(signal.SIGINT)
        _, errors = process.communicate(timeout=30)
        assert process.returncode == 0, errors
        assert "Stopping" in errors
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
