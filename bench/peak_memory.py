"""Per-reply peak memory: what sampling costs.

Times one sample of Cadre's resident memory (this process plus a child standing in for the engine
worker), and the CPU the sampling thread takes over a few seconds at its interval, as a share of
one core.

Usage: python bench/peak_memory.py [--seconds S]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.peak_memory import INTERVAL_S, PeakMemory


def sample_cost_us(peak: PeakMemory, rounds: int = 2000) -> list[float]:
    costs = []
    for _ in range(rounds):
        start = time.perf_counter()
        peak.sample()
        costs.append((time.perf_counter() - start) * 1e6)
    return costs


def thread_cpu_share(worker_pid: int, seconds: float) -> float:
    """CPU seconds this process spends while only the sampling thread works, per wall second."""
    own = psutil.Process()
    before, start = own.cpu_times(), time.perf_counter()
    with PeakMemory(lambda: worker_pid):
        time.sleep(seconds)
    after, wall = own.cpu_times(), time.perf_counter() - start
    return (after.user + after.system - before.user - before.system) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        alone = sample_cost_us(PeakMemory(lambda: None))
        both = sample_cost_us(PeakMemory(lambda: worker.pid))
        share = thread_cpu_share(worker.pid, args.seconds)
    finally:
        worker.kill()
        worker.wait()
    for label, costs in (("app only", alone), ("app + worker", both)):
        costs.sort()
        p50, p99 = statistics.median(costs), costs[int(len(costs) * 0.99)]
        print(f"one sample, {label}: p50 {p50:.1f} µs, p99 {p99:.1f} µs")
    print(f"sampling every {INTERVAL_S * 1000:.0f} ms: {share * 100:.3f}% of one core")


if __name__ == "__main__":
    main()
