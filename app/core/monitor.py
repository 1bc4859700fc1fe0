"""Live resource figures for the monitor: CPU, memory, NVIDIA GPU, generation speed, loaded models.

Everything here is cheap enough to call once a second on the GUI thread: a sample reads a few
``/proc`` files (or the platform's equivalents) and, with an NVIDIA GPU, asks NVML two questions. NVML
is opened once, on the first sample, and never retried after it fails (no driver, no GPU). Nothing
here talks to the engine worker or takes its lock: the worker is only looked at from outside.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import psutil

from app.core.hardware import open_nvml

if TYPE_CHECKING:
    from app.core.catalog import Catalog
    from app.core.engine.client import EngineClient
    from app.core.engine.protocol import ModelLoaded

Clock = Callable[[], float]


@dataclass(frozen=True)
class ResourceSample:
    time: float  # monotonic seconds
    cpu_percent: float  # the whole system, all cores, since the previous sample
    ram_used: int  # bytes the system is using (total minus available)
    ram_total: int
    cadre_rss: int  # resident bytes of this process plus the engine worker's
    worker_rss: int | None  # the engine worker's share; None when there is no worker
    gpu_percent: float | None  # busiest NVIDIA GPU's utilisation; None without NVIDIA
    vram_used: int | None  # bytes over all NVIDIA GPUs; None without NVIDIA
    vram_total: int | None
    tokens_per_s: float | None  # of the reply being generated; None when idle


class GenerationMeter:
    """Tokens per second of the reply in progress, over the last ``window_s`` seconds.

    The window feeds it (:meth:`started`, :meth:`tokens` or :meth:`text`, :meth:`finished`) and the
    sampler reads it. Thread-safe, so either side may live on another thread.
    """

    def __init__(
        self, window_s: float = 2.0, chars_per_token: float = 4.0, clock: Clock = time.monotonic
    ) -> None:
        self.window_s = window_s
        self.chars_per_token = chars_per_token  # only for :meth:`text`, which estimates
        self._clock = clock
        self._lock = threading.Lock()
        self._generating = False
        self._events: deque[tuple[float, float]] = deque()  # (time, tokens) in the window
        self._first: tuple[float, float] | None = None  # the reply's first batch
        self._last_at = 0.0
        self._total = 0.0
        self.last_rate: float | None = None  # average speed of the last finished reply

    @property
    def generating(self) -> bool:
        return self._generating

    def started(self) -> None:
        with self._lock:
            self._generating = True
            self._events.clear()
            self._first, self._total = None, 0.0

    def tokens(self, count: float) -> None:
        """``count`` tokens arrived just now."""
        with self._lock:
            if not self._generating or count <= 0:
                return
            now = self._clock()
            self._events.append((now, count))
            self._first = self._first or (now, count)
            self._last_at = now
            self._total += count
            self._prune(now)

    def text(self, chunk: str) -> None:
        """A chunk of streamed text, counted as ``len / chars_per_token`` tokens (an estimate)."""
        self.tokens(len(chunk) / self.chars_per_token)

    def finished(self) -> None:
        with self._lock:
            if self._first is not None and self._last_at > self._first[0]:
                self.last_rate = (self._total - self._first[1]) / (self._last_at - self._first[0])
            self._generating = False
            self._events.clear()

    def tokens_per_s(self) -> float | None:
        """The speed now; ``None`` when idle or before the reply's first tokens."""
        with self._lock:
            if not self._generating or not self._events:
                return None
            now = self._clock()
            self._prune(now)
            anchor, *after = self._events  # the tokens after the anchor came in since it
            elapsed = now - anchor[0]
            return sum(count for _, count in after) / elapsed if elapsed > 0 else 0.0

    def _prune(self, now: float) -> None:
        """Drop events before the window, keeping the last of them as the anchor."""
        start = now - self.window_s
        while len(self._events) > 1 and self._events[1][0] <= start:
            self._events.popleft()


class _Nvml:
    """An NVML session opened on first use and kept; after a failure to open, never tried again.

    (``app.core.hardware`` opens and shuts NVML per call, which is right for ``cadre doctor`` but
    costs milliseconds: too much once a second.)
    """

    def __init__(self) -> None:
        self._module: Any = None
        self._handles: list[Any] | None = None  # None: not tried yet; []: no NVIDIA GPU

    def handles(self) -> list[Any]:
        if self._handles is None:
            self._handles = self._open()
        return self._handles

    def _open(self) -> list[Any]:
        pynvml = open_nvml()
        if pynvml is None:
            return []
        try:
            count = pynvml.nvmlDeviceGetCount()
            handles = [pynvml.nvmlDeviceGetHandleByIndex(index) for index in range(count)]
        except pynvml.NVMLError:
            handles = []
        if not handles:
            pynvml.nvmlShutdown()
        self._module = pynvml
        return handles

    def read(self) -> tuple[float | None, int, int] | None:
        """(busiest GPU's utilisation %, VRAM used, VRAM total), or None without NVIDIA."""
        handles = self.handles()
        if not handles:
            return None
        nvml = self._module
        busy: float | None = None
        used = total = 0
        for handle in handles:
            try:
                memory = nvml.nvmlDeviceGetMemoryInfo(handle)
            except nvml.NVMLError:
                return None  # a GPU fell off the bus, say: show nothing rather than half
            used, total = used + int(memory.used), total + int(memory.total)
            try:  # not every GPU reports utilisation (MIG instances do not)
                load = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except nvml.NVMLError:
                continue
            busy = load if busy is None else max(busy, load)
        return busy, used, total

    def close(self) -> None:
        if self._handles:
            self._module.nvmlShutdown()
        self._handles = []


def _cpu_busy_total() -> tuple[float, float]:
    """Busy and total CPU seconds of the whole system so far (as psutil's own cpu_percent counts
    them), so the sampler keeps its own baseline and no other caller can disturb it."""
    times = psutil.cpu_times()
    total = sum(times)
    if sys.platform.startswith("linux"):  # guest time is already counted in user and nice
        total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
    idle = times.idle + getattr(times, "iowait", 0.0)
    return total - idle, total


class ResidentMemory:
    """Resident bytes of another process (the engine worker), keeping its handle between reads."""

    def __init__(self) -> None:
        self._process: psutil.Process | None = None

    def read(self, pid: int | None) -> int | None:
        """``None`` when there is no such process (not started, or it ended just now)."""
        if pid is None:
            self._process = None
            return None
        try:
            if self._process is None or self._process.pid != pid:
                self._process = psutil.Process(pid)
            return int(self._process.memory_info().rss)
        except (psutil.NoSuchProcess, psutil.AccessDenied):  # it ended between asking and reading
            self._process = None
            return None


class ResourceSampler:
    """Takes a :class:`ResourceSample` on demand; cheap (well under a millisecond without a GPU)."""

    def __init__(self, meter: GenerationMeter | None = None, *, gpu: bool = True) -> None:
        self._meter = meter
        self._own = psutil.Process()
        self._worker = ResidentMemory()
        self._nvml = _Nvml() if gpu else None
        self._cpu = _cpu_busy_total()

    def sample(self, worker_pid: int | None) -> ResourceSample:
        cpu = self._cpu_percent()
        memory = psutil.virtual_memory()
        worker = self._worker_rss(worker_pid)
        gpu = self._nvml.read() if self._nvml is not None else None
        busy, used, total = gpu if gpu is not None else (None, None, None)
        return ResourceSample(
            time=time.monotonic(),
            cpu_percent=cpu,
            ram_used=int(memory.total - memory.available),
            ram_total=int(memory.total),
            cadre_rss=int(self._own.memory_info().rss) + (worker or 0),
            worker_rss=worker,
            gpu_percent=busy,
            vram_used=used,
            vram_total=total,
            tokens_per_s=self._meter.tokens_per_s() if self._meter is not None else None,
        )

    def _cpu_percent(self) -> float:
        busy, total = _cpu_busy_total()
        busy_delta, total_delta = busy - self._cpu[0], total - self._cpu[1]
        self._cpu = busy, total
        if total_delta <= 0:
            return 0.0
        return max(0.0, min(100.0, 100.0 * busy_delta / total_delta))

    def _worker_rss(self, pid: int | None) -> int | None:
        return self._worker.read(pid)

    def close(self) -> None:
        """Release NVML (a later sample does not reopen it)."""
        if self._nvml is not None:
            self._nvml.close()


Metric = Literal["cpu", "ram", "cadre", "gpu", "vram", "speed"]

_READERS: dict[Metric, Callable[[ResourceSample], float | None]] = {
    "cpu": lambda s: s.cpu_percent,
    "ram": lambda s: s.ram_used,
    "cadre": lambda s: s.cadre_rss,
    "gpu": lambda s: s.gpu_percent,
    "vram": lambda s: s.vram_used,
    "speed": lambda s: s.tokens_per_s,
}


class History:
    """The last ``capacity`` samples (120: two minutes at one a second), one ring buffer per metric.

    ``None`` in a series is a gap: no value then (idle, no GPU, or the monitor was hidden).
    """

    def __init__(self, capacity: int = 120) -> None:
        self.capacity = capacity
        self._series: dict[Metric, deque[float | None]] = {
            metric: deque(maxlen=capacity) for metric in _READERS
        }
        self.latest: ResourceSample | None = None

    def add(self, sample: ResourceSample) -> None:
        for metric, read in _READERS.items():
            self._series[metric].append(read(sample))
        self.latest = sample

    def add_gap(self) -> None:
        """Mark time not sampled, so a chart does not join the values on either side of it."""
        if self.latest is not None:
            for series in self._series.values():
                series.append(None)

    def values(self, metric: Metric) -> Sequence[float | None]:
        return self._series[metric]

    def peak(self, metric: Metric) -> float:
        """The largest value in the window (0 when there is none)."""
        return max((value for value in self._series[metric] if value is not None), default=0.0)


@dataclass(frozen=True)
class LoadedModel:
    name: str
    path: str
    ram_bytes: int  # what loading it took: the worker's growth in resident memory
    vram_bytes: int  # and in NVIDIA VRAM, when offloaded


def loaded_model(info: ModelLoaded | None, name: str | None = None) -> LoadedModel | None:
    """The monitor's view of what the engine reported when it loaded a model."""
    if info is None:
        return None
    return LoadedModel(
        name or Path(info.path).stem,
        info.path,
        info.footprint_ram_bytes,
        info.footprint_vram_bytes,
    )


class EngineModels:
    """What the engine holds now (one model at most), named after the specialists that use it.

    Call it for the current list. It reads the client's state only, so it never waits for a reply
    in progress; the names are looked up once per load (that takes ~0.1 ms). A worker that stopped
    holds nothing, even though the client will load the model again on the next request.
    """

    def __init__(self, engine: EngineClient, catalog: Catalog) -> None:
        self._engine = engine
        self._catalog = catalog
        self._named: tuple[ModelLoaded, tuple[LoadedModel, ...]] | None = None

    def __call__(self) -> tuple[LoadedModel, ...]:
        engine = self._engine
        info = engine.last_load
        if engine.loaded is None or info is None or engine.pid is None:
            return ()
        if self._named is None or self._named[0] is not info:
            names = [manifest.name for manifest in self._catalog.users_of(Path(info.path))]
            model = loaded_model(info, ", ".join(names) or None)
            self._named = (info, (model,) if model is not None else ())
        return self._named[1]
