"""Will this specialist fit? Memory needed (weights + KV cache + buffers) against free memory now.

Before a model has run, the need is an estimate: the file's size (or the manifest's), the KV cache at
the specialist's context size from the architecture (GGUF header, or the manifest's facts), and a
fixed allowance for llama.cpp's compute buffers. After its first load, the footprint measured then
is used instead. The verdict compares that with live free RAM (psutil) and free VRAM (NVML).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

import psutil

from app.core.gguf_header import GGUFFormatError, GGUFHeader, read_gguf_header
from app.core.hardware import nvidia_gpus
from app.core.storage.model_files import Footprint
from app.core.units import human_bytes

if TYPE_CHECKING:
    from app.core.catalog import CatalogEntry

MIN_BUFFER_BYTES = 100 * 1000 * 1000  # compute buffers and runtime at n_batch 512: at least this,
BUFFER_SHARE = (
    0.10  # or this share of the weights (the 270M starter measured ~66 MB over its weights)
)
GPU_RESERVE_BYTES = 512 * 1024 * 1024  # VRAM left for the desktop and the driver
COMFORT = 0.8  # needing more than this share of what is free is "tight"


class Verdict(Enum):
    FITS = "fits"
    TIGHT = "tight"
    WONT_FIT = "won't fit"


@dataclass(frozen=True)
class MemoryNeed:
    weights_bytes: int
    kv_bytes: int
    buffers_bytes: int
    basis: str  # "estimate" or "measured"
    measured: Footprint | None = None

    @property
    def total_bytes(self) -> int:
        if self.measured is not None:
            return self.measured.ram_bytes + self.measured.vram_bytes
        return self.weights_bytes + self.kv_bytes + self.buffers_bytes


@dataclass(frozen=True)
class MemorySnapshot:
    available_ram: int
    free_vram: int | None  # None: no NVIDIA GPU (Apple unified memory counts as RAM)
    gpu_name: str = ""

    @classmethod
    def now(cls) -> MemorySnapshot:
        available = int(psutil.virtual_memory().available)
        gpus = nvidia_gpus()
        if not gpus:
            return cls(available, None)
        gpu = max(gpus, key=lambda g: g.free_bytes)
        return cls(available, gpu.free_bytes, gpu.name)


@dataclass(frozen=True)
class FitAdvice:
    verdict: Verdict
    need: MemoryNeed
    ram_bytes: int  # what must fit in RAM
    vram_bytes: int  # what must fit in VRAM (0 on the CPU)
    memory: MemorySnapshot
    summary: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict.value,
            "basis": self.need.basis,
            "ram_bytes": self.ram_bytes,
            "vram_bytes": self.vram_bytes,
            "weights_bytes": self.need.weights_bytes,
            "kv_cache_bytes": self.need.kv_bytes,
            "available_ram_bytes": self.memory.available_ram,
            "free_vram_bytes": self.memory.free_vram,
            "summary": self.summary,
        }


def kv_bytes_per_token(layers: int, kv_heads: int, head_dim: int) -> int:
    """f16 K and V, for every layer."""
    return 2 * 2 * layers * kv_heads * head_dim


def header_kv_bytes_per_token(header: GGUFHeader) -> int:
    heads = int(header.arch_value("attention.head_count", 0) or 0)
    kv_heads = header.arch_value("attention.head_count_kv", heads)
    if isinstance(kv_heads, list):  # per-layer counts in some architectures
        kv_heads = max(kv_heads, default=heads)
    embd = int(header.arch_value("embedding_length", 0) or 0)
    head_dim = int(header.arch_value("attention.key_length", embd // heads if heads else 0) or 0)
    return kv_bytes_per_token(header.block_count, int(kv_heads or heads), head_dim)


def estimate_need(entry: CatalogEntry, measured: Footprint | None = None) -> MemoryNeed:
    manifest = entry.manifest
    model = manifest.model
    n_ctx = manifest.context_size
    header = _header_if_installed(entry)
    if header is not None:
        weights = entry.model_path.stat().st_size
        per_token = header_kv_bytes_per_token(header)
    else:
        weights = model.size_bytes
        per_token = kv_bytes_per_token(model.layers, model.kv_heads, model.head_dim)
        if not per_token:  # no facts at all: a cache of about a tenth of the weights per 4k tokens
            per_token = weights // 10 // 4096
    buffers = max(MIN_BUFFER_BYTES, int(weights * BUFFER_SHARE))
    if measured is not None and measured.n_ctx == n_ctx:
        return MemoryNeed(weights, per_token * n_ctx, buffers, "measured", measured)
    return MemoryNeed(weights, per_token * n_ctx, buffers, "estimate")


def trained_context(entry: CatalogEntry) -> int | None:
    """The context length the entry's model was trained on, as its GGUF header says; None while
    the file is not on disk, or when it cannot be read or does not say. Reads the metadata (about
    40 ms for the starter's 262k-token vocabulary): not for a GUI thread."""
    header = _header_if_installed(entry)
    return (header.context_length or None) if header is not None else None


def _header_if_installed(entry: CatalogEntry) -> GGUFHeader | None:
    if not entry.model_path.is_file():
        return None
    try:
        return read_gguf_header(entry.model_path)
    except GGUFFormatError:
        return None


def _verdict(need: int, available: int) -> Verdict:
    if need <= available * COMFORT:
        return Verdict.FITS
    return Verdict.TIGHT if need <= available else Verdict.WONT_FIT


def _placement(need: MemoryNeed, memory: MemorySnapshot) -> tuple[int, int, str]:
    """(RAM bytes, VRAM bytes, where) for the plan the engine would take."""
    if need.measured is not None:
        measured = need.measured
        where = f"in RAM and on {memory.gpu_name or 'the GPU'}" if measured.vram_bytes else "in RAM"
        return measured.ram_bytes, measured.vram_bytes, where
    if memory.free_vram is None:
        return need.total_bytes, 0, "in RAM"
    usable = max(0, memory.free_vram - GPU_RESERVE_BYTES)
    if need.total_bytes <= usable:
        return 0, need.total_bytes, f"on {memory.gpu_name}"
    return need.total_bytes - usable, usable, f"split between RAM and {memory.gpu_name}"


def advise(need: MemoryNeed, memory: MemorySnapshot) -> FitAdvice:
    ram, vram, where = _placement(need, memory)
    verdict = _verdict(ram, memory.available_ram)
    if vram and memory.free_vram is not None:
        gpu_verdict = _verdict(vram, memory.free_vram)
        verdict = max(verdict, gpu_verdict, key=list(Verdict).index)
    parts = [f"needs ~{human_bytes(need.total_bytes)} {where}"]
    if ram:
        parts.append(f"{human_bytes(memory.available_ram)} RAM free")
    if vram and memory.free_vram is not None:
        parts.append(f"{human_bytes(memory.free_vram)} VRAM free")
    qualifier = "measured" if need.basis == "measured" else "estimated"
    summary = f"{verdict.value}: {qualifier}, " + "; ".join(parts)
    return FitAdvice(verdict, need, ram, vram, memory, summary)
