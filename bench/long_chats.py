"""Heavy use: many conversations, and one long one. Does the chat window stay fast?

A temporary CADRE_HOME is filled through the real conversation store: --conversations short
conversations (a few turns each) and one of --messages messages whose replies hold Markdown, a
table and a 20-60 line code block. Then, in the real ChatWindow (offscreen), with a 10 ms heartbeat
QTimer on the GUI thread (as bench/gui.py):

- the window opened (constructed and first painted) with that many conversations;
- the long conversation opened from the sidebar: when its end (the latest reply) is on screen,
  when all of it is, and the worst GUI-thread stall meanwhile;
- Ctrl+K search typed a key at a time: from the last key to the results listed, and the worst stall;
  then a search for a word in every message (the most to rank): until listed, and the worst stall;
- the sidebar scrolled to its end until every conversation is listed (a page read at each end);
- scrolling the long conversation from its end to its top a page at a time (each page painted);
- the process's resident memory, before the window, with it, and with the long conversation shown.

Aims: no stall over 50 ms; the end of a long conversation on screen within ~300 ms.

Usage: QT_QPA_PLATFORM=offscreen python bench/long_chats.py [--conversations N] [--messages N]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.gui import Heartbeat

FIRST_WORDS = "FIRSTMESSAGEMARK"
LAST_WORDS = "LASTREPLYMARK"
SEARCHED = "lighthouse keeper"  # a phrase in one reply of every tenth conversation
TOPICS = ["parser", "cache", "scheduler", "invoice", "garden", "router", "budget", "compiler"]


def code_block(rng: random.Random, n: int) -> str:
    lines = [f"def handle_{n}(items: list[dict[str, int]]) -> int:", '    """Sum the weights."""']
    lines.append("    total = 0")
    for i in range(rng.randint(17, 57)):
        lines.append(f"    total += items[{i}].get('w{n}_{i}', {i}) * {rng.randint(1, 99)}")
    lines.append("    return total")
    return "```python\n" + "\n".join(lines) + "\n```"


def reply_text(rng: random.Random, n: int, code: bool = True) -> str:
    topic = rng.choice(TOPICS)
    table = "| step | cost | note |\n|---|--:|---|\n" + "".join(
        f"| {topic} {i} | {rng.randint(1, 999)} | *{rng.choice(TOPICS)}* |\n" for i in range(4)
    )
    prose = (
        f"Here is how the **{topic}** works, step by step, with `inline_{n}()` calls and a "
        f"[reference](https://example.com/{topic}/{n}). " * 3
    )
    parts = [f"## {topic.title()} {n}", prose, "- first point\n- second point\n- third point"]
    parts += [table, code_block(rng, n) if code else "", "That is all: ask again for more."]
    return "\n\n".join(part for part in parts if part)


def fill(store: Any, conversations: int, messages: int) -> str:
    """The database: ``conversations`` short ones, then the long one (returned: its id)."""
    from app.core.storage import archive
    from app.core.storage.conversations import Conversation, RouteRecord, StoredMessage

    rng = random.Random(7)
    route = RouteRecord("starter", "code", 0.82, "general", "Routed to Starter: code (82%).")

    def message(cid: str, n: int, role: str, content: str) -> StoredMessage:
        stamp = f"2024-01-01T00:{n // 60 % 60:02}:{n % 60:02}+00:00"
        reply = role == "assistant"
        return StoredMessage(
            "", cid, n, role, content, "starter", stamp, "stop" if reply else "",
            route=route if reply else None,
        )  # fmt: skip

    def add(title: str, stamp: str, texts: list[str]) -> str:
        conversation = Conversation("", title, "starter", stamp, stamp)
        roles = ["user", "assistant"] * len(texts)
        stored = [message("", n, roles[n], text) for n, text in enumerate(texts)]
        return store.import_json(archive.to_json(conversation, stored)).id

    for c in range(conversations):
        day = f"2023-{c // 28 % 12 + 1:02}-{c % 28 + 1:02}T{c % 24:02}:00:00+00:00"
        texts: list[str] = []
        for t in range(rng.randint(1, 4)):
            texts.append(f"Question {t} about the {rng.choice(TOPICS)} in chat {c}?")
            extra = f" The {SEARCHED} checks the lamp." if c % 10 == 0 and t == 0 else ""
            texts.append(reply_text(rng, c * 10 + t, code=t % 2 == 0) + extra)
        add(f"Chat {c} about {rng.choice(TOPICS)}", day, texts)
    texts = []
    for t in range(messages // 2):
        texts.append(f"{FIRST_WORDS if t == 0 else ''} How do I build part {t}?")
        texts.append(reply_text(rng, 100_000 + t))
    texts[-1] += f"\n\n{LAST_WORDS}"
    return add("The long one", "2025-01-01T00:00:00+00:00", texts)


def rss_mb() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def wait_until(app: Any, done: Callable[[], bool], timeout_s: float = 120.0) -> float:
    """Run the event loop until ``done()``; the seconds it took."""
    started = time.perf_counter()
    while not done():
        if time.perf_counter() - started > timeout_s:
            raise TimeoutError("the window did not get there")
        app.processEvents()
        time.sleep(0.001)
    return time.perf_counter() - started


def shows(view: Any, words: str, at_end: bool) -> bool:
    """``words`` are in the blocks at the document's end (or start) and, for the end, in view."""
    block = view.document().lastBlock() if at_end else view.document().begin()
    for _ in range(80):
        if not block.isValid():
            return False
        if words in block.text():
            if not at_end:
                return True
            bar = view.verticalScrollBar()
            return bool(bar.value() >= bar.maximum() - 4)
        block = block.previous() if at_end else block.next()
    return False


def open_window(service: Any) -> tuple[Any, float]:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from app.ui.chat_window import ChatWindow

    started = time.perf_counter()
    window = ChatWindow(service)
    window.resize(1280, 800)
    window.show()
    painted: list[float] = []
    QTimer.singleShot(0, lambda: painted.append(time.perf_counter()))
    wait_until(QApplication.instance(), lambda: bool(painted))
    return window, painted[0] - started


class Slices:
    """Times each slice of the transcript's loading work on the GUI thread: wall clock, and the
    thread's CPU time (what the work itself costs, on a machine busy with other things)."""

    def __init__(self, view: Any) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []
        loader = getattr(view, "_loader", None)
        if loader is not None:
            loader._slice = self._timed(loader._slice)

    def _timed(self, slot: Any) -> Any:
        def timed(*args: Any) -> None:
            wall, cpu = time.perf_counter(), time.thread_time()
            slot(*args)
            self.wall.append((time.perf_counter() - wall) * 1000)
            self.cpu.append((time.thread_time() - cpu) * 1000)

        return timed

    def __str__(self) -> str:
        if not self.wall:
            return "no slices"
        return (
            f"{len(self.wall)} slices on the GUI thread, longest {max(self.wall):.1f} ms "
            f"({max(self.cpu):.1f} ms of CPU), median {sorted(self.wall)[len(self.wall) // 2]:.1f}"
        )


def open_long(app: Any, window: Any, beat: Heartbeat) -> tuple[float, float, str]:
    from PySide6.QtWidgets import QListWidget

    listing: QListWidget = window.conversation_list.list
    view = window.transcript
    slices = Slices(view)
    beat.start()
    started = time.perf_counter()
    cpu = time.thread_time()
    window.conversation_list._on_item_clicked(listing.item(0))  # as a click on the newest
    opened = (time.perf_counter() - started) * 1000, (time.thread_time() - cpu) * 1000
    wait_until(app, lambda: shows(view, LAST_WORDS, at_end=True))
    end = time.perf_counter()
    wait_until(app, lambda: shows(view, FIRST_WORDS, at_end=False))
    whole = time.perf_counter()
    wait_until(app, lambda: shows(view, LAST_WORDS, at_end=True))
    _spin(app, 0.2)  # the beat after the last piece of work
    stall = beat.stop()
    stall += f"\n  the click: {opened[0]:.1f} ms ({opened[1]:.1f} ms of CPU); {slices}"
    return (end - started) * 1000, (whole - started) * 1000, stall


def search(app: Any, window: Any, beat: Heartbeat) -> tuple[float, str, int]:
    sidebar = window.conversation_list
    first = sidebar.list.item(0).text() if sidebar.list.count() else ""
    beat.start()
    for key in range(1, len(SEARCHED) + 1):
        sidebar.search_box.setText(SEARCHED[:key])
        _spin(app, 0.08)  # typing pace
    typed = time.perf_counter()
    wait_until(app, lambda: sidebar.list.count() > 0 and sidebar.list.item(0).text() != first)
    wait_until(app, lambda: "«" in sidebar.list.item(0).text())
    latency = (time.perf_counter() - typed) * 1000
    _spin(app, 0.3)
    found = sidebar.list.count()
    return latency, beat.stop(), found


def search_now(app: Any, window: Any, beat: Heartbeat, word: str) -> tuple[float, str]:
    """Search for ``word`` at once (no typing pause): ms until its results are listed, and the
    worst GUI-thread stall meanwhile."""
    sidebar = window.conversation_list
    listed: list[float] = []
    sidebar.listed.connect(lambda: listed.append(time.perf_counter()))
    sidebar.search_box.setText(word)
    beat.start()
    started = time.perf_counter()
    sidebar.refresh()
    wait_until(app, lambda: bool(listed))
    _spin(app, 0.1)
    sidebar.listed.disconnect()
    return (listed[0] - started) * 1000, beat.stop()


def scroll_list(app: Any, window: Any) -> tuple[int, float, int]:
    """The sidebar scrolled to its end again and again, until nothing more comes: (pages read,
    the worst scroll in ms, conversations listed)."""
    sidebar = window.conversation_list
    sidebar.search_box.clear()
    sidebar.refresh()
    listing = sidebar.list
    times, count = [], 0
    while listing.count() != count:
        count = listing.count()
        started = time.perf_counter()
        listing.scrollToBottom()
        app.processEvents()
        times.append((time.perf_counter() - started) * 1000)
    return len(times) - 1, max(times), count


def _spin(app: Any, seconds: float) -> None:
    until = time.perf_counter() + seconds
    while time.perf_counter() < until:
        app.processEvents()
        time.sleep(0.001)


def scroll(app: Any, window: Any) -> tuple[float, float, int]:
    """Page up from the end to the top, each page painted; (median, worst, pages) in ms."""
    view = window.transcript
    bar = view.verticalScrollBar()
    bar.setValue(bar.maximum())
    times = []
    while bar.value() > bar.minimum():
        started = time.perf_counter()
        bar.setValue(bar.value() - bar.pageStep())
        view.viewport().repaint()
        app.processEvents()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return times[len(times) // 2], times[-1], len(times)


def measure(args: argparse.Namespace) -> None:
    from app.core.service import CadreService
    from app.ui.app import _application

    app = _application()
    service = CadreService()
    started = time.perf_counter()
    fill(service.conversations, args.conversations, args.messages)
    count = service.conversations._db.execute("select count(*) from messages").fetchone()[0]
    print(
        f"filled {args.conversations + 1} conversations, {count} messages "
        f"in {time.perf_counter() - started:.1f} s"
    )
    before = rss_mb()
    window, opened = open_window(service)
    wait_until(app, lambda: service.embedder.loaded)  # the router's warm-up: measure after it
    _spin(app, 3.0)  # and the model's
    print(
        f"window opened in {opened * 1000:.0f} ms; {window.conversation_list.list.count()} listed"
    )
    with_window = rss_mb()
    beat = Heartbeat()
    end_ms, whole_ms, stall = open_long(app, window, beat)
    print(f"long conversation: end shown in {end_ms:.0f} ms (aim ~300), all in {whole_ms:.0f} ms")
    print(f"  while it opens: {stall}")
    _spin(app, 1.0)
    shown = rss_mb()
    median, worst, pages = scroll(app, window)
    print(f"scrolling: {pages} pages, median {median:.1f} ms, worst {worst:.1f} ms a page")
    latency, stall, found = search(app, window, beat)
    print(f"search ({SEARCHED!r}, typed): results {latency:.0f} ms after the last key, {found}")
    print(f"  while typing: {stall}")
    for word in ("the", "t"):  # words in every message: the most the search has to rank
        latency, stall = search_now(app, window, beat, word)
        print(f"  search for {word!r}: listed in {latency:.0f} ms; {stall}")
    pages, worst_page, listed = scroll_list(app, window)
    print(f"conversation list: {listed} listed after {pages} pages in, worst {worst_page:.1f} ms")
    print(
        f"memory (RSS): {before:.0f} MB before the window, {with_window:.0f} MB with it, "
        f"{shown:.0f} MB with the long conversation shown"
    )
    window.close()
    service.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=400)
    args = parser.parse_args()
    home = tempfile.mkdtemp(prefix="cadre-bench-long-")
    os.environ["CADRE_HOME"] = home
    try:
        measure(args)
    finally:
        shutil.rmtree(home, ignore_errors=True)  # ~250 MB


if __name__ == "__main__":
    main()
