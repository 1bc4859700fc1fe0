"""Streaming Markdown into the transcript: does the GUI thread keep beating?

A scripted long reply (prose, lists, a table and long code blocks, ~12k characters) streams into a
TranscriptView at a fast model's pace while a 10 ms heartbeat QTimer runs on the GUI thread. Prints
the worst stall (the longest gap between beats beyond the interval), the 99th percentile gap, and
the cost of a flush (the 40 ms re-render of the reply's tail) and of the end of the reply: the
last flush and the footer, then the check against the whole render (rendered off the GUI thread,
then the pieces that differ repainted on it). --fix-up writes the links as reference links defined
at the very end, so that every section's paragraphs need repainting at the end, and makes each
section's code differ. Aim: worst stall
<= 50 ms, also as the reply grows (--sections).

Usage: QT_QPA_PLATFORM=offscreen python bench/transcript.py [--tokens-per-s N] [--sections N]
       [--fix-up]
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def scripted_reply(sections: int, fix_up: bool = False) -> str:
    code = "\n".join(
        f"def step_{i}(values: list[int]) -> int:\n"
        f'    """Step {i}: sum what is left."""\n'
        f"    return sum(v * {i} for v in values if v > {i})  # keep it short"
        for i in range(20)
    )
    section = (
        "## Part\n\nHere is **some** text with `inline code`, *emphasis* and a "
        "[link](https://example.com). "
        * 2
        + "\n\n- one point\n- another point\n\n| name | value |\n|---|--:|\n| a | 1 |\n| b | 2 |\n\n"
        + f"```python\n{code}\n```\n\n"
    )
    if not fix_up:
        return section * sections
    # Links that only the whole reply resolves, and code that differs from section to section,
    # so that the whole render lexes every block afresh (nothing cached from the stream).
    section = section.replace("[link](https://example.com)", "[link][site]")
    parts = [section.replace("step_", f"part{n}_step_") for n in range(sections)]
    return "".join(parts) + "[site]: https://example.com"


class StreamBench:
    """Feeds ``reply`` token by token on a timer; times every flush and the heartbeat's gaps."""

    def __init__(self, app: Any, reply: str, tokens_per_s: float) -> None:
        from PySide6.QtCore import QElapsedTimer, QTimer

        from app.ui.transcript import TranscriptView

        self.app = app
        self.view = TranscriptView()
        self.view.resize(1000, 700)
        self.view.show()
        self.tokens = re.findall(r"\S+|\s+", reply)
        self.rate = tokens_per_s
        self.flushes: list[float] = []
        self.gaps: list[float] = []
        self.end_ms = 0.0
        self.check_ms = 0.0  # from the end of the reply to its check against the whole render
        self.repair_ms: list[float] = []  # the check's slices of work on the GUI thread
        self._depth = 0
        self.repainted = 0
        self._ended = 0.0
        self._last = time.perf_counter()
        self._sent = 0
        self._clock = QElapsedTimer()
        self._heartbeat = QTimer()
        self._heartbeat.setInterval(10)
        self._heartbeat.timeout.connect(self._beat)
        self._feeder = QTimer()
        self._feeder.setInterval(5)
        self._feeder.timeout.connect(self._feed)
        self.view._timer.timeout.disconnect()  # time each flush the view's timer runs
        self.view._timer.timeout.connect(self._timed_flush)
        self.view.reply_checked.connect(self._checked)
        for name in ("_repair", "_repaint"):  # its slices of work on the GUI thread
            setattr(self.view, name, self._timed(getattr(self.view, name)))

    def _timed(self, slot: Any) -> Any:
        def timed(*args: Any) -> None:
            self._depth += 1  # _repair calls _repaint: one slice
            started = time.perf_counter()
            slot(*args)
            self._depth -= 1
            if not self._depth:
                self.repair_ms.append((time.perf_counter() - started) * 1000)

        return timed

    def run(self) -> None:
        from PySide6.QtCore import QTimer

        QTimer.singleShot(2000, self.app.quit)  # the view warms its renderer up after start-up
        self.app.exec()
        self.view.add_user("Write me a long answer with code.")
        self.view.begin_reply("Code")
        self._clock.start()
        self._last = time.perf_counter()
        self._heartbeat.start()
        self._feeder.start()
        self.app.exec()

    def _timed_flush(self) -> None:
        started = time.perf_counter()
        self.view.flush()
        self.flushes.append((time.perf_counter() - started) * 1000)

    def _beat(self) -> None:
        now = time.perf_counter()
        self.gaps.append((now - self._last) * 1000)
        self._last = now

    def _feed(self) -> None:
        from PySide6.QtCore import QTimer

        due = min(len(self.tokens), int(self._clock.elapsed() / 1000 * self.rate))
        for token in self.tokens[self._sent : due]:
            self.view.add_reply_text(token)
        self._sent = due
        if due == len(self.tokens):
            self._feeder.stop()
            self._ended = time.perf_counter()
            self.view.end_reply("done")
            self.end_ms = (time.perf_counter() - self._ended) * 1000
            QTimer.singleShot(10_000, self.app.quit)  # in case the check never comes

    def _checked(self, repainted: int) -> None:
        from PySide6.QtCore import QTimer

        self.check_ms = (time.perf_counter() - self._ended) * 1000
        self.repainted = repainted
        QTimer.singleShot(200, self.app.quit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tokens-per-s", type=float, default=150.0)
    parser.add_argument("--sections", type=int, default=4)
    parser.add_argument("--fix-up", action="store_true", help="a reply that needs repainting")
    args = parser.parse_args()
    from PySide6.QtWidgets import QApplication

    app = QApplication(sys.argv)
    reply = scripted_reply(args.sections, args.fix_up)
    bench = StreamBench(app, reply, args.tokens_per_s)
    bench.run()
    gaps = sorted(bench.gaps)
    p99 = gaps[int(len(gaps) * 0.99) - 1]
    print(
        f"{len(reply)} characters, {len(bench.tokens)} tokens at {args.tokens_per_s:.0f} tokens/s"
    )
    print(
        f"{len(gaps)} beats, worst stall {max(0.0, gaps[-1] - 10):.1f} ms, p99 gap {p99:.1f} ms "
        "(aim stall <= 50)"
    )
    flushes = bench.flushes
    print(
        f"flush: median {statistics.median(flushes):.1f} ms, worst {max(flushes):.1f} ms "
        f"over {len(flushes)}; end of reply {bench.end_ms:.1f} ms"
    )
    slices = bench.repair_ms or [0.0]
    print(
        f"check at the end: done {bench.check_ms:.0f} ms after the end (whole render off the GUI "
        f"thread), {bench.repainted} pieces repainted; on the GUI thread {sum(slices):.1f} ms in "
        f"{len(slices)} slices, the longest {max(slices):.1f} ms"
    )


if __name__ == "__main__":
    main()
