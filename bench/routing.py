"""Routing benchmark: accuracy, macro-F1, per-class F1, confusion matrix and warm latency.

Evaluates on ``../shared/eval/routing-dev.jsonl`` (public labelled requests the manifests never
contain). Compares the classifier methods, picks the low-confidence threshold by 5-fold
cross-validation on the manifests' own examples (not on the evaluation set), and times the full
routing path (``RoutingDesk.route``: embedding, classifier, specialist choice) warm.

Usage: python bench/routing.py [--eval PATH] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # as the app does (app/__init__.py)

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.core.embedder import Embedder
from app.core.routing import router as router_module
from app.core.routing.classifier import CHOSEN, METHODS, Requests
from app.core.routing.training import embed_cached, manifest_examples
from app.core.service import CadreService
from app.core.tasks import run_job
from specialists import load_manifests

EVAL = Path(__file__).resolve().parents[2] / "shared" / "eval" / "routing-dev.jsonl"
THRESHOLDS = (0.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
Labels = npt.NDArray[np.str_]


def predict(
    probabilities: npt.NDArray[np.float64], domains: tuple[str, ...], threshold: float
) -> Labels:
    predicted = np.array(domains)[probabilities.argmax(axis=1)]
    predicted[probabilities.max(axis=1) < threshold] = "general"
    return predicted


def f1_scores(truth: Labels, predicted: Labels, domains: tuple[str, ...]) -> dict[str, float]:
    scores = {}
    for domain in domains:
        tp = int(((predicted == domain) & (truth == domain)).sum())
        wrong = int(((predicted == domain) != (truth == domain)).sum())
        scores[domain] = 2 * tp / (2 * tp + wrong) if tp + wrong else 0.0
    return scores


def cross_validated_threshold(requests: Requests, labels: Labels, folds: int = 5) -> float:
    """The threshold that maximises accuracy on held-out folds of the examples themselves."""
    order = np.random.default_rng(7).permutation(len(labels))
    accuracy = {t: 0.0 for t in THRESHOLDS}
    for fold in range(folds):
        test = order[fold::folds]
        train = np.setdiff1d(order, test)
        model = METHODS[CHOSEN](requests[train], list(labels[train]))
        probabilities = model.probabilities(requests[test])
        for threshold in THRESHOLDS:
            hits = predict(probabilities, model.domains, threshold) == labels[test]
            accuracy[threshold] += hits.mean() / folds
    return max(THRESHOLDS, key=lambda t: (round(accuracy[t], 3), t))


def print_confusion(truth: Labels, predicted: Labels, domains: tuple[str, ...]) -> None:
    print("confusion (rows: true domain, columns: routed to)")
    print(" " * 10 + "".join(f"{d:>9}" for d in domains))
    for actual in domains:
        counts = [int(((truth == actual) & (predicted == d)).sum()) for d in domains]
        print(f"{actual:>10}" + "".join(f"{c:>9}" for c in counts))


def time_routing(queries: list[str]) -> tuple[float, float, float]:
    """(start-up s, p50 ms, p95 ms) of the app's routing path, warm, over ``queries``."""
    os.environ["CADRE_HOME"] = tempfile.mkdtemp(prefix="cadre-bench-route-")
    service = CadreService()
    try:
        started = time.perf_counter()
        run_job(service.routing.warm_up())
        startup = time.perf_counter() - started
        for query in queries[:20]:
            service.routing.route(query)
        times = []
        for query in queries:
            begun = time.perf_counter()
            service.routing.route(query)
            times.append((time.perf_counter() - begun) * 1000)
        times.sort()
        return startup, statistics.median(times), times[int(len(times) * 0.95) - 1]
    finally:
        service.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--eval", type=Path, default=EVAL)
    parser.add_argument("--limit", type=int, default=0, help="evaluate on the first N rows only")
    args = parser.parse_args()
    lines = args.eval.read_text(encoding="utf-8").split("\n")
    rows = [json.loads(line) for line in lines if line.strip()]
    rows = rows[: args.limit] if args.limit else rows
    embedder = Embedder()
    cache = Path(tempfile.gettempdir()) / "cadre-bench-routing"
    examples = manifest_examples(load_manifests().values())
    vectors = embed_cached(embedder, [e.text for e in examples], cache / "examples")
    training = Requests(vectors, [e.text for e in examples])
    labels = np.array([e.domain for e in examples])
    queries = Requests(
        embed_cached(embedder, [r["text"] for r in rows], cache / "eval"), [r["text"] for r in rows]
    )
    truth = np.array([r["domain"] for r in rows])
    print(
        f"training: {len(examples)} manifest examples; evaluation: {len(rows)} rows ({args.eval.name})"
    )
    for name, train in METHODS.items():
        model = train(training, list(labels))
        predicted = predict(model.probabilities(queries), model.domains, 0.0)
        macro = statistics.mean(f1_scores(truth, predicted, model.domains).values())
        print(f"  {name:<17} accuracy {np.mean(predicted == truth):.3f}  macro-F1 {macro:.3f}")
    threshold = cross_validated_threshold(training, labels)
    model = METHODS[CHOSEN](training, list(labels))
    predicted = predict(model.probabilities(queries), model.domains, threshold)
    per_class = f1_scores(truth, predicted, model.domains)
    print(
        f"\nchosen: {CHOSEN}, threshold {threshold} (5-fold CV on the examples; "
        f"the app uses {router_module.CONFIDENCE_THRESHOLD})"
    )
    print(f"accuracy {np.mean(predicted == truth):.3f}  (aim >= 0.92)")
    print(
        f"macro-F1 {statistics.mean(per_class.values()):.3f}  per class: "
        + ", ".join(f"{d} {s:.2f}" for d, s in per_class.items())
    )
    print_confusion(truth, predicted, model.domains)
    startup, p50, p95 = time_routing([r["text"] for r in rows[:300]])
    print(
        f"\nrouting latency, warm (RoutingDesk.route, 300 queries): p50 {p50:.1f} ms, "
        f"p95 {p95:.1f} ms (aim <= 20)"
    )
    print(
        f"router start-up (embedder load + training from cached example vectors): {startup:.2f} s"
    )


if __name__ == "__main__":
    main()
