"""The engine on real llama.cpp, with tiny GGUF models, through the worker process."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.engine.client import EngineClient
from app.core.engine.protocol import (
    ChatMessage,
    Generate,
    GenerationStats,
    LoadModel,
    SamplingParams,
)
from app.core.errors import CadreError, EngineCrashedError
from app.core.gguf_header import GGUFFormatError
from app.core.tasks import CancelToken

GREEDY = SamplingParams(temperature=0.0, max_tokens=16)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[EngineClient]:
    client = EngineClient(log_path=tmp_path / "worker.log")
    yield client
    client.close()


def load(engine: EngineClient, model: Path, n_ctx: int = 512) -> None:
    engine.load(LoadModel(path=str(model), n_ctx=n_ctx, n_threads=2, n_gpu_layers=0))


def run(
    engine: EngineClient, messages: list[ChatMessage], **kw: object
) -> tuple[str, GenerationStats]:
    stream = engine.generate(messages, kw.pop("sampling", GREEDY), **kw)  # type: ignore[arg-type]
    parts: list[str] = []
    while True:
        try:
            parts.append(next(stream))
        except StopIteration as stop:
            return "".join(parts), stop.value


def test_streams_a_reply_with_stats(engine: EngineClient, tiny_model: Path) -> None:
    load(engine, tiny_model)
    text, stats = run(
        engine, [ChatMessage("system", "Be kind."), ChatMessage("user", "hello world")]
    )
    assert stats.completion_tokens > 0
    assert stats.prompt_tokens > 5
    assert stats.finish_reason in ("stop", "length")
    assert stats.ttft_s > 0 and stats.total_s >= stats.ttft_s
    assert text == text.strip("\x00")


def test_greedy_generation_is_deterministic(engine: EngineClient, tiny_model: Path) -> None:
    load(engine, tiny_model)
    first, _ = run(engine, [ChatMessage("user", "the world")])
    engine.close()
    load(engine, tiny_model)
    again, _ = run(engine, [ChatMessage("user", "the world")])
    assert first == again


def test_follow_up_turn_reuses_the_kv_cache(engine: EngineClient, tiny_model: Path) -> None:
    load(engine, tiny_model)
    history = [ChatMessage("system", "Be kind."), ChatMessage("user", "hello the world")]
    reply, first = run(engine, history)
    assert first.cached_tokens == 0
    history += [ChatMessage("assistant", reply.strip()), ChatMessage("user", "and you")]
    _, second = run(engine, history)
    assert second.cached_tokens > first.prompt_tokens  # the prompt and the reply's tokens
    new_text = "\n\nUser: and you\nAssistant:"  # at most one token a character
    assert second.prompt_tokens - second.cached_tokens <= len(new_text) + 1


def test_chat_template_model_renders_its_template(
    engine: EngineClient, tiny_chat_model: Path
) -> None:
    engine.load(LoadModel(path=str(tiny_chat_model), n_ctx=512, n_threads=2, n_gpu_layers=0))
    assert engine.last_load is not None and engine.last_load.has_chat_template
    _, stats = run(engine, [ChatMessage("system", "S"), ChatMessage("user", "hello")])
    # ChatML: <|im_start|>system\nS<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n
    assert 10 <= stats.prompt_tokens <= 40


def test_same_model_stays_loaded(engine: EngineClient, tiny_model: Path) -> None:
    load(engine, tiny_model)
    pid = engine.pid
    load(engine, tiny_model)
    assert engine.last_load is not None and engine.last_load.reused
    assert engine.pid == pid


def test_cancel_stops_between_tokens(engine: EngineClient, tiny_model: Path) -> None:
    load(engine, tiny_model)
    token = CancelToken()
    token.cancel()
    long_run = SamplingParams(temperature=0.0, max_tokens=400)
    _, stats = run(engine, [ChatMessage("user", "hello")], sampling=long_run, cancel=token)
    assert stats.finish_reason == "cancelled"
    assert stats.completion_tokens < 400
    _, after = run(engine, [ChatMessage("user", "hello")])  # the next request is not cancelled
    assert after.finish_reason != "cancelled"


def test_abandoned_stream_does_not_leak_into_the_next(
    engine: EngineClient, tiny_model: Path
) -> None:
    load(engine, tiny_model)
    stream = engine.generate([ChatMessage("user", "hello")], SamplingParams(max_tokens=400))
    next(stream)
    stream.close()
    _, stats = run(engine, [ChatMessage("user", "the")])
    assert stats.completion_tokens <= GREEDY.max_tokens


def test_a_failure_left_from_an_earlier_request_is_ignored_and_logged(
    engine: EngineClient, tiny_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    load(engine, tiny_model)
    expected, _ = run(engine, [ChatMessage("user", "hello")])  # request 1
    assert engine._conn is not None  # on the real pipe, a request 1 that fails after it ended:
    engine._conn.send(Generate(1, (ChatMessage("user", "hello world " * 400),), GREEDY))
    with caplog.at_level(logging.WARNING, logger="app.core.engine.client"):
        text, stats = run(engine, [ChatMessage("user", "hello")])  # request 2
    assert text == expected and stats.finish_reason in ("stop", "length")
    assert "failure of earlier engine request 1" in caplog.text
    assert "too long" in caplog.text


def test_worker_crash_is_reported_and_the_next_request_recovers(
    engine: EngineClient, tiny_model: Path
) -> None:
    load(engine, tiny_model)
    assert engine.pid is not None
    os.kill(engine.pid, signal.SIGKILL)
    with pytest.raises(EngineCrashedError):
        run(engine, [ChatMessage("user", "hello")])
    _, stats = run(engine, [ChatMessage("user", "hello")])  # restarted, model reloaded
    assert stats.completion_tokens > 0


def test_not_a_gguf_is_a_clear_error(engine: EngineClient, tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"PK\x03\x04 definitely a zip file" * 10)
    with pytest.raises(CadreError, match="not a GGUF"):
        load(engine, bogus)


def test_truncated_gguf_is_a_clear_error(
    engine: EngineClient, tiny_model: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_model.read_bytes()[:5000])
    with pytest.raises(CadreError):
        load(engine, cut)
    assert engine.pid is not None  # the worker survived


def test_message_longer_than_the_context_is_refused(engine: EngineClient, tiny_model: Path) -> None:
    load(engine, tiny_model, n_ctx=256)
    with pytest.raises(CadreError, match="too long"):
        run(engine, [ChatMessage("user", "hello world " * 400)])


def test_header_reader_sees_the_metadata(tiny_chat_model: Path) -> None:
    from app.core.gguf_header import read_gguf_header

    header = read_gguf_header(tiny_chat_model)
    assert header.architecture == "llama"
    assert header.block_count == 2
    assert header.context_length == 1024
    assert "<|im_start|>" in header.chat_template


def test_header_reader_rejects_absurd_counts(tmp_path: Path) -> None:
    import struct

    from app.core.gguf_header import read_gguf_header

    path = tmp_path / "absurd.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 1, 10**15))
    with pytest.raises(GGUFFormatError, match="implausible"):
        read_gguf_header(path)


def test_header_reader_catches_a_vocabulary_cut_short(tiny_model: Path, tmp_path: Path) -> None:
    from app.core.gguf_header import read_gguf_header

    cut = tmp_path / "cut.gguf"
    cut.write_bytes(tiny_model.read_bytes()[:3000])  # inside the token list
    with pytest.raises(GGUFFormatError, match="truncated"):
        read_gguf_header(cut)


def test_header_reader_rejects_a_tiny_file(tmp_path: Path) -> None:
    from app.core.gguf_header import read_gguf_header

    empty = tmp_path / "empty.gguf"
    empty.write_bytes(b"")
    with pytest.raises(GGUFFormatError, match="too small"):
        read_gguf_header(empty)


def test_a_context_beyond_the_trained_one_loads_with_a_warning_in_the_worker_log(
    engine: EngineClient, tiny_model: Path, tmp_path: Path
) -> None:
    """Not refused (a model that scales RoPE reaches further), but logged: tiny.gguf was
    trained on 1024 tokens."""
    warning = "tiny.gguf runs with a context of 2048 tokens, beyond the 1024 it was trained on"
    load(engine, tiny_model, n_ctx=1024)
    assert warning not in (tmp_path / "worker.log").read_text()
    load(engine, tiny_model, n_ctx=2048)
    assert engine.last_load is not None and engine.last_load.n_ctx == 2048
    assert (
        f"WARNING app.core.engine.llama_backend: {warning}" in (tmp_path / "worker.log").read_text()
    )
