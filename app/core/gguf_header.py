"""Read a GGUF file's header and metadata in pure Python, without loading the model.

Used to learn a model's architecture, layer count, context length and chat template before handing
the file to llama.cpp, and to reject files that are not GGUF with a clear message instead of a crash.
Large arrays (the tokenizer's vocabulary) are skipped, not kept: only their length is recorded.
"""

from __future__ import annotations

import mmap
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import CadreError

GGUF_MAGIC = b"GGUF"
SUPPORTED_VERSIONS = (2, 3)
MAX_STRING_BYTES = 16 * 1024 * 1024
MAX_KV_COUNT = 1_000_000
MAX_ARRAY_ITEMS = 50_000_000
KEPT_ARRAY_ITEMS = 64

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
_STRING, _ARRAY = 8, 9
_U64 = struct.Struct("<Q")


class GGUFFormatError(CadreError):
    """The file is not a valid GGUF model (wrong magic, truncated, absurd sizes)."""


@dataclass(frozen=True)
class ArraySummary:
    """A metadata array too long to keep: its element type and length."""

    item_type: int
    length: int


@dataclass
class GGUFHeader:
    version: int
    tensor_count: int
    metadata: dict[str, Any] = field(default_factory=dict)

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


class _Reader:
    """Walks the header of a memory-mapped file; every read is bounds-checked."""

    def __init__(self, buffer: mmap.mmap | bytes, path: Path) -> None:
        self._buffer = buffer
        self._path = path
        self.pos = 0

    def _truncated(self) -> GGUFFormatError:
        return GGUFFormatError(f"{self._path.name} is truncated: its header ends early.")

    def take(self, size: int) -> bytes:
        end = self.pos + size
        if end > len(self._buffer):
            raise self._truncated()
        data = self._buffer[self.pos : end]
        self.pos = end
        return bytes(data)

    def scalar(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.scalar("<Q")
        if length > MAX_STRING_BYTES:
            raise GGUFFormatError(f"{self._path.name} has an implausible string length ({length}).")
        return self.take(length).decode("utf-8", errors="replace")

    def value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self.scalar(_SCALARS[kind])
        if kind == _STRING:
            return self.string()
        if kind == _ARRAY:
            return self.array()
        raise GGUFFormatError(f"{self._path.name} has an unknown metadata type ({kind}).")

    def array(self) -> list[Any] | ArraySummary:
        item_type = self.scalar("<I")
        length = self.scalar("<Q")
        if length > MAX_ARRAY_ITEMS:
            raise GGUFFormatError(f"{self._path.name} has an implausible array length ({length}).")
        if length > KEPT_ARRAY_ITEMS:
            self.skip_array(item_type, length)
            return ArraySummary(item_type, length)
        return [self.value(item_type) for _ in range(length)]

    def skip_array(self, item_type: int, length: int) -> None:
        if item_type in _SCALARS:
            self.take(struct.calcsize(_SCALARS[item_type]) * length)
        elif item_type == _STRING:
            self.skip_strings(length)
        else:
            for _ in range(length):
                self.value(item_type)

    def skip_strings(self, count: int) -> None:
        """The vocabulary: hundreds of thousands of strings, walked without copying them."""
        unpack, pos, size = _U64.unpack_from, self.pos, len(self._buffer)
        for _ in range(count):
            if pos + 8 > size:
                raise self._truncated()
            pos += 8 + unpack(self._buffer, pos)[0]
        if pos > size:
            raise self._truncated()
        self.pos = pos


def _parse(reader: _Reader, path: Path) -> GGUFHeader:
    if reader.take(4) != GGUF_MAGIC:
        raise GGUFFormatError(f"{path.name} is not a GGUF model file (wrong magic bytes).")
    version = reader.scalar("<I")
    if version not in SUPPORTED_VERSIONS:
        raise GGUFFormatError(f"{path.name} uses GGUF version {version}, not supported.")
    tensor_count = reader.scalar("<Q")
    kv_count = reader.scalar("<Q")
    if kv_count > MAX_KV_COUNT:
        raise GGUFFormatError(f"{path.name} has an implausible metadata count ({kv_count}).")
    header = GGUFHeader(version=version, tensor_count=tensor_count)
    for _ in range(kv_count):
        key = reader.string()
        header.metadata[key] = reader.value(reader.scalar("<I"))
    return header


def read_gguf_header(path: Path) -> GGUFHeader:
    """Parse the header and metadata of ``path``; raise :class:`GGUFFormatError` if it is not GGUF."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            if size < 24:
                raise GGUFFormatError(f"{path.name} is not a GGUF model file (it is too small).")
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer:
                header = _parse(_Reader(buffer, path), path)
    except OSError as exc:
        raise GGUFFormatError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    return header
