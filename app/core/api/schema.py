"""Request bodies, checked: what the chat completions and embeddings endpoints accept.

Everything a client may send is bounded here, before any model runs: types, ranges, how many inputs.
Fields Cadre cannot honour (several choices, stop strings, tools) are refused with a 400 rather
than silently ignored; fields that only tune OpenAI's service (``user``, penalties) are ignored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from app.core.api.errors import invalid
from app.core.engine.protocol import ChatMessage, SamplingParams

MAX_TOKENS_LIMIT = 4096  # above this a request is refused; below, the specialist's own cap applies
MAX_EMBEDDING_INPUTS = 256
EMBEDDING_MODELS = ("all-MiniLM-L6-v2", "cadre-embed", "sentence-transformers/all-MiniLM-L6-v2")
AUTO = "auto"
_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant"}
_SEED_MAX = 2**32 - 1


@dataclass(frozen=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    stream: bool = False
    include_usage: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    collection: str | None = None

    def question(self) -> str:
        """The last user message: what is routed, and what documents are searched for."""
        return next(m.content for m in reversed(self.messages) if m.role == "user")

    def sampling(self, defaults: SamplingParams) -> SamplingParams:
        """The specialist's defaults with the request's overrides; ``max_tokens`` never above the
        specialist's own cap (its manifest)."""
        changes: dict[str, Any] = {}
        if self.temperature is not None:
            changes["temperature"] = self.temperature
        if self.top_p is not None:
            changes["top_p"] = self.top_p
        if self.seed is not None:
            changes["seed"] = self.seed
        if self.max_tokens is not None:
            changes["max_tokens"] = min(self.max_tokens, defaults.max_tokens)
        return replace(defaults, **changes)


@dataclass(frozen=True)
class EmbeddingsRequest:
    model: str
    inputs: tuple[str, ...]
    base64: bool


def parse_chat(body: dict[str, Any]) -> ChatRequest:
    _refuse_unsupported(body)
    stream = _boolean(body, "stream")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise invalid("'stream_options' must be an object.", "stream_options")
    max_tokens = _integer(body, "max_completion_tokens", 1, MAX_TOKENS_LIMIT)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1, MAX_TOKENS_LIMIT)
    return ChatRequest(
        model=_required_string(body, "model"),
        messages=_messages(body.get("messages")),
        stream=stream,
        include_usage=stream and bool((options or {}).get("include_usage")),
        temperature=_number(body, "temperature", 0.0, 2.0),
        top_p=_number(body, "top_p", 0.0, 1.0),
        max_tokens=max_tokens,
        seed=_integer(body, "seed", -1, _SEED_MAX),
        collection=_string(body, "collection"),
    )


def parse_embeddings(body: dict[str, Any]) -> EmbeddingsRequest:
    model = _required_string(body, "model")
    if model not in EMBEDDING_MODELS:
        raise invalid(
            f"Unknown embedding model {model!r}; use {EMBEDDING_MODELS[0]!r}.",
            "model",
            "model_not_found",
        )
    dimensions = _integer(body, "dimensions", 1, 100_000)
    if dimensions not in (None, 384):
        raise invalid("This embedding model has 384 dimensions.", "dimensions")
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64", None):
        raise invalid("'encoding_format' must be 'float' or 'base64'.", "encoding_format")
    return EmbeddingsRequest(model, _inputs(body.get("input")), encoding == "base64")


def _inputs(value: Any) -> tuple[str, ...]:
    texts = [value] if isinstance(value, str) else value
    if not isinstance(texts, list) or not texts:
        raise invalid("'input' must be a string or a non-empty list of strings.", "input")
    if len(texts) > MAX_EMBEDDING_INPUTS:
        raise invalid(f"At most {MAX_EMBEDDING_INPUTS} inputs per request.", "input")
    if not all(isinstance(text, str) and text.strip() for text in texts):
        raise invalid("Each input must be a non-empty string (token arrays are not accepted).")
    return tuple(texts)


def _messages(value: Any) -> tuple[ChatMessage, ...]:
    if not isinstance(value, list) or not value:
        raise invalid("'messages' must be a non-empty list.", "messages")
    messages = []
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise invalid(f"{where} must be an object.", where)
        role = message.get("role")
        role = _ROLES.get(role) if isinstance(role, str) else None
        if role is None:
            raise invalid(f"{where}.role must be 'system', 'user' or 'assistant'.", where)
        messages.append(ChatMessage(role, _content(message.get("content"), where)))
    if not any(m.role == "user" and m.content.strip() for m in messages):
        raise invalid("The messages need a user message with some text.", "messages")
    return tuple(m for m in messages if m.content.strip())  # empty turns say nothing


def _content(content: Any, where: str) -> str:
    """A string, or OpenAI's list of parts of which only text parts are accepted."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not (isinstance(part, dict) and part.get("type") == "text"):
                raise invalid(f"{where}.content: only text parts are supported.", where)
            if not isinstance(part.get("text"), str):
                raise invalid(f"{where}.content: a text part needs a 'text' string.", where)
            texts.append(part["text"])
        return "\n".join(texts)
    raise invalid(f"{where}.content must be a string or a list of text parts.", where)


def _refuse_unsupported(body: dict[str, Any]) -> None:
    if body.get("n") not in (None, 1):
        raise invalid("Only one choice per request (n = 1) is supported.", "n")
    for key in ("stop", "tools", "functions", "logprobs", "tool_choice", "function_call"):
        if body.get(key) not in (None, [], False, "none", ""):
            raise invalid(f"'{key}' is not supported by Cadre's local API.", key, "unsupported")
    response_format = body.get("response_format")
    if response_format not in (None, {"type": "text"}):
        raise invalid("Only text responses are supported.", "response_format", "unsupported")


def _string(body: dict[str, Any], key: str) -> str | None:
    if body.get(key) is None:
        return None
    return _required_string(body, key)


def _required_string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value.strip():
        raise invalid(f"'{key}' must be a non-empty string.", key)
    return value.strip()


def _boolean(body: dict[str, Any], key: str) -> bool:
    value = body.get(key, False)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise invalid(f"'{key}' must be true or false.", key)
    return value


def _number(body: dict[str, Any], key: str, low: float, high: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(f"'{key}' must be a number.", key)
    if not low <= value <= high:
        raise invalid(f"'{key}' must be between {low:g} and {high:g}.", key)
    return float(value)


def _integer(body: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"'{key}' must be an integer.", key)
    if not low <= value <= high:
        raise invalid(f"'{key}' must be between {low} and {high}.", key)
    return value
