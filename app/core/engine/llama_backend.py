"""llama-cpp-python behind a small interface. Runs inside the engine worker process only.

One model is kept loaded and reused while the same file and settings are asked for. Follow-up turns
reuse the KV cache: the prompt is planned so that last turn's tokens are a prefix of this turn's.
"""

from __future__ import annotations

import codecs
import logging
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil

from app.core.engine.prompt import (
    PromptFormat,
    StopScanner,
    TranscriptFormat,
    TurnMemory,
    fit_messages,
    next_turn_text,
    plan_prompt_tokens,
)
from app.core.engine.protocol import (
    ChatMessage,
    Generate,
    GenerationStats,
    LoadModel,
    ModelLoaded,
)
from app.core.engine.template import compiling_templates, template_format
from app.core.errors import CadreError, ChatTemplateError, ModelLoadError, PromptTooLongError
from app.core.fit import header_kv_bytes_per_token
from app.core.gguf_header import GGUFHeader, read_gguf_header
from app.core.hardware import estimate_gpu_layers, nvidia_gpus, process_vram_bytes

log = logging.getLogger(__name__)


def _make_format(llama: Any, header: GGUFHeader) -> PromptFormat:
    template = header.chat_template
    if not template:
        return TranscriptFormat()
    model = llama._model
    eos = model.token_get_text(model.token_eos()) if model.token_eos() != -1 else ""
    bos = model.token_get_text(model.token_bos()) if model.token_bos() != -1 else ""
    return template_format(template, eos, bos)


def _plan_gpu_layers(request: LoadModel, header: GGUFHeader, path: Path) -> tuple[int, str]:
    import llama_cpp

    if request.n_gpu_layers == 0:
        return 0, "GPU offload is off (Settings)."
    if not llama_cpp.llama_supports_gpu_offload():
        return 0, "This build of llama.cpp runs on the CPU only."
    if request.n_gpu_layers > 0:  # a count asked for (Settings: "max"); no more than it has
        layers = min(request.n_gpu_layers, header.block_count + 1)
        return layers, f"{layers} of {header.block_count + 1} layers on the GPU (Settings)."
    if sys.platform == "darwin" and platform.machine() == "arm64":
        return -1, "All layers on the Apple GPU (Metal, unified memory)."
    gpus = nvidia_gpus()
    if not gpus:
        return 0, "No GPU found; running on the CPU."
    gpu = max(gpus, key=lambda g: g.free_bytes)
    kv_bytes = kv_cache_bytes(header, request.n_ctx)
    layers = estimate_gpu_layers(path.stat().st_size, header.block_count, kv_bytes, gpu.free_bytes)
    return layers, f"{layers} of {header.block_count + 1} layers on {gpu.name}."


def _warn_beyond_training(path: Path, header: GGUFHeader, n_ctx: int) -> None:
    """Allowed (a model that scales RoPE reaches further), but worth a line in the worker log
    when its replies go wrong."""
    trained = header.context_length
    if trained and n_ctx > trained:
        log.warning(
            "%s runs with a context of %d tokens, beyond the %d it was trained on",
            path.name,
            n_ctx,
            trained,
        )


_BUDGET_SAMPLE = (
    "The tenant must give written notice at least thirty days before leaving. Mitochondria "
    "produce most of the energy a cell uses, and the function returns None when the key is "
    "missing: check the configuration file, section 4.2, before calling the service again."
)


def kv_cache_bytes(header: GGUFHeader, n_ctx: int) -> int:
    return header_kv_bytes_per_token(header) * n_ctx


class LlamaBackend:
    def __init__(self) -> None:
        self._llama: Any = None
        self._loaded: LoadModel | None = None
        self._format: PromptFormat = TranscriptFormat()
        self._add_bos = True
        self._bos_text = ""
        self._memory = TurnMemory()
        self._info: ModelLoaded | None = None

    def load(self, request: LoadModel) -> ModelLoaded:
        if self._llama is not None and request == self._loaded and self._info is not None:
            return replace(self._info, reused=True)
        self.unload()
        started = time.perf_counter()
        rss_before = psutil.Process().memory_info().rss
        path = Path(request.path)
        header = read_gguf_header(path)
        _warn_beyond_training(path, header, request.n_ctx)
        layers, note = _plan_gpu_layers(request, header, path)
        planned = layers
        self._llama, layers, note = self._open(request, layers, note)
        fallback = planned != 0 and layers == 0
        try:
            self._format = _make_format(self._llama, header)
        except ChatTemplateError as exc:  # refused: the model is not kept loaded
            self.unload()
            raise ChatTemplateError(f"{path.name}: {exc.message}", hint=exc.hint) from exc
        self._add_bos = str(header.metadata.get("tokenizer.ggml.add_bos_token", True)) != "False"
        bos = self._llama._model.token_bos()
        self._bos_text = self._llama._model.token_get_text(bos) if bos != -1 else ""
        self._loaded = request
        self._info = ModelLoaded(
            path=request.path,
            n_ctx=self._llama.n_ctx(),
            n_gpu_layers=layers,
            gpu_note=note,
            gpu_fallback=fallback,
            load_seconds=time.perf_counter() - started,
            reused=False,
            has_chat_template=bool(header.chat_template),
            worker_rss_bytes=(rss := psutil.Process().memory_info().rss),
            footprint_ram_bytes=max(0, rss - rss_before),
            footprint_vram_bytes=process_vram_bytes(os.getpid()) if layers else 0,
            chars_per_token=self._chars_per_token(),
        )
        return self._info

    def _chars_per_token(self) -> float:
        """How much text a token holds, measured on a fixed paragraph: lets the app budget
        document excerpts against this model's context without a round trip per excerpt."""
        tokens = self._llama.tokenize(_BUDGET_SAMPLE.encode("utf-8"), add_bos=False)
        return len(_BUDGET_SAMPLE) / max(1, len(tokens))

    def _open(self, request: LoadModel, layers: int, note: str) -> tuple[Any, int, str]:
        from llama_cpp import Llama

        def build(gpu_layers: int) -> Any:
            return Llama(
                model_path=request.path,
                n_ctx=request.n_ctx,
                n_threads=request.n_threads,
                n_threads_batch=request.n_threads,
                n_batch=request.n_batch,
                n_gpu_layers=gpu_layers,
                verbose=False,
            )

        try:
            with compiling_templates(Path(request.path).name):
                return build(layers), layers, note
        except (ValueError, RuntimeError, OSError) as exc:
            if layers == 0:
                raise ModelLoadError(
                    f"llama.cpp could not load {Path(request.path).name}: {exc}",
                    hint="The file may be damaged or of an architecture this version does not know.",
                ) from exc
            return build(0), 0, f"GPU offload failed ({exc}); running on the CPU instead."

    def unload(self) -> None:
        if self._llama is not None:
            self._llama.close()
        self._llama, self._loaded, self._info = None, None, None
        self._memory = TurnMemory()

    def _tokenize(self, text: str, *, start: bool) -> list[int]:
        special = not isinstance(self._format, TranscriptFormat)
        add_bos = (
            start and self._add_bos and not (self._bos_text and text.startswith(self._bos_text))
        )
        tokens: list[int] = self._llama.tokenize(
            text.encode("utf-8"), add_bos=add_bos, special=special
        )
        return tokens

    def _prompt_tokens(
        self, messages: Sequence[ChatMessage], max_tokens: int
    ) -> tuple[str, list[int]]:
        n_ctx = int(self._llama.n_ctx())
        budget = n_ctx - min(max_tokens, n_ctx // 2)

        def count(candidate: Sequence[ChatMessage]) -> int:
            return len(self._tokenize(self._format.render(candidate, True), start=True))

        kept = fit_messages(messages, count, budget)
        text = self._format.render(kept, True)
        tokens = plan_prompt_tokens(
            text,
            self._memory,
            lambda t: self._tokenize(t, start=True),
            lambda t: self._tokenize(t, start=False),
        )
        if len(tokens) >= n_ctx - 1:
            raise PromptTooLongError(
                f"The message is too long for this specialist ({len(tokens)} tokens; "
                f"its context holds {n_ctx}).",
                hint="Shorten it, or start a new conversation.",
            )
        return text, tokens

    def generate(
        self, request: Generate, cancelled: Callable[[], bool], emit: Callable[[str], None]
    ) -> GenerationStats:
        if self._llama is None:
            raise CadreError("No model is loaded.")
        started = time.perf_counter()
        sampling = request.sampling
        prompt_text, tokens = self._prompt_tokens(request.messages, sampling.max_tokens)
        cached = _common_prefix(self._llama._input_ids[: self._llama.n_tokens].tolist(), tokens)
        max_new = min(sampling.max_tokens, int(self._llama.n_ctx()) - len(tokens))
        if sampling.seed >= 0:
            self._llama.set_seed(sampling.seed)
        run = _Run(self._format.stop, emit)
        stream = self._llama.generate(
            tokens,
            top_k=sampling.top_k,
            top_p=sampling.top_p,
            min_p=sampling.min_p,
            temp=sampling.temperature,
            repeat_penalty=sampling.repeat_penalty,
        )
        finish = run.consume(stream, self._is_end, self._llama.detokenize, max_new, cancelled)
        self._memory = memory = run.memory(prompt_text, tokens)
        separator = next_turn_text(self._format, request.messages, run.text)
        unkept = run.text.strip()[len(memory.reply_text.strip()) :]  # cut at a token boundary
        memory.next_text = unkept + separator if separator else ""
        ended = time.perf_counter()
        return GenerationStats(
            prompt_tokens=len(tokens),
            cached_tokens=min(cached, len(tokens)),
            completion_tokens=len(run.tokens),
            ttft_s=run.first_token_at - started if run.first_token_at else ended - started,
            decode_s=ended - run.first_token_at if run.first_token_at else 0.0,
            total_s=ended - started,
            finish_reason=finish,
        )

    def prefill_next_turn(self) -> None:
        """While idle, evaluate the text that will follow this reply (the next turn's header), so
        the follow-up question only has its own words left to process."""
        memory = self._memory
        if self._llama is None or not memory.next_text or memory.next_tokens:
            return
        known = memory.prompt_tokens + memory.reply_tokens
        cached = self._llama._input_ids[: self._llama.n_tokens].tolist()
        keep = _common_prefix(cached, known)
        if not memory.reply_tokens or keep < len(memory.prompt_tokens):
            return
        pending = self._tokenize(memory.next_text, start=False)
        if len(known) + len(pending) >= int(self._llama.n_ctx()):  # a reply that filled the context
            return
        self._llama.n_tokens = keep
        self._llama.eval(known[keep:] + pending)
        memory.next_tokens = pending

    def _is_end(self, token: int) -> bool:
        import llama_cpp

        return bool(llama_cpp.llama_vocab_is_eog(self._llama._model.vocab, token))


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    size = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        size += 1
    return size


class _Run:
    """One reply being streamed: tokens, visible text, and where text and tokens line up."""

    def __init__(self, stops: Sequence[str], emit: Callable[[str], None]) -> None:
        self.tokens: list[int] = []
        self.first_token_at = 0.0
        self._scanner = StopScanner(stops)
        self._emit = emit
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._boundaries: list[tuple[int, int]] = []  # (token count, text length) at whole chars

    def consume(
        self,
        stream: Any,
        is_end: Callable[[int], bool],
        detokenize: Callable[[list[int]], bytes],
        max_new: int,
        cancelled: Callable[[], bool],
    ) -> str:
        for token in stream:
            if not self.first_token_at:
                self.first_token_at = time.perf_counter()
            if is_end(token):
                return self._finish("stop")
            self.tokens.append(token)
            self._add_text(self._decoder.decode(detokenize([token])))
            if self._scanner.stopped:
                return "stop"
            if len(self.tokens) >= max_new:
                return self._finish("length")
            if cancelled():
                return self._finish("cancelled")
        return self._finish("stop")

    @property
    def text(self) -> str:
        return self._scanner.text

    def _add_text(self, piece: str) -> None:
        visible = self._scanner.feed(piece)
        if not self._decoder.getstate()[0]:
            self._boundaries.append((len(self.tokens), len(self._scanner.text)))
        if visible:
            self._emit(visible)

    def _finish(self, reason: str) -> str:
        self._add_text(self._decoder.decode(b"", final=True))
        tail = self._scanner.flush()
        if tail:
            self._emit(tail)
        return reason

    def memory(self, prompt_text: str, prompt_tokens: list[int]) -> TurnMemory:
        """What the KV cache holds now, trimmed to the last token that ends inside the kept reply
        text (trailing whitespace and any stop string are not part of the reply as stored)."""
        keep = len(self._scanner.text.rstrip())
        count, length = 0, 0
        for tokens_so_far, text_length in self._boundaries:
            if text_length > keep:
                break
            count, length = tokens_so_far, text_length
        return TurnMemory(
            prompt_text, list(prompt_tokens), self._scanner.text[:length], self.tokens[:count]
        )
