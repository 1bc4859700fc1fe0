"""GUI responsiveness: does the window's event loop keep running while Cadre works?

- Start-up: from process start to the main window shown (a fresh interpreter, offscreen; the
  window is "shown" when its first paint has been processed). Aim <= 1.5 s.
- A heartbeat QTimer every 10 ms on the GUI thread, while (1) a reply streams from the starter
  specialist and (2) a folder is indexed. Prints the worst stall (the longest gap between beats
  beyond the 10 ms interval) and the 99th percentile gap. Aim: worst stall <= 50 ms.

Usage: QT_QPA_PLATFORM=offscreen python bench/gui.py [--files N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

STARTUP_PROBE = """
import time, sys
started = time.perf_counter()
from PySide6.QtCore import QTimer
from app.ui.app import _application
from app.core.service import CadreService
from app.ui.chat_window import ChatWindow
app = _application()
window = ChatWindow(CadreService())
window.show()
def shown():
    print(f"SHOWN {time.perf_counter() - started:.3f}")
    window.controller.shutdown(); window.document_ops.shutdown(); window.model_ops.shutdown()
    app.quit()
QTimer.singleShot(0, shown)
app.exec()
"""


def startup_seconds(runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        result = subprocess.run(
            [sys.executable, "-c", STARTUP_PROBE],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        shown = [line for line in result.stdout.splitlines() if line.startswith("SHOWN")]
        times.append(float(shown[0].split()[1]))
    return statistics.median(times)


class Heartbeat:
    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.gaps: list[float] = []
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setInterval(10)
        self._timer.timeout.connect(self._beat)

    def _beat(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000)
        self._last = now

    def start(self) -> None:
        self.gaps.clear()
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> str:
        self._timer.stop()
        gaps = sorted(self.gaps)
        p99 = gaps[int(len(gaps) * 0.99) - 1] if gaps else 0.0
        stall = max(0.0, (gaps[-1] if gaps else 0.0) - 10)
        return (
            f"{len(gaps)} beats, worst stall {stall:.1f} ms, p99 gap {p99:.1f} ms (aim stall <= 50)"
        )


def measure(files: int) -> None:
    from PySide6.QtCore import QEventLoop, QTimer

    from app.core.service import CadreService
    from app.ui.app import _application
    from app.ui.chat_window import ChatWindow

    app = _application()
    service = CadreService()
    window = ChatWindow(service)
    window.show()
    beat = Heartbeat()
    loop = QEventLoop()

    def wait_for(signal: object, timeout_ms: int = 600_000) -> None:
        signal.connect(loop.quit)  # type: ignore[attr-defined]
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()
        signal.disconnect(loop.quit)  # type: ignore[attr-defined]

    window.controller.warm_up("starter")
    while not service.embedder.loaded:  # the router loads at start-up; measure after that
        QTimer.singleShot(200, loop.quit)
        loop.exec()
    QTimer.singleShot(2000, loop.quit)  # and the model load
    loop.exec()
    beat.start()
    window.input.setPlainText("@starter Tell me a long story about a lighthouse keeper.")
    window.send()
    wait_for(window.controller.reply_finished)
    print(f"while a reply streams: {beat.stop()}")

    folder = Path(tempfile.mkdtemp(prefix="cadre-bench-gui-"))
    for n in range(files):
        (folder / f"note{n:03}.txt").write_text(f"Note {n}. " + "Lighthouses guide ships. " * 120)
    beat.start()
    window.document_ops.add_folders("bench", [folder])
    wait_for(window.document_ops.index_ended)
    shutil.rmtree(folder, ignore_errors=True)
    print(f"while {files} files are indexed: {beat.stop()}")
    window.close()
    window.document_ops.shutdown()
    window.model_ops.shutdown()
    window.controller.shutdown()
    service.close()
    del app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=60)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="cadre-bench-gui-home-")
    os.environ["CADRE_HOME"] = home
    try:
        print(f"process start to window shown: {startup_seconds():.2f} s (median of 3; aim <= 1.5)")
        measure(args.files)
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
