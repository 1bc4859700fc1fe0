"""Domain classifiers over sentence embeddings: which domain a request belongs to, with probabilities.

Three methods, compared by ``bench/routing.py`` on public labelled data the manifests never saw:
nearest centroid, k nearest examples, and logistic regression on the embeddings. The router uses the
one that measured best (:data:`CHOSEN`); the others stay for the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]


class DomainModel(Protocol):
    domains: tuple[str, ...]

    def probabilities(self, vectors: Matrix) -> npt.NDArray[np.float64]:
        """One row per vector, one column per domain, rows summing to 1."""
        ...


def _softmax(scores: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


def _domains(labels: Sequence[str]) -> tuple[str, ...]:
    return tuple(sorted(set(labels)))


@dataclass
class CentroidModel:
    domains: tuple[str, ...]
    centroids: Matrix
    temperature: float = 0.05

    @classmethod
    def train(cls, vectors: Matrix, labels: Sequence[str]) -> CentroidModel:
        domains = _domains(labels)
        rows = np.array(labels)
        centroids = np.stack([vectors[rows == d].mean(axis=0) for d in domains])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        return cls(domains, centroids.astype(np.float32))

    def probabilities(self, vectors: Matrix) -> npt.NDArray[np.float64]:
        return _softmax((vectors @ self.centroids.T).astype(np.float64) / self.temperature)


@dataclass
class NearestExamplesModel:
    """Mean similarity of the ``k`` most similar examples of each domain."""

    domains: tuple[str, ...]
    examples: Matrix
    labels: npt.NDArray[np.str_]
    k: int = 10
    temperature: float = 0.05

    def __post_init__(self) -> None:
        """Each domain's examples are contiguous (sorted at training): remember where."""
        order = np.argsort(self.labels, kind="stable")
        self.examples, self.labels = self.examples[order], self.labels[order]
        self._bounds = []
        for domain in self.domains:
            rows = np.flatnonzero(self.labels == domain)
            self._bounds.append((int(rows[0]), int(rows[-1]) + 1))

    @classmethod
    def train(cls, vectors: Matrix, labels: Sequence[str], k: int = 10) -> NearestExamplesModel:
        return cls(_domains(labels), vectors, np.array(labels), k)

    def probabilities(self, vectors: Matrix) -> npt.NDArray[np.float64]:
        similarity = vectors @ self.examples.T
        columns = []
        for start, end in self._bounds:
            own = similarity[:, start:end]
            k = min(self.k, end - start)
            top = np.partition(own, own.shape[1] - k, axis=1)[:, own.shape[1] - k :]
            columns.append(top.mean(axis=1))
        return _softmax(np.stack(columns, axis=1).astype(np.float64) / self.temperature)


@dataclass
class LogisticModel:
    """Multinomial logistic regression (scikit-learn), classes weighted by their frequency."""

    domains: tuple[str, ...]
    weights: npt.NDArray[np.float64]
    bias: npt.NDArray[np.float64]

    @classmethod
    def train(cls, vectors: Matrix, labels: Sequence[str], strength: float = 10.0) -> LogisticModel:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=strength, class_weight="balanced", max_iter=2000)
        model.fit(vectors, list(labels))
        domains = tuple(str(c) for c in model.classes_)
        return cls(domains, model.coef_.astype(np.float64), model.intercept_.astype(np.float64))

    def probabilities(self, vectors: Matrix) -> npt.NDArray[np.float64]:
        # The fitted linear map, applied directly: no scikit-learn call on the routing path.
        return _softmax(vectors.astype(np.float64) @ self.weights.T + self.bias)


Trainer = Callable[[Matrix, Sequence[str]], DomainModel]
METHODS: dict[str, Trainer] = {
    "centroid": CentroidModel.train,
    "nearest-examples": NearestExamplesModel.train,
    "logistic": LogisticModel.train,
}
CHOSEN = "nearest-examples"
