"""Engine benchmark on the embedded starter specialist (Gemma 3 270M, Q4_K_M), CPU.

Prints medians over several runs:
- cold TTFT: the first turn of a conversation in a freshly loaded model (nothing cached), and the
  same with the model load included;
- follow-up TTFT: the next turn of that conversation, asked after a short pause as a person would
  (the KV cache holds the conversation; only the new words are processed);
- decode tokens/s of Cadre's engine (worker process, streaming, cancel checks, batching) and of a
  bare ``llama_cpp.Llama.create_completion`` on the same prompt text, settings and tokens;
and the ratios follow-up/cold (aim <= 0.15) and Cadre/bare decode (aim >= 0.97).

Usage: python bench/engine.py [--runs N] [--decode-tokens N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Generator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.embedded import prepare_model
from app.core.engine.client import EngineClient
from app.core.engine.prompt import TranscriptFormat
from app.core.engine.protocol import (
    ChatMessage,
    GenerationStats,
    LoadModel,
    SamplingParams,
)
from app.core.hardware import physical_cores
from app.core.service import CadreService
from app.core.tasks import run_job

FIRST = "Summarise the plot of Hamlet in two sentences."
FOLLOW_UP = "And who kills Hamlet in the end?"
DECODE_PROMPT = "Write the numbers from one to two hundred in words, separated by commas."
THINK_TIME_S = 1.0
GREEDY = SamplingParams(temperature=0.0, top_k=40, top_p=1.0, min_p=0.0, repeat_penalty=1.0)


def consume(stream: Generator[str, None, GenerationStats]) -> tuple[str, float, GenerationStats]:
    """Drain an engine stream; return the text, the TTFT seen by the caller, and the stats."""
    started = time.perf_counter()
    first_at = 0.0
    parts: list[str] = []
    while True:
        try:
            parts.append(next(stream))
            first_at = first_at or time.perf_counter()
        except StopIteration as stop:
            return "".join(parts), first_at - started, stop.value


def conversation_run(load: LoadModel, system: str, sampling: SamplingParams) -> dict[str, float]:
    engine = EngineClient()
    try:
        started = time.perf_counter()
        engine.load(load)
        loaded = time.perf_counter() - started
        history = [ChatMessage("system", system), ChatMessage("user", FIRST)]
        reply, cold, first = consume(engine.generate(history, sampling))
        history += [ChatMessage("assistant", reply.strip()), ChatMessage("user", FOLLOW_UP)]
        time.sleep(THINK_TIME_S)
        _, follow, second = consume(engine.generate(history, sampling))
        engine.close()
        engine.load(load)  # the same follow-up in a fresh model: the whole conversation processed
        _, uncached, _ = consume(engine.generate(history, sampling))
    finally:
        engine.close()
    return {
        "follow_uncached": uncached,
        "follow_worker": second.ttft_s,
        "cold": cold,
        "cold_with_load": cold + loaded,
        "follow": follow,
        "cold_prompt": first.prompt_tokens,
        "follow_new": second.prompt_tokens - second.cached_tokens,
        "follow_cached": second.cached_tokens,
    }


def cadre_decode(load: LoadModel, sampling: SamplingParams) -> tuple[str, float, int]:
    engine = EngineClient()
    try:
        engine.load(load)
        text, _, stats = consume(engine.generate([ChatMessage("user", DECODE_PROMPT)], sampling))
    finally:
        engine.close()
    return text, stats.decode_tokens_per_s, stats.completion_tokens


def bare_decode(load: LoadModel, sampling: SamplingParams) -> tuple[str, float, int]:
    from llama_cpp import Llama

    fmt = TranscriptFormat()
    prompt = fmt.render([ChatMessage("user", DECODE_PROMPT)], True)
    llama = Llama(
        load.path,
        n_ctx=load.n_ctx,
        n_threads=load.n_threads,
        n_threads_batch=load.n_threads,
        n_batch=load.n_batch,
        n_gpu_layers=0,
        verbose=False,
    )
    stamps: list[float] = []
    text = ""
    try:
        chunks: Any = llama.create_completion(
            prompt,
            max_tokens=sampling.max_tokens,
            temperature=sampling.temperature,
            top_p=sampling.top_p,
            top_k=sampling.top_k,
            min_p=sampling.min_p,
            repeat_penalty=sampling.repeat_penalty,
            stop=list(fmt.stop),
            stream=True,
        )
        for chunk in chunks:
            stamps.append(time.perf_counter())
            text += chunk["choices"][0]["text"]
        tokens = len(llama.tokenize(text.encode(), add_bos=False))
    finally:
        llama.close()
    return text, (tokens - 1) / (stamps[-1] - stamps[0]), tokens


def main() -> int:
    parser = argparse.ArgumentParser(description="Cadre engine benchmark (starter model, CPU)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--decode-tokens", type=int, default=256)
    args = parser.parse_args()
    os.environ.setdefault("CADRE_HOME", str(Path(tempfile.gettempdir()) / "cadre-bench"))
    service = CadreService()
    starter = service.catalog.manifest("starter")
    model = run_job(prepare_model(service.catalog.entry("starter")))
    service.close()
    load = LoadModel(
        str(model),
        n_ctx=starter.context_size,
        n_threads=physical_cores(),
        n_batch=512,
        n_gpu_layers=0,
    )
    chat = SamplingParams(**{**GREEDY.__dict__, "max_tokens": 64})
    decode = SamplingParams(**{**GREEDY.__dict__, "max_tokens": args.decode_tokens})
    print(
        f"starter: {model.name}, {load.n_threads} threads, n_ctx {load.n_ctx}, greedy, "
        f"{args.runs} runs (medians)"
    )
    turns = [conversation_run(load, starter.system_prompt, chat) for _ in range(args.runs)]
    cadre, bare = [], []
    for _ in range(args.runs):  # interleaved, so drifts in machine load hit both alike
        cadre.append(cadre_decode(load, decode))
        bare.append(bare_decode(load, decode))
    report(turns, cadre, bare)
    return 0


def report(
    turns: list[dict[str, float]],
    cadre: list[tuple[str, float, int]],
    bare: list[tuple[str, float, int]],
) -> None:
    def med(key: str) -> float:
        return statistics.median(t[key] for t in turns)

    cold, follow = med("cold"), med("follow")
    print(f"cold TTFT             {cold * 1000:7.1f} ms  ({med('cold_prompt'):.0f} prompt tokens)")
    print(f"cold TTFT + load      {med('cold_with_load') * 1000:7.1f} ms")
    print(
        f"follow-up TTFT        {follow * 1000:7.1f} ms  ({med('follow_new'):.0f} new tokens, "
        f"{med('follow_cached'):.0f} reused)"
    )
    print(f"  (worker-side        {med('follow_worker') * 1000:7.1f} ms)")
    uncached = med("follow_uncached")
    print(f"follow-up, no reuse   {uncached * 1000:7.1f} ms  (whole conversation processed)")
    print(f"ratio follow-up/cold  {follow / cold:7.3f}     (aim <= 0.15)")
    print(f"ratio reuse/no reuse  {follow / uncached:7.3f}")
    c_rates = [rate for _, rate, _ in cadre]
    b_rates = [rate for _, rate, _ in bare]
    c_rate, b_rate = statistics.median(c_rates), statistics.median(b_rates)
    same = cadre[0][0].strip() == bare[0][0].strip()
    print(
        f"decode cadre          {c_rate:7.1f} tok/s  best {max(c_rates):5.1f} ({cadre[0][2]} tokens)"
    )
    print(
        f"decode bare           {b_rate:7.1f} tok/s  best {max(b_rates):5.1f} ({bare[0][2]} tokens, "
        f"same text: {'yes' if same else 'NO'})"
    )
    print(
        f"ratio cadre/bare      {c_rate / b_rate:7.3f}     (aim >= 0.97; best/best "
        f"{max(c_rates) / max(b_rates):.3f})"
    )


if __name__ == "__main__":
    raise SystemExit(main())
