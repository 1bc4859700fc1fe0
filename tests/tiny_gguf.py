"""Write tiny but real llama-architecture GGUF files with the ``gguf`` package, for fast engine tests.

The weights are random, so the text is gibberish, but llama.cpp loads, tokenizes, evaluates and
samples them exactly as it does a real model: a few hundred KB that load in milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np

CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_WORDS = ("the", "a", "and", "is", "of", "to", "in", "it", "you", "hello", "world", "cadre")


def _vocab() -> tuple[list[str], list[float], list[int]]:
    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    types += [gguf.TokenType.CONTROL, gguf.TokenType.CONTROL]
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    types += [gguf.TokenType.BYTE] * 256
    pieces = ["▁"] + [chr(c) for c in range(33, 127)] + [f"▁{w}" for w in _WORDS]
    tokens += pieces
    types += [gguf.TokenType.NORMAL] * len(pieces)
    scores = [0.0] * (len(tokens) - len(pieces)) + [-float(i) for i in range(len(pieces))]
    return tokens, scores, [int(t) for t in types]


def write_tiny_llama(
    path: Path,
    *,
    chat_template: str | None = None,
    n_layer: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_ff: int = 128,
    context_length: int = 1024,
    seed: int = 0,
    rms_eps: float = 1e-5,
) -> Path:
    """``rms_eps`` below zero or NaN makes a file that aborts llama.cpp at the first token
    (GGML_ASSERT): a hostile model for the crash tests, which the validator refuses."""
    tokens, scores, types = _vocab()
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny-test-llama")
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_layer_norm_rms_eps(rms_eps)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(4 if chat_template else 2)
    if chat_template:
        writer.add_chat_template(chat_template)
    _add_weights(
        writer,
        n_vocab=len(tokens),
        n_layer=n_layer,
        n_embd=n_embd,
        n_ff=n_ff,
        rng=np.random.default_rng(seed),
    )
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _add_weights(
    writer: gguf.GGUFWriter,
    *,
    n_vocab: int,
    n_layer: int,
    n_embd: int,
    n_ff: int,
    rng: np.random.Generator,
) -> None:
    def tensor(*shape: int) -> np.ndarray:
        return rng.normal(0.0, 0.2, size=shape).astype(np.float32)

    writer.add_tensor("token_embd.weight", tensor(n_vocab, n_embd))
    for layer in range(n_layer):
        prefix = f"blk.{layer}"
        writer.add_tensor(f"{prefix}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"{prefix}.{name}.weight", tensor(n_embd, n_embd))
        writer.add_tensor(f"{prefix}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"{prefix}.ffn_gate.weight", tensor(n_ff, n_embd))
        writer.add_tensor(f"{prefix}.ffn_up.weight", tensor(n_ff, n_embd))
        writer.add_tensor(f"{prefix}.ffn_down.weight", tensor(n_embd, n_ff))
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    output = tensor(n_vocab, n_embd)
    output[:5] = 0.0  # control tokens (end of turn among them) never win: replies run until stopped
    writer.add_tensor("output.weight", output)
