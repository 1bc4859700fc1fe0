"""Download benchmark: Cadre's verified, resumable pull against huggingface_hub's own download.

Both fetch the starter GGUF (253 MB) from the tests' fake hub on 127.0.0.1, so the figures measure
the client, not a network. Prints medians of:
- ``hf_hub_download`` into a local folder (size check only, no resume across runs);
- Cadre's pull: download + sha256 verification + GGUF validation, and the verification alone;
- a pull cancelled at about half way and then resumed: bytes fetched again (aim: none twice).
Ratio Cadre/hf (aim <= 1.5: verification costs one extra read of the file).

Usage: python bench/downloads.py [--runs N]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.catalog import CatalogEntry
from app.core.downloads.transfer import PartialFile
from app.core.embedded import prepare_model
from app.core.errors import Cancelled
from app.core.service import CadreService
from app.core.tasks import CancelToken, run_job
from app.core.user_manifests import NewSpecialist
from specialists import ModelSource
from tests.fakehub import FakeHub, HubFile

REPO, FILE = "bench/starter-GGUF", "starter.gguf"


def starter_bytes(service: CadreService) -> bytes:
    entry: CatalogEntry = service.catalog.entry("starter")
    return run_job(prepare_model(entry)).read_bytes()


def time_hf_download(folder: Path) -> float:
    from huggingface_hub import hf_hub_download

    started = time.perf_counter()
    hf_hub_download(REPO, FILE, local_dir=folder, endpoint=os.environ["HF_ENDPOINT"])
    return time.perf_counter() - started


def time_cadre_pull(home: Path) -> tuple[float, float]:
    os.environ["CADRE_HOME"] = str(home)
    service = CadreService()
    try:
        verify_started = 0.0
        started = time.perf_counter()

        def watch(report: object) -> None:
            nonlocal verify_started
            if getattr(report, "message", "").startswith("Verifying") and not verify_started:
                verify_started = time.perf_counter()

        job = service.installer.add_from_hub(
            NewSpecialist("bench", "general"), REPO, FILE, "main", CancelToken()
        )
        run_job(job, watch)
        ended = time.perf_counter()
        verify_s = ended - verify_started if verify_started else 0.0
        return ended - started, verify_s
    finally:
        service.close()


def resumed_refetch(home: Path, hub: FakeHub, size: int) -> tuple[int, int]:
    """Cancel a pull half way and pull again: (bytes kept, kept bytes that were fetched again)."""
    os.environ["CADRE_HOME"] = str(home)
    service = CadreService()
    cancel = CancelToken()
    new = NewSpecialist("bench", "general")

    def stop_half_way(report: object) -> None:
        if getattr(report, "done", 0) >= size // 2:
            cancel.cancel()

    try:
        with contextlib.suppress(Cancelled):
            run_job(service.installer.add_from_hub(new, REPO, FILE, "main", cancel), stop_half_way)
        target = service.catalog.path_for(ModelSource("huggingface", FILE, repo=REPO))
        kept = PartialFile(target).data.stat().st_size
        run_job(service.installer.add_from_hub(new, REPO, FILE, "main", CancelToken()))
        last = hub.gets(FILE)[-1].range or "bytes=0-"
        start = int(last.removeprefix("bytes=").rstrip("-"))
        return kept, kept - start
    finally:
        service.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="cadre-bench-dl-"))
    os.environ["CADRE_HOME"] = str(scratch / "seed")
    seed = CadreService()
    data = starter_bytes(seed)
    seed.close()
    with FakeHub() as hub:
        hub.add(HubFile(REPO, FILE, data, chunk_size=1024 * 1024))
        os.environ["HF_ENDPOINT"] = hub.endpoint
        hf = [time_hf_download(scratch / f"hf{i}") for i in range(args.runs)]
        cadre = [time_cadre_pull(scratch / f"cadre{i}") for i in range(args.runs)]
        kept, refetched = resumed_refetch(scratch / "resume", hub, len(data))
    hf_s = statistics.median(hf)
    cadre_s = statistics.median(t for t, _ in cadre)
    verify_s = statistics.median(v for _, v in cadre)
    mb = len(data) / 1e6
    print(f"file: {mb:.1f} MB over loopback, {args.runs} runs each (median)")
    print(f"hf_hub_download:          {hf_s:6.2f} s  ({mb / hf_s:6.1f} MB/s)")
    print(f"cadre pull (verified):    {cadre_s:6.2f} s  ({mb / cadre_s:6.1f} MB/s)")
    print(f"  of which sha256+GGUF:   {verify_s:6.2f} s  ({mb / verify_s:6.1f} MB/s)")
    print(f"ratio cadre/hf:           {cadre_s / hf_s:6.2f}  (aim <= 1.5)")
    print(
        f"resume after a cancel at {kept / len(data):.0%}: {kept / 1e6:.1f} MB kept, "
        f"{refetched} bytes of them fetched again (aim: 0)"
    )


if __name__ == "__main__":
    main()
