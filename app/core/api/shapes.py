"""The JSON objects the API answers with, shaped like OpenAI's (plus Cadre's ``sources``)."""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Sequence
from typing import Any

from app.core.catalog import CatalogEntry
from app.core.embedder import Vectors
from app.core.engine.protocol import GenerationStats

OWNER = "cadre"


def completion_id() -> str:
    return f"chatcmpl-{secrets.token_hex(12)}"


def now() -> int:
    return int(time.time())


def finish_reason(stats: GenerationStats | None) -> str:
    """OpenAI's reasons: the engine's "length" stays, anything else ended the text: "stop"."""
    return "length" if stats is not None and stats.finish_reason == "length" else "stop"


def usage(stats: GenerationStats | None) -> dict[str, int]:
    prompt = stats.prompt_tokens if stats else 0
    completion = stats.completion_tokens if stats else 0
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def completion(
    cid: str,
    model: str,
    content: str,
    stats: GenerationStats | None,
    sources: Sequence[dict[str, Any]] | None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": now(),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "logprobs": None,
                "finish_reason": finish_reason(stats),
            }
        ],
        "usage": usage(stats),
    }
    if sources is not None:
        body["sources"] = list(sources)
    return body


def chunk(
    cid: str,
    model: str,
    delta: dict[str, str],
    reason: str | None = None,
    sources: Sequence[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": now(),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}],
    }
    if sources is not None:
        body["sources"] = list(sources)
    return body


def usage_chunk(cid: str, model: str, stats: GenerationStats | None) -> dict[str, Any]:
    """The last chunk when the client asked for ``stream_options.include_usage``."""
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": now(),
        "model": model,
        "choices": [],
        "usage": usage(stats),
    }


def model_entry(entry: CatalogEntry) -> dict[str, Any]:
    manifest = entry.manifest
    return {
        "id": manifest.id,
        "object": "model",
        "created": _mtime(entry),
        "owned_by": OWNER,
        "name": manifest.name,
        "domain": manifest.domain,
    }


def auto_entry() -> dict[str, Any]:
    return {
        "id": "auto",
        "object": "model",
        "created": 0,
        "owned_by": OWNER,
        "name": "Auto (routed)",
        "domain": "",
    }


def model_list(entries: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": list(entries)}


def embeddings(model: str, vectors: Vectors, as_base64: bool, tokens: int) -> dict[str, Any]:
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _encoded(vector.astype("<f4").tobytes()) if as_base64 else vector.tolist(),
        }
        for index, vector in enumerate(vectors)
    ]
    return {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _encoded(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _mtime(entry: CatalogEntry) -> int:
    try:
        return int(entry.model_path.stat().st_mtime)
    except OSError:
        return 0
