"""``cadre index ...`` and ``cadre search``: document collections from the terminal."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from app.cli.output import note
from app.cli.progress import drive
from app.core.documents.indexer import IndexReport
from app.core.documents.library import CollectionStatus, DocumentLibrary
from app.core.documents.search import SearchHit
from app.core.service import CadreService
from app.core.tasks import Job

SKIPPED_SHOWN = 20


def _drive(job: Job[IndexReport]) -> IndexReport:
    return drive(job, "Stopped. Files indexed so far are kept; `cadre index update` carries on.")


def _print_report(report: IndexReport) -> None:
    note(report.describe())
    for source in report.missing_sources:
        note(f"  folder not found: {source}")
    for path, reason in report.skipped[:SKIPPED_SHOWN]:
        note(f"  skipped {path}: {reason}")
    if len(report.skipped) > SKIPPED_SHOWN:
        note(f"  … and {len(report.skipped) - SKIPPED_SHOWN} more (see `cadre index status`)")


def _library(service: CadreService) -> DocumentLibrary:
    return service.documents


def run_index(service: CadreService, args: argparse.Namespace) -> int:
    library = _library(service)
    action = args.index_command
    if action == "add":
        library.add(args.collection, [Path(p) for p in args.paths])
        _print_report(_drive(library.index(args.collection)))
    elif action == "update":
        names = [args.collection] if args.collection else [c.name for c in library.collections()]
        for name in names:
            _print_report(_drive(library.index(name)))
    elif action == "rm":
        return _remove(library, args)
    elif action == "watch":
        return _watch(library, args)
    else:
        return _status(library, args.json)
    return 0


def _remove(library: DocumentLibrary, args: argparse.Namespace) -> int:
    if args.paths:
        library.remove(args.collection, [Path(p) for p in args.paths])
        _print_report(_drive(library.index(args.collection)))
    else:
        library.remove(args.collection)
        note(f"Removed the collection {args.collection!r} (your files are untouched).")
    return 0


def _status(library: DocumentLibrary, as_json: bool) -> int:
    statuses = library.status()
    if as_json:
        print(json.dumps([status.as_dict() for status in statuses], indent=2))
        return 0
    if not statuses:
        note("No document collections yet. Add one: cadre index add FOLDER --collection NAME")
    for status in statuses:
        _print_status(status)
    return 0


def _print_status(status: CollectionStatus) -> None:
    print(
        f"{status.name}: {status.documents} documents, {status.chunks} chunks"
        + (
            f", last indexed {status.last_indexed[:19].replace('T', ' ')} UTC"
            if status.last_indexed
            else ""
        )
    )
    for source in status.sources:
        mark = "  (not found)" if source in status.missing_sources else ""
        print(f"  source {source}{mark}")
    if status.skipped:
        print(f"  {len(status.skipped)} skipped:")
        for path, reason in status.skipped:
            print(f"    {path}: {reason}")


def _watch(library: DocumentLibrary, args: argparse.Namespace) -> int:
    from app.core.documents.watch import CollectionWatcher

    names = [args.collection] if args.collection else [c.name for c in library.collections()]
    for name in names:  # catch up with what changed while nothing was watching
        _print_report(_drive(library.index(name)))
    sources = {name: library.store.require(name).sources for name in names}
    watcher = CollectionWatcher(sources, lambda name: _print_report(_drive(library.index(name))))
    note("Watching for changes; Ctrl+C stops.")
    with watcher:
        try:
            while True:
                time.sleep(1.0)
        except KeyboardInterrupt:
            return 0


def run_search(service: CadreService, args: argparse.Namespace) -> int:
    library = _library(service)
    library.store.require(args.collection)  # a typo fails before the embedder loads
    query = " ".join(args.query).strip()
    if query:
        hits = library.search(args.collection, query, args.k, args.mode)
        _print_hits(query, hits, args.json)
        return 0
    for line in sys.stdin:  # one query a line, one JSON object a line; models load once
        if line.strip():
            hits = library.search(args.collection, line.strip(), args.k, args.mode)
            _print_hits(line.strip(), hits, as_json=True)
    return 0


def _print_hits(query: str, hits: list[SearchHit], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"query": query, "hits": [hit.as_dict() for hit in hits]}), flush=True)
        return
    if not hits:
        note("Nothing found.")
    for rank, hit in enumerate(hits, start=1):
        place = hit.chunk.place()
        print(
            f"{rank}. {hit.chunk.path}{f' ({place})' if place else ''}"
            f"  score {hit.score:.4f} · similarity {hit.similarity:.2f}"
        )
        snippet = " ".join(hit.chunk.text.split())
        print(f"   {snippet[:300]}{'…' if len(snippet) > 300 else ''}")
