"""Read and check a GGUF file's header, metadata and tensor table in pure Python, without loading the model.

:func:`read_gguf_header` reads the header and metadata only: a model's architecture, layer count, context
length and chat template, learnt before the file is handed to llama.cpp. :func:`validate_gguf` also reads
the tensor table and checks what llama.cpp checks when it opens the file (shapes, types, the place of
every tensor's data) and the norm epsilons it trusts and later aborts on, so that a truncated, damaged
or hostile file gets a clear message instead of a crash.
Large arrays (the tokenizer's vocabulary) are skipped, not kept: only their length is recorded.
Nothing is copied out of the memory map but the small values kept.
"""

from __future__ import annotations

import math
import mmap
import os
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from app.core.errors import CadreError
from app.core.gguf_types import ggml_type

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_STRING_BYTES = 16 * 1024 * 1024
MAX_KV_COUNT = 1_000_000
MAX_TENSOR_COUNT = 1_000_000
MAX_ARRAY_ITEMS = 50_000_000
KEPT_ARRAY_ITEMS = 64
DEFAULT_ALIGNMENT = 32
MAX_ALIGNMENT = 1 << 24
GGML_MAX_DIMS = 4
GGML_MAX_NAME = 64  # llama.cpp refuses tensor names of this many bytes or more
ALIGNMENT_KEY = "general.alignment"

_HEADER_BYTES = 24  # magic, version, tensor count, metadata count
_MIN_KV_BYTES = 13  # key length, value type, a one-byte value
_MIN_TENSOR_INFO_BYTES = 24  # name length, dimension count, type, offset
_INT64_MAX = 2**63 - 1
_SCALARS: dict[int, str] = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_UINT32, _STRING, _ARRAY = 4, 8, 9
_U64 = struct.Struct("<Q")
_T = TypeVar("_T")


class GGUFFormatError(CadreError):
    """The file is not a valid GGUF model (wrong magic, truncated, absurd sizes, damaged tensor table)."""


@dataclass(frozen=True)
class ArraySummary:
    """A metadata array too long to keep: its element type and length."""

    item_type: int
    length: int


@dataclass(frozen=True)
class TensorInfo:
    """One entry of the tensor table; ``offset`` counts from the start of the data section."""

    name: str
    shape: tuple[int, ...]
    type_id: int
    offset: int
    nbytes: int

    @property
    def type_name(self) -> str:
        known = ggml_type(self.type_id)
        return known.name if known else str(self.type_id)

    @property
    def n_elements(self) -> int:
        return math.prod(self.shape)


@dataclass
class GGUFHeader:
    """What a GGUF file says about itself; ``tensors`` and ``data_offset`` are filled by validation."""

    version: int
    tensor_count: int
    metadata: dict[str, Any] = field(default_factory=dict)
    metadata_types: dict[str, int] = field(default_factory=dict)
    tensors: list[TensorInfo] = field(default_factory=list)
    data_offset: int = 0
    file_size: int = 0

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", ""))

    def arch_value(self, name: str, default: Any = None) -> Any:
        return self.metadata.get(f"{self.architecture}.{name}", default)

    @property
    def block_count(self) -> int:
        return int(self.arch_value("block_count", 0) or 0)

    @property
    def context_length(self) -> int:
        return int(self.arch_value("context_length", 0) or 0)

    @property
    def chat_template(self) -> str:
        return str(self.metadata.get("tokenizer.chat_template", "") or "")

    @property
    def name(self) -> str:
        return str(self.metadata.get("general.name", "") or "")

    @property
    def alignment(self) -> int:
        """The data alignment the file declares (checked to be sane only by validation)."""
        value = self.metadata.get(ALIGNMENT_KEY, DEFAULT_ALIGNMENT)
        return value if isinstance(value, int) else DEFAULT_ALIGNMENT

    @property
    def tensor_data_bytes(self) -> int:
        return sum(tensor.nbytes for tensor in self.tensors)


class _Reader:
    """Walks the header of a memory-mapped file; every read is bounds-checked."""

    def __init__(self, buffer: mmap.mmap | bytes, path: Path) -> None:
        self._buffer = buffer
        self.size = len(buffer)
        self.path = path
        self.pos = 0

    def fail(self, detail: str) -> GGUFFormatError:
        return GGUFFormatError(f"{self.path.name} {detail}")

    def _truncated(self) -> GGUFFormatError:
        return self.fail("is truncated: its header ends early.")

    def skip(self, size: int) -> None:
        end = self.pos + size
        if end > self.size:
            raise self._truncated()
        self.pos = end

    def take(self, size: int) -> bytes:
        start = self.pos
        self.skip(size)
        return self._buffer[start : self.pos]

    def scalar(self, fmt: str) -> Any:
        start = self.pos
        self.skip(struct.calcsize(fmt))
        return struct.unpack_from(fmt, self._buffer, start)[0]

    def string(self) -> str:
        length = self.scalar("<Q")
        if length > MAX_STRING_BYTES:
            raise self.fail(f"has an implausible string length ({length}).")
        return self.take(length).decode("utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            return self.array()
        raise self.fail(f"has an unknown metadata type ({kind}).")

    def array(self) -> list[Any] | ArraySummary:
        item_type = self.scalar("<I")
        length = self.scalar("<Q")
        if item_type not in _SCALARS and item_type != _STRING:  # llama.cpp refuses arrays of arrays
            raise self.fail(f"has an unsupported metadata array type ({item_type}).")
        if length > MAX_ARRAY_ITEMS:
            raise self.fail(f"has an implausible array length ({length}).")
        if length > KEPT_ARRAY_ITEMS:
            self.skip_array(item_type, length)
            return ArraySummary(item_type, length)
        return [self.value(item_type) for _ in range(length)]

    def skip_array(self, item_type: int, length: int) -> None:
        if item_type == _STRING:
            self.skip_strings(length)
        else:
            self.skip(struct.calcsize(_SCALARS[item_type]) * length)

    def skip_strings(self, count: int) -> None:
        """The vocabulary: hundreds of thousands of strings, walked without copying them."""
        unpack, buffer, pos = _U64.unpack_from, self._buffer, self.pos
        try:  # a length running past the end makes the next unpack fail: no check needed per string
            for _ in range(count):
                pos += 8 + unpack(buffer, pos)[0]
        except (struct.error, OverflowError):
            raise self._truncated() from None
        if pos > self.size:
            raise self._truncated()
        self.pos = pos


def _check_version(reader: _Reader, version: int) -> None:
    if version in SUPPORTED_VERSIONS:
        return
    if version and not version & 0xFFFF:
        raise reader.fail("is a big-endian GGUF file, which is not supported.")
    raise reader.fail(f"uses GGUF version {version}, not supported.")


def _read_counts(reader: _Reader) -> tuple[int, int]:
    """The tensor and metadata counts, each small enough for the entries to fit in the file."""
    tensor_count, kv_count = reader.scalar("<Q"), reader.scalar("<Q")
    if kv_count > MAX_KV_COUNT:
        raise reader.fail(f"has an implausible metadata count ({kv_count}).")
    if tensor_count > MAX_TENSOR_COUNT:
        raise reader.fail(f"has an implausible tensor count ({tensor_count}).")
    room = reader.size - reader.pos
    if kv_count * _MIN_KV_BYTES + tensor_count * _MIN_TENSOR_INFO_BYTES > room:
        raise reader.fail(
            f"is truncated or damaged: its header lists {kv_count} metadata entries and "
            f"{tensor_count} tensors, more than the file could hold."
        )
    return tensor_count, kv_count


def _parse(reader: _Reader) -> GGUFHeader:
    if reader.take(4) != GGUF_MAGIC:
        raise reader.fail("is not a GGUF model file (wrong magic bytes).")
    version = reader.scalar("<I")
    _check_version(reader, version)
    tensor_count, kv_count = _read_counts(reader)
    header = GGUFHeader(version=version, tensor_count=tensor_count, file_size=reader.size)
    for _ in range(kv_count):
        key = reader.string()
        if key in header.metadata:
            raise reader.fail(f"is damaged: the metadata key {_label(key)} appears twice.")
        kind = reader.scalar("<I")
        header.metadata[key] = reader.value(kind)
        header.metadata_types[key] = kind
    return header


def _label(name: str) -> str:
    """A name from the file, quoted for a message: control characters escaped, length capped."""
    name = name if len(name) <= 80 else name[:80] + "…"
    return f"'{name}'" if name.isprintable() else ascii(name)


def _align(offset: int, alignment: int) -> int:
    return (offset + alignment - 1) // alignment * alignment


def _alignment(reader: _Reader, header: GGUFHeader) -> int:
    if ALIGNMENT_KEY not in header.metadata:
        return DEFAULT_ALIGNMENT
    if header.metadata_types[ALIGNMENT_KEY] != _UINT32:  # llama.cpp aborts on any other type
        raise reader.fail(f"is damaged: {ALIGNMENT_KEY} is not a uint32.")
    value = int(header.metadata[ALIGNMENT_KEY])
    if not 0 < value <= MAX_ALIGNMENT or value & (value - 1):
        raise reader.fail(f"is damaged: its data alignment ({value}) is not a sane power of two.")
    return value


def _is_norm_epsilon(key: str) -> bool:
    return key.endswith("_epsilon") and ".attention." in key


def _check_norm_epsilons(reader: _Reader, header: GGUFHeader) -> None:
    """A NaN, infinite, zero or negative norm epsilon passes llama.cpp's loader, then aborts it."""
    for key, value in header.metadata.items():
        if not _is_norm_epsilon(key):
            continue
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value) or value <= 0:
            shown = f"{value:g}" if isinstance(value, float) else repr(value)[:40]
            raise reader.fail(
                f"is damaged: its norm epsilon {_label(key)} is {shown}, not a positive number."
            )


def _tensor_error(reader: _Reader, name: str, detail: str) -> GGUFFormatError:
    return reader.fail(f"is damaged: tensor {_label(name)} {detail}.")


def _tensor_nbytes(reader: _Reader, name: str, shape: tuple[int, ...], type_id: int) -> int:
    """The size of a tensor's data, after checking its shape and type as llama.cpp does."""
    if any(dim == 0 or dim > _INT64_MAX for dim in shape):
        raise _tensor_error(reader, name, f"has an impossible shape {shape}")
    n_elements = math.prod(shape)
    if n_elements >= _INT64_MAX:
        raise _tensor_error(reader, name, f"has too many elements ({n_elements})")
    kind = ggml_type(type_id)
    if kind is None:
        raise reader.fail(
            f"uses an unknown tensor type ({type_id}) for tensor {_label(name)}: "
            "the file is damaged or needs a newer version of Cadre."
        )
    row = shape[0] if shape else 1
    if row % kind.block_size:
        detail = (
            f"of type {kind.name} has rows of {row} values, not whole blocks of {kind.block_size}"
        )
        raise _tensor_error(reader, name, detail)
    return kind.row_bytes(row) * (n_elements // row)


def _tensor_info(reader: _Reader, index: int) -> TensorInfo:
    length = reader.scalar("<Q")
    if length >= GGML_MAX_NAME:
        limit = GGML_MAX_NAME - 1
        raise reader.fail(
            f"is damaged: tensor #{index} has a {length}-byte name (at most {limit})."
        )
    name = reader.take(length).decode("utf-8", errors="replace")
    n_dims = reader.scalar("<I")
    if n_dims > GGML_MAX_DIMS:
        raise _tensor_error(reader, name, f"has {n_dims} dimensions (at most {GGML_MAX_DIMS})")
    shape: tuple[int, ...] = struct.unpack(f"<{n_dims}Q", reader.take(8 * n_dims))
    type_id = reader.scalar("<I")
    offset = reader.scalar("<Q")
    return TensorInfo(name, shape, type_id, offset, _tensor_nbytes(reader, name, shape, type_id))


def _read_tensor_table(reader: _Reader, count: int) -> list[TensorInfo]:
    tensors: list[TensorInfo] = []  # grows with what the file holds, not with what it claims
    seen: set[str] = set()
    for index in range(count):
        info = _tensor_info(reader, index)
        if info.name in seen:
            raise _tensor_error(reader, info.name, "appears twice")
        seen.add(info.name)
        tensors.append(info)
    return tensors


def _check_layout(reader: _Reader, header: GGUFHeader, alignment: int) -> None:
    """Each tensor's data must lie in the file, right after the previous tensor's (as llama.cpp wants)."""
    expected = 0
    for info in header.tensors:
        if info.offset % alignment:
            detail = (
                f"starts at offset {info.offset}, not a multiple of the alignment ({alignment})"
            )
            raise _tensor_error(reader, info.name, detail)
        if header.data_offset + info.offset + info.nbytes > header.file_size:
            raise reader.fail(
                f"is incomplete: the data of tensor {_label(info.name)} lies outside the file "
                "(the file is truncated or damaged)."
            )
        if info.offset != expected:
            detail = f"starts at offset {info.offset} instead of {expected} (tensors overlap or have gaps)"
            raise _tensor_error(reader, info.name, detail)
        expected += _align(info.nbytes, alignment)


def _validate(reader: _Reader) -> GGUFHeader:
    header = _parse(reader)
    alignment = _alignment(reader, header)
    _check_norm_epsilons(reader, header)
    header.tensors = _read_tensor_table(reader, header.tensor_count)
    header.data_offset = _align(reader.pos, alignment)
    _check_layout(reader, header, alignment)
    return header


def _open(path: Path, parse: Callable[[_Reader], _T]) -> _T:
    """Run ``parse`` over the memory-mapped file; any failure becomes a :class:`GGUFFormatError`."""
    try:
        with path.open("rb") as handle:
            if os.fstat(handle.fileno()).st_size < _HEADER_BYTES:
                raise GGUFFormatError(f"{path.name} is not a GGUF model file (it is too small).")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                return parse(_Reader(buffer, path))
    except OSError as exc:
        raise GGUFFormatError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    except (struct.error, OverflowError, ValueError) as exc:  # ValueError covers UnicodeDecodeError
        raise GGUFFormatError(f"{path.name} is not a valid GGUF model file ({exc}).") from exc


def read_gguf_header(path: Path) -> GGUFHeader:
    """Parse the header and metadata of ``path``; raise :class:`GGUFFormatError` if it is not GGUF.

    The tensor table is not read (``tensors`` stays empty): use :func:`validate_gguf` for that.
    """
    return _open(path, _parse)


def validate_gguf(path: Path) -> GGUFHeader:
    """Read the header and tensor table of ``path`` and check them as llama.cpp will before loading.

    Raises :class:`GGUFFormatError`, naming the file and the tensor at fault, for anything llama.cpp
    would refuse or crash on; no tensor data is read.
    """
    return _open(path, _validate)
