"""Between a turn and the engine: what the engine is asked (the history, the sampling) and what is
kept of its answer (the timings). Shared by the chat service and the local API."""

from __future__ import annotations

from dataclasses import asdict

from app.core.engine.protocol import ChatMessage, GenerationStats, SamplingParams
from app.core.storage import StoredMessage
from app.core.storage.conversations import MessageTimings
from specialists import SpecialistManifest


def sampling_for(manifest: SpecialistManifest) -> SamplingParams:
    """The manifest's sampling defaults, as the engine takes them (the fields share their names)."""
    return SamplingParams(**asdict(manifest.sampling))


def timings_of(stats: GenerationStats, peak_memory_bytes: int) -> MessageTimings:
    return MessageTimings(
        prompt_tokens=stats.prompt_tokens,
        cached_tokens=stats.cached_tokens,
        completion_tokens=stats.completion_tokens,
        ttft_ms=stats.ttft_s * 1000,
        decode_tokens_per_s=stats.decode_tokens_per_s,
        total_ms=stats.total_s * 1000,
        peak_memory_bytes=peak_memory_bytes,
    )


def history_for(manifest: SpecialistManifest, stored: list[StoredMessage]) -> list[ChatMessage]:
    """The prompt's messages: the specialist's system prompt, then the conversation with runs of one
    role merged (a cancelled reply leaves two user turns in a row, which strict templates refuse)."""
    merged: list[ChatMessage] = [ChatMessage("system", manifest.system_prompt)]
    for message in stored:
        if not message.content:
            continue
        if len(merged) > 1 and merged[-1].role == message.role:
            merged[-1] = ChatMessage(message.role, f"{merged[-1].content}\n\n{message.content}")
        else:
            merged.append(ChatMessage(message.role, message.content))
    return merged
