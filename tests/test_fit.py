"""Fit advice: what a specialist needs against what is free, estimated and then measured."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.fit import (
    MemoryNeed,
    MemorySnapshot,
    Verdict,
    advise,
    estimate_need,
    header_kv_bytes_per_token,
    trained_context,
)
from app.core.gguf_header import read_gguf_header
from app.core.service import CadreService
from app.core.storage.model_files import Footprint

GB = 1000**3


def test_estimate_before_download_uses_the_manifests_architecture(service: CadreService) -> None:
    entry = service.catalog.entry("general")  # Qwen3-4B: 36 layers x 8 KV heads x 128, 8k context
    need = estimate_need(entry)
    assert need.basis == "estimate"
    assert need.weights_bytes == entry.manifest.model.size_bytes
    assert need.kv_bytes == 2 * 2 * 36 * 8 * 128 * 8192
    assert 3.5 * GB < need.total_bytes < 4.5 * GB


def test_installed_models_are_estimated_from_their_header(
    tiny_specialist: str, tiny_model: Path, service: CadreService
) -> None:
    entry = service.catalog.entry(tiny_specialist)
    need = estimate_need(entry)
    per_token = header_kv_bytes_per_token(read_gguf_header(tiny_model))
    assert per_token > 0
    assert need.kv_bytes == per_token * entry.manifest.context_size
    assert need.weights_bytes == tiny_model.stat().st_size


def test_the_trained_context_is_read_once_the_model_is_on_disk(
    tiny_specialist: str, service: CadreService
) -> None:
    assert trained_context(service.catalog.entry(tiny_specialist)) == 1024  # tiny.gguf's header
    assert trained_context(service.catalog.entry("general")) is None  # not downloaded


@pytest.mark.parametrize(
    ("available", "verdict"),
    [(10 * GB, Verdict.FITS), (int(4.5 * GB), Verdict.TIGHT), (3 * GB, Verdict.WONT_FIT)],
)
def test_verdicts_on_a_cpu_only_machine(available: int, verdict: Verdict) -> None:
    need = MemoryNeed(
        weights_bytes=3 * GB, kv_bytes=GB // 2, buffers_bytes=GB // 2, basis="estimate"
    )
    advice = advise(need, MemorySnapshot(available_ram=available, free_vram=None))
    assert advice.verdict is verdict
    assert advice.ram_bytes == 4 * GB and advice.vram_bytes == 0
    assert advice.summary.startswith(verdict.value)
    assert "4.0 GB" in advice.summary


def test_a_gpu_with_room_takes_the_whole_model() -> None:
    need = MemoryNeed(3 * GB, GB // 2, GB // 2, "estimate")
    advice = advise(need, MemorySnapshot(available_ram=2 * GB, free_vram=12 * GB, gpu_name="RTX"))
    assert advice.verdict is Verdict.FITS
    assert (advice.ram_bytes, advice.vram_bytes) == (0, 4 * GB)
    assert "on RTX" in advice.summary and "VRAM free" in advice.summary


def test_a_small_gpu_splits_the_model_and_ram_takes_the_rest() -> None:
    need = MemoryNeed(3 * GB, GB // 2, GB // 2, "estimate")
    memory = MemorySnapshot(available_ram=16 * GB, free_vram=2 * GB, gpu_name="MX")
    advice = advise(need, memory)
    assert advice.vram_bytes + advice.ram_bytes == 4 * GB
    assert 0 < advice.vram_bytes < 2 * GB
    assert advice.verdict is Verdict.FITS  # the GPU keeps its reserve; RAM has room for the rest
    assert "split between RAM and MX" in advice.summary
    short_of_ram = MemorySnapshot(available_ram=2 * GB, free_vram=2 * GB, gpu_name="MX")
    assert advise(need, short_of_ram).verdict is Verdict.WONT_FIT


def test_a_measured_footprint_replaces_the_estimate(
    tiny_specialist: str, service: CadreService
) -> None:
    entry = service.catalog.entry(tiny_specialist)
    footprint = Footprint(ram_bytes=123_000_000, vram_bytes=0, n_ctx=512, gpu_layers=0)
    service.model_files.record_footprint(entry.model_path, "local", footprint)
    advice = service.fit_advice(entry, MemorySnapshot(available_ram=8 * GB, free_vram=None))
    assert advice.need.basis == "measured"
    assert advice.ram_bytes == 123_000_000
    assert advice.as_dict()["basis"] == "measured"


def test_a_footprint_at_another_context_size_is_not_trusted(
    tiny_specialist: str, service: CadreService
) -> None:
    entry = service.catalog.entry(tiny_specialist)
    service.model_files.record_footprint(entry.model_path, "local", Footprint(1, 0, 99_999, 0))
    assert service.fit_advice(entry).need.basis == "estimate"


def test_live_memory_is_read_from_the_machine() -> None:
    memory = MemorySnapshot.now()
    assert memory.available_ram > 0
    assert memory.free_vram is None or memory.free_vram >= 0
