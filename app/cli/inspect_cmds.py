"""``cadre specialists``, ``cadre doctor`` and ``cadre setup``: look at the catalog and the machine."""

from __future__ import annotations

import argparse
import json
from typing import Any

from app.cli.output import human_bytes, note
from app.core.doctor import DoctorReport, gather_report
from app.core.embedded import prepare_model
from app.core.fit import MemorySnapshot
from app.core.service import CadreService, SpecialistStatus
from app.core.tasks import run_job


def status_as_dict(status: SpecialistStatus) -> dict[str, Any]:
    entry = status.entry
    manifest, model = entry.manifest, entry.manifest.model
    return {
        "id": manifest.id,
        "name": manifest.name,
        "domain": manifest.domain,
        "description": manifest.description,
        "state": status.state,
        "user_added": status.user_added,
        "customised": status.customised,
        "license": manifest.license,
        "context_size": manifest.context_size,
        "model": {
            "source": model.source,
            "repo": model.repo,
            "package": model.package,
            "file": model.file,
            "revision": model.revision if model.source == "huggingface" else "",
            "parameters": model.parameters,
            "quantization": model.quantization,
            "size_bytes": model.size_bytes,
            "path": str(entry.model_path),
        },
        "fit": status.fit.as_dict(),
    }


def run_specialists(service: CadreService, args: argparse.Namespace) -> int:
    rows = service.overview()
    if args.json:
        print(json.dumps([status_as_dict(status) for status in rows], indent=2))
        return 0
    print(f"{'ID':<10} {'DOMAIN':<8} {'STATE':<17} {'SIZE':>9}  {'FIT':<10} MODEL")
    for status in rows:
        manifest, model = status.entry.manifest, status.entry.manifest.model
        source = model.repo or model.package or model.path
        size = human_bytes(model.size_bytes) if model.size_bytes else "?"
        print(
            f"{manifest.id:<10} {manifest.domain:<8} {status.state:<17} {size:>9}  "
            f"{status.fit.verdict.value:<10} {model.parameters} {model.quantization} ({source})"
        )
    if rows:
        memory = rows[0].fit.memory
        print(f"\nMemory now: {human_bytes(memory.available_ram)} RAM free" + _vram_note(memory))
    return 0


def _vram_note(memory: MemorySnapshot) -> str:
    if memory.free_vram is None:
        return "."
    return f", {human_bytes(memory.free_vram)} free on {memory.gpu_name}."


def _format_report(report: DoctorReport) -> list[str]:
    cpu = report.cpu
    lines = [
        f"Cadre {report.cadre} on Python {report.python}, {report.os}",
        f"CPU      {cpu.name}",
        f"         {cpu.physical_cores} physical cores, {cpu.logical_cores} logical",
        f"         instruction sets: {' '.join(cpu.instruction_sets) or 'unknown'}",
        f"RAM      {human_bytes(report.ram_available_bytes)} free of "
        f"{human_bytes(report.ram_total_bytes)}",
    ]
    for gpu in report.gpus or []:
        lines.append(
            f"GPU      {gpu.name}: {human_bytes(gpu.free_bytes)} free of "
            f"{human_bytes(gpu.total_bytes)} (driver {gpu.driver})"
        )
    if not report.gpus:
        lines.append("GPU      none found (NVIDIA via NVML)")
    offload = {True: "yes", False: "no (CPU-only build)", None: "unknown"}[report.llama_gpu_offload]
    lines += [f"llama.cpp GPU offload: {offload}", f"llama.cpp: {report.llama_system_info}", ""]
    lines += [f"{name:<26} {version}" for name, version in report.versions.items()]
    lines += [""] + [f"{name:<9} {path}" for name, path in report.paths.items()]
    return lines


def run_doctor(service: CadreService, args: argparse.Namespace) -> int:
    report = gather_report()
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print("\n".join(_format_report(report)))
    return 0


def run_setup(service: CadreService, args: argparse.Namespace) -> int:
    """Make the embedded default models ready on disk (used by ``make run``)."""
    for entry in service.catalog.ready():
        path = run_job(prepare_model(entry), lambda progress: note(progress.message))
        note(f"{entry.manifest.id}: {path}")
    note("Preparing the router (encoding the specialists' example requests)…")
    run_job(service.routing.warm_up())
    note("Router ready.")
    return 0
