"""What this computer has: CPU cores and instruction sets, memory, and an NVIDIA GPU if any.

Everything here is cheap and import-light; NVML (nvidia-ml-py) is imported only when asked about GPUs.
"""

from __future__ import annotations

import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import psutil

_INTERESTING_FLAGS = (
    "sse3",
    "ssse3",
    "sse4_1",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "avx_vnni",
    "amx_tile",
    "neon",
    "asimd",
    "sve",
    "i8mm",
    "dotprod",
)


@dataclass(frozen=True)
class CpuInfo:
    name: str
    physical_cores: int
    logical_cores: int
    instruction_sets: tuple[str, ...]


@dataclass(frozen=True)
class GpuInfo:
    name: str
    total_bytes: int
    free_bytes: int
    driver: str


def physical_cores() -> int:
    """Physical cores: llama.cpp runs fastest with one thread per physical core."""
    return psutil.cpu_count(logical=False) or psutil.cpu_count(logical=True) or 1


def _linux_cpu() -> tuple[str, set[str]]:
    text = Path("/proc/cpuinfo").read_text(errors="replace")
    name = re.search(r"^(?:model name|Hardware|Model)\s*:\s*(.+)$", text, re.MULTILINE)
    flags = re.search(r"^(?:flags|Features)\s*:\s*(.+)$", text, re.MULTILINE)
    return (name.group(1).strip() if name else platform.processor()), set(
        flags.group(1).split() if flags else ()
    )


def _macos_cpu() -> tuple[str, set[str]]:
    def sysctl(key: str) -> str:
        result = subprocess.run(["sysctl", "-n", key], capture_output=True, text=True, check=False)
        return result.stdout.strip()

    name = sysctl("machdep.cpu.brand_string")
    flags = sysctl("machdep.cpu.features") + " " + sysctl("machdep.cpu.leaf7_features")
    found = {flag.lower().replace(".", "_") for flag in flags.split()}
    if platform.machine() == "arm64":
        found |= {"neon", "asimd", "dotprod"}
    return name, found


@lru_cache(maxsize=1)
def cpu_info() -> CpuInfo:
    try:
        if sys.platform.startswith("linux"):
            name, flags = _linux_cpu()
        elif sys.platform == "darwin":
            name, flags = _macos_cpu()
        else:
            name, flags = platform.processor(), set()
    except OSError:
        name, flags = platform.processor(), set()
    sets = tuple(flag for flag in _INTERESTING_FLAGS if flag in flags)
    return CpuInfo(
        name=name or platform.machine(),
        physical_cores=physical_cores(),
        logical_cores=psutil.cpu_count(logical=True) or 1,
        instruction_sets=sets,
    )


def open_nvml() -> Any | None:
    """The ``pynvml`` module with NVML initialised (the caller shuts it down), or ``None`` when
    there is no nvidia-ml-py or no NVIDIA driver."""
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        return None
    return pynvml


def nvidia_gpus() -> list[GpuInfo]:
    """NVIDIA GPUs through NVML; an empty list when there is no driver, no GPU or no nvidia-ml-py."""
    pynvml = open_nvml()
    if pynvml is None:
        return []
    try:
        driver = _as_text(pynvml.nvmlSystemGetDriverVersion())
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            name = _as_text(pynvml.nvmlDeviceGetName(handle))
            gpus.append(GpuInfo(name, int(memory.total), int(memory.free), driver))
        return gpus
    except pynvml.NVMLError:
        return []
    finally:
        pynvml.nvmlShutdown()


def process_vram_bytes(pid: int) -> int:
    """VRAM that process ``pid`` holds on NVIDIA GPUs (0 when unknown)."""
    pynvml = open_nvml()
    if pynvml is None:
        return 0
    try:
        used = 0
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            for process in pynvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if process.pid == pid and process.usedGpuMemory:
                    used += int(process.usedGpuMemory)
        return used
    except pynvml.NVMLError:
        return 0
    finally:
        pynvml.nvmlShutdown()


def _as_text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def estimate_gpu_layers(
    model_bytes: int,
    block_count: int,
    kv_cache_bytes: int,
    free_vram: int,
    reserve: int = 512 << 20,
) -> int:
    """How many of a model's layers fit in ``free_vram``; ``block_count + 1`` means all of it.

    Weights are assumed spread evenly over the blocks plus one for the output layer; the KV cache and a
    reserve for llama.cpp's compute buffers come off the top.
    """
    if block_count <= 0 or model_bytes <= 0:
        return 0
    budget = free_vram - reserve - kv_cache_bytes
    per_layer = model_bytes / (block_count + 1)
    if budget <= 0:
        return 0
    return max(0, min(block_count + 1, int(budget // per_layer)))
