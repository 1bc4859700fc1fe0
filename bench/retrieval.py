"""Retrieval benchmark: ingestion rate, search quality and query latency of Cadre's documents.

- Ingestion: the real indexer (walk, hash, extract, chunk, embed, store) over SciFact abstracts
  written as .txt files, in chunks/s, next to the raw embedding rate of the same chunks with the
  same model (ratio; aim >= 0.8).
- Quality on the BEIR SciFact test set (``../shared/eval/scifact``): recall@5 and nDCG@10 for BM25
  alone, dense alone and the hybrid (aim: hybrid beats both). A document's rank is that of its best
  chunk. Also how often the relevance gate (grounding.MIN_SIMILARITY) keeps the top hit of a SciFact
  claim, and how often it rejects everyday questions that the collection cannot answer.
- Query latency p50/p95 of the full search path (query embedding, faiss, FTS5, fusion, fetching
  chunks) at 10k and 100k chunks (aim p95 <= 50 ms at 100k), then of each leg alone: the query
  embedding, the faiss search, the keyword leg (word counts, then BM25) and fetching the k chunks.
  The big collections reuse SciFact's chunk texts with random unit vectors: search cost does not
  depend on what the vectors say.

The SciFact collection lives in a persistent folder (``$TMPDIR/cadre-bench-retrieval``) so that
re-runs embed nothing again (the indexer skips unchanged files).

Usage: python bench/retrieval.py [--ingest-docs N] [--queries N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the app does (app/__init__.py)

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.documents.chunking import Chunk
from app.core.documents.grounding import MIN_SIMILARITY
from app.core.documents.library import DocumentLibrary
from app.core.documents.records import FileStat
from app.core.documents.search import CANDIDATES, keyword_query, keyword_words
from app.core.embedder import Embedder
from app.core.paths import DataPaths
from app.core.tasks import run_job

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval"
SCIFACT = EVAL / "scifact"
WORK = Path(tempfile.gettempdir()) / "cadre-bench-retrieval"


def read_jsonl(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines(): U+2028 is text here
    return [json.loads(line) for line in lines if line.strip()]


def home(name: str) -> DataPaths:
    root = WORK / name
    return DataPaths(root / "data", root / "config", root / "cache", root / "logs").ensure()


def write_corpus(folder: Path, documents: list[dict[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for document in documents:
        path = folder / f"{document['_id']}.txt"
        if not path.exists():
            path.write_text(f"{document['title']}\n\n{document['text']}\n")


def ingestion(embedder: Embedder, documents: list[dict[str, str]]) -> None:
    folder = WORK / "ingest-corpus"
    write_corpus(folder, documents)
    paths = home(f"ingest-{time.time_ns()}")
    library = DocumentLibrary(paths, embedder)
    library.add("ingest", [folder])
    started = time.perf_counter()
    report = run_job(library.index("ingest"))
    indexed_s = time.perf_counter() - started
    ids, _ = library.store.vectors(library.store.require("ingest"))
    texts = list(library.store.chunks(ids.tolist()).values())
    library.close()
    started = time.perf_counter()
    embedder.encode([chunk.text for chunk in texts])
    raw_s = time.perf_counter() - started
    ingest_rate, raw_rate = report.chunks_added / indexed_s, len(texts) / raw_s
    print(
        f"ingestion: {len(documents)} files, {report.chunks_added} chunks in {indexed_s:.1f} s = "
        f"{ingest_rate:.1f} chunks/s; raw embedding {raw_rate:.1f} chunks/s; "
        f"ratio {ingest_rate / raw_rate:.2f} (aim >= 0.8)"
    )


def scifact_library(embedder: Embedder) -> DocumentLibrary:
    folder = WORK / "scifact-corpus"
    write_corpus(folder, read_jsonl(SCIFACT / "corpus.jsonl"))
    library = DocumentLibrary(home("scifact"), embedder)
    library.add("scifact", [folder])
    started = time.perf_counter()
    report = run_job(library.index("scifact"))
    print(f"scifact collection: {report.describe()} ({time.perf_counter() - started:.0f} s)")
    return library


def relevant_documents() -> dict[str, set[str]]:
    relevant: dict[str, set[str]] = {}
    for line in (SCIFACT / "qrels-test.tsv").read_text().splitlines()[1:]:
        query_id, corpus_id, score = line.split("\t")
        if int(score) > 0:
            relevant.setdefault(query_id, set()).add(corpus_id)
    return relevant


def document_ranking(library: DocumentLibrary, query: str, mode: str) -> list[str]:
    hits = library.search("scifact", query, k=50, mode=mode)
    ranking: list[str] = []
    for hit in hits:
        document = Path(hit.chunk.path).stem
        if document not in ranking:
            ranking.append(document)
    return ranking


def ndcg_at_10(ranking: list[str], relevant: set[str]) -> float:
    gain = sum(1 / math.log2(rank + 2) for rank, d in enumerate(ranking[:10]) if d in relevant)
    ideal = sum(1 / math.log2(rank + 2) for rank in range(min(10, len(relevant))))
    return gain / ideal


def quality(library: DocumentLibrary, limit: int) -> None:
    relevant = relevant_documents()
    queries = [q for q in read_jsonl(SCIFACT / "queries-test.jsonl") if q["_id"] in relevant]
    queries = queries[:limit]
    print(f"quality on SciFact test ({len(queries)} claims; a document ranks by its best chunk)")
    for mode in ("keyword", "dense", "hybrid"):
        recall, ndcg = [], []
        for query in queries:
            ranking = document_ranking(library, query["text"], mode)
            wanted = relevant[query["_id"]]
            recall.append(len(wanted & set(ranking[:5])) / len(wanted))
            ndcg.append(ndcg_at_10(ranking, wanted))
        label = {"keyword": "BM25 (FTS5)", "dense": "dense (MiniLM)", "hybrid": "hybrid (RRF)"}
        print(
            f"  {label[mode]:<15} recall@5 {statistics.mean(recall):.3f}  "
            f"nDCG@10 {statistics.mean(ndcg):.3f}"
        )
    gate(library, queries)


def gate(library: DocumentLibrary, queries: list[dict[str, str]]) -> None:
    """The "documents do not contain it" gate: kept for real claims, refused for strangers."""
    kept = [
        library.search("scifact", q["text"], k=1)[0].similarity >= MIN_SIMILARITY for q in queries
    ]
    strangers = [
        row["text"]
        for row in read_jsonl(EVAL / "routing-dev.jsonl")
        if row["source"].startswith("clinc150")
    ][:100]
    refused = [library.search("scifact", q, k=1)[0].similarity < MIN_SIMILARITY for q in strangers]
    print(
        f"relevance gate (similarity >= {MIN_SIMILARITY}): keeps the top hit for "
        f"{np.mean(kept):.0%} of SciFact claims; says 'not in the documents' for "
        f"{np.mean(refused):.0%} of {len(strangers)} everyday requests (CLINC150)"
    )


def synthetic_library(embedder: Embedder, size: int, source: DocumentLibrary) -> DocumentLibrary:
    """``size`` chunks: SciFact's chunk texts repeated, with random unit vectors."""
    library = DocumentLibrary(home(f"synthetic-{size}"), embedder)
    collection = library.store.add_sources(f"synthetic-{size}", [])
    if library.store.counts(collection)[1] >= size:
        return library
    ids, _ = source.store.vectors(source.store.require("scifact"))
    texts = [chunk.text for chunk in source.store.chunks(ids.tolist()).values()]
    rng = np.random.default_rng(0)
    per_file = 100
    for start in range(0, size, per_file):
        chunks = [Chunk(texts[(start + i) % len(texts)], None, 1, 1, i) for i in range(per_file)]
        vectors = rng.standard_normal((per_file, 384)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        library.store.save_indexed(
            collection,
            f"/synthetic/{start}.txt",
            FileStat(1, 1),
            sha256=str(start),
            kind="text",
            chunks=chunks,
            vectors=vectors,
        )
    return library


def latency(embedder: Embedder, source: DocumentLibrary, queries: list[str]) -> None:
    for size in (10_000, 100_000):
        library = synthetic_library(embedder, size, source)
        name = f"synthetic-{size}"
        library.search(name, "warm up", k=5)  # loads (or builds) the vector index
        for query in queries[:10]:
            library.search(name, query, k=5)
        times = []
        for query in queries:
            started = time.perf_counter()
            library.search(name, query, k=5)
            times.append((time.perf_counter() - started) * 1000)
        print(
            f"query latency at {size:,} chunks ({len(queries)} queries, hybrid, k=5): "
            f"{percentiles(times)} (aim p95 <= 50 ms)"
        )
        legs(embedder, library, name, queries)
        library.close()


def percentiles(times: list[float]) -> str:
    ordered = sorted(times)
    p95 = ordered[int(len(ordered) * 0.95) - 1]
    return f"p50 {statistics.median(ordered):.1f} ms, p95 {p95:.1f} ms"


def legs(embedder: Embedder, library: DocumentLibrary, name: str, queries: list[str]) -> None:
    """Each leg of the search alone, one after the other (in a search, the keyword leg runs
    beside the other two)."""
    store = library.store
    collection = store.require(name)
    vectors = library.vectors(collection)
    times: dict[str, list[float]] = {"embed": [], "faiss": [], "keyword": [], "fetch": []}

    def timed(leg: str, work: Callable[..., object], *args: object) -> None:
        started = time.perf_counter()
        work(*args)
        times[leg].append((time.perf_counter() - started) * 1000)

    def keywords(words: list[str]) -> None:
        match = keyword_query(words, store.term_counts(words), store.chunk_total())
        if match is not None:
            store.keyword_search(collection, match, CANDIDATES)

    for query in queries:
        vector = embedder.encode([query])[0]
        timed("embed", embedder.encode, [query])
        timed("faiss", vectors.search, vector, CANDIDATES)
        timed("keyword", keywords, keyword_words(query))
        timed("fetch", store.chunks, [chunk_id for chunk_id, _ in vectors.search(vector, 5)])
    print("  legs alone: " + "; ".join(f"{leg} {percentiles(t)}" for leg, t in times.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ingest-docs", type=int, default=600, help="0 skips ingestion")
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    embedder = Embedder()
    embedder.load()
    corpus = read_jsonl(SCIFACT / "corpus.jsonl")
    if args.ingest_docs:
        ingestion(embedder, corpus[: args.ingest_docs])
    library = scifact_library(embedder)
    quality(library, args.queries)
    claims = [q["text"] for q in read_jsonl(SCIFACT / "queries-test.jsonl")][:200]
    latency(embedder, library, claims)
    library.close()


if __name__ == "__main__":
    main()
