"""The resource monitor's core: samples of this machine, generation speed, history, loaded models."""

from __future__ import annotations

import subprocess
import sys
import time
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psutil
import pytest

from app.core.hardware import nvidia_gpus
from app.core.monitor import (
    EngineModels,
    GenerationMeter,
    History,
    LoadedModel,
    ResourceSample,
    ResourceSampler,
    loaded_model,
)
from app.core.service import CadreService
from app.core.tasks import run_job

MB = 1_000_000


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A process to stand in for the engine worker."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    yield process
    process.kill()
    process.wait()


def test_a_sample_of_this_process_is_sane() -> None:
    sampler = ResourceSampler(gpu=False)
    sample = sampler.sample(None)
    own = psutil.Process().memory_info().rss
    assert 0 <= sample.cpu_percent <= 100
    assert 0 < sample.ram_used <= sample.ram_total
    assert sample.ram_total == psutil.virtual_memory().total
    assert sample.worker_rss is None
    assert abs(sample.cadre_rss - own) < 50 * MB
    assert sample.tokens_per_s is None
    assert sample.time <= time.monotonic()


def test_cpu_percent_counts_the_time_since_the_previous_sample() -> None:
    sampler = ResourceSampler(gpu=False)
    sampler.sample(None)
    spin_until = time.perf_counter() + 0.3
    while time.perf_counter() < spin_until:
        pass
    assert sampler.sample(None).cpu_percent > 10


def test_cadre_memory_includes_the_worker_process(child: subprocess.Popen[bytes]) -> None:
    sampler = ResourceSampler(gpu=False)
    sample = sampler.sample(child.pid)
    worker = psutil.Process(child.pid).memory_info().rss
    assert sample.worker_rss is not None
    assert abs(sample.worker_rss - worker) < 5 * MB
    assert abs(sample.cadre_rss - sample.worker_rss - psutil.Process().memory_info().rss) < 50 * MB


def test_a_vanished_worker_is_no_error(child: subprocess.Popen[bytes]) -> None:
    sampler = ResourceSampler(gpu=False)
    assert sampler.sample(child.pid).worker_rss is not None
    child.kill()
    child.wait()  # reaped: the pid is gone
    sample = sampler.sample(child.pid)
    assert sample.worker_rss is None
    assert sample.cadre_rss > 0
    assert sampler.sample(None).worker_rss is None


def _sample(value: float) -> ResourceSample:
    size = int(value)
    return ResourceSample(value, value, size, 100, size, None, None, None, None, value)


def test_history_keeps_the_last_samples_and_marks_gaps() -> None:
    history = History(capacity=3)
    history.add_gap()  # nothing before it: no gap to mark
    assert list(history.values("cpu")) == []
    for value in range(1, 6):
        history.add(_sample(value))
    assert list(history.values("cpu")) == [3, 4, 5]
    assert list(history.values("gpu")) == [None, None, None]
    history.add_gap()
    assert list(history.values("ram")) == [4, 5, None]
    assert history.peak("speed") == 5
    assert history.peak("vram") == 0
    assert history.latest is not None and history.latest.cpu_percent == 5


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_meter_reports_tokens_per_second_while_generating() -> None:
    clock = FakeClock()
    meter = GenerationMeter(window_s=2.0, clock=clock)
    assert meter.tokens_per_s() is None
    meter.tokens(50)  # idle: ignored
    meter.started()
    assert meter.tokens_per_s() is None  # no tokens yet: no speed
    for _ in range(20):  # 5 tokens every 0.25 s: 20 tokens/s
        clock.now += 0.25
        meter.tokens(5)
    assert meter.tokens_per_s() == pytest.approx(20)
    clock.now += 1.0  # a stall: the speed falls
    assert meter.tokens_per_s() == pytest.approx(10)
    clock.now += 5.0
    assert meter.tokens_per_s() == 0
    meter.finished()
    assert meter.tokens_per_s() is None
    assert meter.last_rate == pytest.approx(20)


def test_meter_estimates_tokens_from_text() -> None:
    clock = FakeClock()
    meter = GenerationMeter(chars_per_token=4.0, clock=clock)
    meter.started()
    meter.text("abcd" * 3)
    clock.now += 0.5
    meter.text("abcd" * 6)  # 6 tokens in 0.5 s
    assert meter.tokens_per_s() == pytest.approx(12)


def test_meter_speed_is_over_the_window_only() -> None:
    clock = FakeClock()
    meter = GenerationMeter(window_s=2.0, clock=clock)
    meter.started()
    for _ in range(10):  # 100 tokens/s for a second ...
        clock.now += 0.1
        meter.tokens(10)
    for _ in range(30):  # ... then 10 tokens/s for three
        clock.now += 0.1
        meter.tokens(1)
    assert meter.tokens_per_s() == pytest.approx(10)


@dataclass
class _Memory:
    used: int
    total: int


class _FakeNvml(types.ModuleType):
    """pynvml on a machine with two NVIDIA GPUs, the second without utilisation figures (MIG)."""

    class NVMLError(Exception):
        pass

    def __init__(self) -> None:
        super().__init__("pynvml")
        self.inits = 0
        self.shutdowns = 0

    def nvmlInit(self) -> None:
        self.inits += 1

    def nvmlShutdown(self) -> None:
        self.shutdowns += 1

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        return index

    def nvmlDeviceGetMemoryInfo(self, handle: int) -> _Memory:
        return _Memory(used=(handle + 1) * 1000, total=8000)

    def nvmlDeviceGetUtilizationRates(self, handle: int) -> Any:
        if handle == 1:
            raise self.NVMLError("Not Supported")
        return types.SimpleNamespace(gpu=37, memory=5)


def test_gpu_figures_come_from_nvml_opened_once(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeNvml()
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    sampler = ResourceSampler(gpu=True)
    for _ in range(3):
        sample = sampler.sample(None)
        assert (sample.gpu_percent, sample.vram_used, sample.vram_total) == (37, 3000, 16000)
    assert fake.inits == 1
    sampler.close()
    assert fake.shutdowns == 1


def test_without_nvidia_the_gpu_fields_stay_none(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = _FakeNvml()

    def no_driver() -> None:
        fake.inits += 1
        raise fake.NVMLError("NVML Shared Library Not Found")

    monkeypatch.setattr(fake, "nvmlInit", no_driver)
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    sampler = ResourceSampler(gpu=True)
    for _ in range(3):
        sample = sampler.sample(None)
        assert (sample.gpu_percent, sample.vram_used, sample.vram_total) == (None, None, None)
    assert fake.inits == 1  # not tried again every second


def test_without_nvml_installed_the_gpu_fields_are_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import pynvml raises ImportError
    assert ResourceSampler(gpu=True).sample(None).vram_total is None


def test_this_machines_gpu_is_seen_exactly_when_nvml_finds_one() -> None:
    sampler = ResourceSampler(gpu=True)
    sample = sampler.sample(None)
    sampler.close()
    gpus = nvidia_gpus()
    assert (sample.vram_total is not None) == bool(gpus)
    if gpus:
        assert sample.vram_total == sum(gpu.total_bytes for gpu in gpus)


def test_loaded_model_without_a_model_is_none() -> None:
    assert loaded_model(None, "Starter") is None


def test_engine_models_name_the_loaded_model(tiny_specialist: str, service: CadreService) -> None:
    models = EngineModels(service.engine, service.catalog)
    assert models() == ()
    info = run_job(service.load_specialist(tiny_specialist))
    (model,) = models()
    assert model == LoadedModel(
        "Tiny", info.path, info.footprint_ram_bytes, info.footprint_vram_bytes
    )
    assert models() == (model,)
    sample = ResourceSampler(gpu=False).sample(service.engine.pid)
    assert sample.worker_rss is not None and sample.worker_rss > 0
    service.engine.close()
    assert models() == ()
