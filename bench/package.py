"""The frozen app (``dist/Cadre``, built by ``make package``): its size and how fast it opens.

- Size by top-level component of the bundle, and the total.
- Process start to the window shown (offscreen, a fresh data folder), as bench/gui.py measures the
  source checkout: the hidden ``--exit-when-shown`` prints when the window's first paint has been
  processed, and the clock stops when that line arrives. The first run is reported on its own
  (files not yet in the page cache after a build), then the median of 3. Aim <= 3 s. The source
  checkout (``python -m app``, the same start-up path) is measured beside it.

Usage: python bench/package.py
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "packaging"))

import bundle_plan  # noqa: E402
from build import bundle_dir, executable  # noqa: E402

RUNS = 3


def shown_seconds(command: list[str], env: dict[str, str]) -> float:
    """One start of the app, to the line that says the window is shown."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [*command, "--exit-when-shown"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert process.stdout is not None
    took = None
    for line in process.stdout:
        if line.strip() == "window shown":
            took = time.perf_counter() - started
            break
    process.stdout.close()
    if process.wait(timeout=120) != 0 or took is None:
        raise SystemExit(f"{command[0]} did not open its window (exit {process.returncode})")
    return took


def main() -> None:
    if not executable().exists():
        raise SystemExit(f"{executable()} is missing: run `make package` first")
    print(f"{bundle_dir()} by component:")
    print(bundle_plan.format_sizes(bundle_plan.size_by_component(bundle_dir())))
    home = tempfile.mkdtemp(prefix="cadre-bench-package-")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CADRE_HOME": home}
    frozen = [str(executable())]
    first = shown_seconds(frozen, env)
    times = [shown_seconds(frozen, env) for _ in range(RUNS)]
    source = statistics.median(
        shown_seconds([sys.executable, "-m", "app"], env) for _ in range(RUNS)
    )
    median = statistics.median(times)
    print(f"frozen: process start to window shown, first run {first:.2f} s")
    print(f"frozen: process start to window shown {median:.2f} s (median of {RUNS}; aim <= 3)")
    print(f"source checkout, same path: {source:.2f} s (median of {RUNS})")
    print(f"frozen / source: {median / source:.2f}")


if __name__ == "__main__":
    main()
