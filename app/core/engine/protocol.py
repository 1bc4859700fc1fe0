"""Messages between the app and the engine worker process. Plain frozen dataclasses, pickled over a
multiprocessing pipe. Requests flow to the worker; events flow back."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChatMessage:
    role: str  # "system", "user" or "assistant"
    content: str


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int = 512
    seed: int = -1


@dataclass(frozen=True)
class LoadModel:
    """Load a GGUF (or keep the loaded one if identical). ``n_gpu_layers`` -1 means estimate."""

    path: str
    n_ctx: int
    n_threads: int
    n_batch: int = 512
    n_gpu_layers: int = -1


@dataclass(frozen=True)
class Generate:
    request_id: int
    messages: tuple[ChatMessage, ...]
    sampling: SamplingParams = field(default_factory=SamplingParams)


@dataclass(frozen=True)
class Shutdown:
    pass


Request = LoadModel | Generate | Shutdown


@dataclass(frozen=True)
class ModelLoaded:
    path: str
    n_ctx: int
    n_gpu_layers: int
    gpu_note: str  # where the model runs, in words
    gpu_fallback: bool  # offload was tried and failed: the model runs on the CPU instead
    load_seconds: float
    reused: bool
    has_chat_template: bool
    worker_rss_bytes: int
    footprint_ram_bytes: int = 0  # what loading took: the worker's RSS growth
    footprint_vram_bytes: int = 0  # and this process's VRAM (NVIDIA), when offloaded
    chars_per_token: float = 4.0  # of English prose under this model's tokenizer (prompt budgets)


@dataclass(frozen=True)
class TokenBatch:
    """A few tokens' worth of text, batched so the receiver is not woken per token."""

    request_id: int
    text: str


@dataclass(frozen=True)
class GenerationStats:
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int
    ttft_s: float
    decode_s: float
    total_s: float
    finish_reason: str  # "stop", "length" or "cancelled"

    @property
    def decode_tokens_per_s(self) -> float:
        # The first token's time belongs to TTFT; decode speed is over the tokens after it.
        steps = self.completion_tokens - 1
        return steps / self.decode_s if steps > 0 and self.decode_s > 0 else 0.0


@dataclass(frozen=True)
class Finished:
    request_id: int
    stats: GenerationStats


@dataclass(frozen=True)
class Failed:
    """A request failed. ``known`` errors are the user's to fix; others are bugs (with a traceback)."""

    request_id: int
    message: str
    known: bool
    detail: str = ""
    kind: str = ""  # a known error's class name, so the app raises the same kind
    hint: str = ""


Event = ModelLoaded | TokenBatch | Finished | Failed
