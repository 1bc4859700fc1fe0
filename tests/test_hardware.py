from pathlib import Path

from app.core.engine.llama_backend import kv_cache_bytes
from app.core.gguf_header import read_gguf_header
from app.core.hardware import cpu_info, estimate_gpu_layers, nvidia_gpus, physical_cores

GIB = 1 << 30


def test_cpu_info_names_cores_and_instruction_sets() -> None:
    info = cpu_info()
    assert 1 <= info.physical_cores <= info.logical_cores
    assert info.physical_cores == physical_cores()
    assert info.name


def test_no_gpu_means_an_empty_list_not_an_error() -> None:
    assert isinstance(nvidia_gpus(), list)


def test_whole_model_goes_to_a_roomy_gpu() -> None:
    assert estimate_gpu_layers(2 * GIB, 36, GIB // 2, free_vram=16 * GIB) == 37


def test_part_of_the_model_goes_to_a_small_gpu() -> None:
    layers = estimate_gpu_layers(4 * GIB, 31, GIB // 4, free_vram=3 * GIB)
    assert 0 < layers < 32
    per_layer = 4 * GIB / 32
    assert layers * per_layer <= 3 * GIB - GIB // 4 - (512 << 20)


def test_nothing_goes_to_a_full_gpu() -> None:
    assert estimate_gpu_layers(4 * GIB, 31, GIB, free_vram=GIB) == 0
    assert estimate_gpu_layers(0, 0, 0, free_vram=8 * GIB) == 0


def test_kv_cache_estimate_uses_the_model_shape(tiny_model: Path) -> None:
    header = read_gguf_header(tiny_model)
    # 2 layers x (K and V) x 2 bytes x n_ctx x 4 kv heads x 16 head dim
    assert kv_cache_bytes(header, 512) == 2 * 2 * 2 * 512 * 4 * 16
