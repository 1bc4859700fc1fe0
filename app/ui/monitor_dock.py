"""The Resources dock: CPU, memory, GPU and generation speed as small live charts, and the models the
engine holds. It samples once a second on the GUI thread (a sample costs well under a millisecond) and
only while it can be seen: hidden, closed, tabbed away or minimised, it does no work at all."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QDockWidget, QLabel, QVBoxLayout, QWidget

from app.core.monitor import (
    GenerationMeter,
    History,
    LoadedModel,
    Metric,
    ResourceSample,
    ResourceSampler,
)
from app.core.units import human_bytes
from app.ui.charts import Sparkline

TITLES: dict[Metric, str] = {
    "cpu": "CPU",
    "ram": "RAM",
    "cadre": "Cadre",
    "gpu": "GPU",
    "vram": "VRAM",
    "speed": "Speed",
}
GPU_METRICS: tuple[Metric, ...] = ("gpu", "vram")
NO_MODEL = "No model loaded"
NBSP = "\u00a0"

Reading = tuple[float, str, str]  # the chart's maximum, its text, its tooltip


class ResourceDock(QDockWidget):
    """Shows what :class:`ResourceSampler` measures; holds no logic of its own.

    ``worker_pid`` gives the engine worker's process id (None when it is not running),
    ``loaded_models`` what the engine holds, and ``meter`` the speed of the reply in progress.
    """

    def __init__(
        self,
        worker_pid: Callable[[], int | None],
        loaded_models: Callable[[], Sequence[LoadedModel]],
        meter: GenerationMeter,
        parent: QWidget | None = None,
        *,
        gpu: bool = True,
        interval_ms: int = 1000,
        capacity: int = 120,
    ) -> None:
        super().__init__("Resources", parent)
        self.setObjectName("resources")  # QMainWindow.saveState() keys docks by object name
        self._worker_pid = worker_pid
        self._loaded_models = loaded_models
        self._meter = meter
        self.sampler = ResourceSampler(meter, gpu=gpu)
        self.history = History(capacity)
        self.charts = {metric: Sparkline(title, capacity) for metric, title in TITLES.items()}
        self.model_labels: list[QLabel] = []
        self._models: tuple[LoadedModel, ...] | None = None
        self._gap = False  # time went by unsampled: the charts break their lines there
        self._last: ResourceSample | None = None
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.CoarseTimer)  # lets the OS batch the wake-ups
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.tick)
        self.visibilityChanged.connect(self._on_visibility)
        self._build()

    def _build(self) -> None:
        layout = QVBoxLayout()
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        for metric, chart in self.charts.items():
            chart.setVisible(metric not in GPU_METRICS)  # until a sample finds an NVIDIA GPU
            layout.addWidget(chart)
        heading = QLabel("Loaded models")
        font = heading.font()
        font.setBold(True)
        heading.setFont(font)
        layout.addSpacing(4)
        layout.addWidget(heading)
        self._models_layout = QVBoxLayout()
        self._models_layout.setSpacing(2)
        layout.addLayout(self._models_layout)
        layout.addStretch(1)
        body = QWidget()
        body.setLayout(layout)
        self.setWidget(body)
        self._show_models(())

    def _on_visibility(self, visible: bool) -> None:
        if not visible:
            self.timer.stop()
            self._gap = True
        elif not self.timer.isActive():
            self.tick()  # figures at once, not a second later
            self.timer.start()

    def tick(self) -> None:
        """Take one sample and show it (the timer calls this once a second)."""
        if self.window().isMinimized():
            self._gap = True
            return
        sample = self.sampler.sample(self._worker_pid())
        if self._gap:
            self.history.add_gap()
            self._gap = False
        self.history.add(sample)
        self._last = sample
        self._show_sample(sample)
        self._show_models(tuple(self._loaded_models()))

    def refresh_speed(self) -> None:
        """Show at once that a reply started or ended, not at the next tick up to a second later
        (a reply that ends between ticks would otherwise read "starting…" until then)."""
        if self._last is None or not self.timer.isActive():
            return
        sample = replace(self._last, tokens_per_s=self._meter.tokens_per_s())
        maximum, text, tooltip = self._speed(sample)
        chart = self.charts["speed"]
        chart.set_values(self.history.values("speed"), maximum, text)
        chart.setToolTip(tooltip)

    def _show_sample(self, sample: ResourceSample) -> None:
        gpu = sample.vram_total is not None
        for metric in GPU_METRICS:
            if self.charts[metric].isHidden() == gpu:
                self.charts[metric].setVisible(gpu)
        for metric, chart in self.charts.items():
            if metric in GPU_METRICS and not gpu:
                continue
            maximum, text, tooltip = _READINGS[metric](self, sample)
            chart.set_values(self.history.values(metric), maximum, text)
            chart.setToolTip(tooltip)

    def _show_models(self, models: tuple[LoadedModel, ...]) -> None:
        if models == self._models:
            return
        self._models = models
        for label in self.model_labels:
            self._models_layout.removeWidget(label)
            label.deleteLater()
        self.model_labels = [_model_label(model) for model in models]
        if not models:
            none = QLabel(NO_MODEL)
            none.setEnabled(False)  # drawn in the palette's dimmed text colour
            self.model_labels = [none]
        for label in self.model_labels:
            self._models_layout.addWidget(label)

    def _cpu(self, sample: ResourceSample) -> Reading:
        tip = f"CPU use of the whole system, all cores: {sample.cpu_percent:.1f}%"
        return 100.0, f"{sample.cpu_percent:.0f}%", tip

    def _ram(self, sample: ResourceSample) -> Reading:
        used, total = sample.ram_used, sample.ram_total
        tip = (
            f"Memory in use on this computer: {used:,} of {total:,} bytes "
            f"({100 * used / max(1, total):.1f}%)"
        )
        return float(total), f"{human_bytes(used)} / {human_bytes(total)}", tip

    def _cadre(self, sample: ResourceSample) -> Reading:
        worker = sample.worker_rss
        engine = f"{worker:,} bytes" if worker is not None else "not running"
        tip = (
            f"Cadre's resident memory: {sample.cadre_rss:,} bytes\n"
            f"  the app: {sample.cadre_rss - (worker or 0):,} bytes\n"
            f"  the engine worker: {engine}"
        )
        top = max(self.history.peak("cadre") * 1.25, 1.0)  # scaled to its own recent peak
        return top, human_bytes(sample.cadre_rss), tip

    def _gpu(self, sample: ResourceSample) -> Reading:
        if sample.gpu_percent is None:
            return 100.0, "n/a", "This GPU does not report its utilisation."
        tip = f"Utilisation of the busiest NVIDIA GPU: {sample.gpu_percent:.0f}%"
        return 100.0, f"{sample.gpu_percent:.0f}%", tip

    def _vram(self, sample: ResourceSample) -> Reading:
        used, total = sample.vram_used or 0, sample.vram_total or 0
        tip = f"GPU memory in use (all NVIDIA GPUs, all processes): {used:,} of {total:,} bytes"
        return float(total), f"{human_bytes(used)} / {human_bytes(total)}", tip

    def _speed(self, sample: ResourceSample) -> Reading:
        top = max(self.history.peak("speed") * 1.2, 1.0)
        rate, last = sample.tokens_per_s, self._meter.last_rate
        how = (
            f"over the last {self._meter.window_s:.0f} s, counted from the streamed text "
            f"(about {self._meter.chars_per_token:g} characters a token)"
        )
        if rate is not None:
            return top, f"{rate:.1f} tok/s", f"Generating: {rate:.2f} tokens/s {how}"
        if self._meter.generating:
            return top, "starting…", "Waiting for the reply's first words."
        if last is None:
            return top, "idle", "Not generating."
        tip = f"Not generating. The last reply streamed at {last:.2f} tokens/s on average."
        return top, f"idle (last {last:.1f} tok/s)", tip


_READINGS: dict[Metric, Callable[[ResourceDock, ResourceSample], Reading]] = {
    "cpu": ResourceDock._cpu,
    "ram": ResourceDock._ram,
    "cadre": ResourceDock._cadre,
    "gpu": ResourceDock._gpu,
    "vram": ResourceDock._vram,
    "speed": ResourceDock._speed,
}


def _model_label(model: LoadedModel) -> QLabel:
    figures = [f"RAM {human_bytes(model.ram_bytes)}"]
    if model.vram_bytes:
        figures.append(f"VRAM {human_bytes(model.vram_bytes)}")
    # A narrow dock wraps the line between the parts, never inside "RAM 312.0 MB".
    label = QLabel(" · ".join([model.name, *(part.replace(" ", NBSP) for part in figures)]))
    label.setWordWrap(True)
    label.setToolTip(
        f"{model.path}\nRAM: {model.ram_bytes:,} bytes\nVRAM: {model.vram_bytes:,} bytes\n"
        "(what loading it took, measured then)"
    )
    return label
