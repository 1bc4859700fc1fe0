"""Domain classifiers: which domain a request belongs to, with probabilities.

Methods compared by ``bench/routing.py`` on public labelled data the manifests never saw: nearest
centroid, k nearest examples and logistic regression on the sentence embeddings; logistic
regression on TF-IDF words (lexical); and a blend of nearest examples with the lexical model, which
catches domain words ("plaintiff", "dosage") the embedding blurs. The blend's weight was chosen by
5-fold cross-validation on the examples. The router uses the method that measured best
(:data:`CHOSEN`); the others stay for the benchmark.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Matrix = npt.NDArray[np.float32]
Probabilities = npt.NDArray[np.float64]
BLEND_LEXICAL_WEIGHT = 0.3  # 5-fold CV on the examples: 0.2-0.4 best (96.1-96.2 %), 0 gives 95.7 %


@dataclass(frozen=True)
class Requests:
    """Requests as the classifiers see them: their embeddings and their words."""

    vectors: Matrix
    texts: Sequence[str]

    def __getitem__(self, rows: npt.NDArray[np.intp]) -> Requests:
        return Requests(self.vectors[rows], [self.texts[int(i)] for i in rows])


class DomainModel(Protocol):
    @property
    def domains(self) -> tuple[str, ...]: ...

    def probabilities(self, requests: Requests) -> Probabilities:
        """One row per request, one column per domain, rows summing to 1."""
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
    def train(cls, requests: Requests, labels: Sequence[str]) -> CentroidModel:
        vectors = requests.vectors
        domains = _domains(labels)
        rows = np.array(labels)
        centroids = np.stack([vectors[rows == d].mean(axis=0) for d in domains])
        centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
        return cls(domains, centroids.astype(np.float32))

    def probabilities(self, requests: Requests) -> Probabilities:
        similarity = requests.vectors @ self.centroids.T
        return _softmax(similarity.astype(np.float64) / self.temperature)


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
    def train(cls, requests: Requests, labels: Sequence[str], k: int = 10) -> NearestExamplesModel:
        return cls(_domains(labels), requests.vectors, np.array(labels), k)

    def probabilities(self, requests: Requests) -> Probabilities:
        similarity = requests.vectors @ self.examples.T
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
    def train(
        cls, requests: Requests, labels: Sequence[str], strength: float = 10.0
    ) -> LogisticModel:
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=strength, class_weight="balanced", max_iter=2000)
        model.fit(requests.vectors, list(labels))
        domains = tuple(str(c) for c in model.classes_)
        return cls(domains, model.coef_.astype(np.float64), model.intercept_.astype(np.float64))

    def probabilities(self, requests: Requests) -> Probabilities:
        # The fitted linear map, applied directly: no scikit-learn call on the routing path.
        return _softmax(requests.vectors.astype(np.float64) @ self.weights.T + self.bias)


@dataclass
class LexicalModel:
    """Logistic regression on TF-IDF word and word-pair counts (scikit-learn)."""

    domains: tuple[str, ...]
    vectorizer: Any
    model: Any

    @classmethod
    def train(
        cls, requests: Requests, labels: Sequence[str], strength: float = 30.0
    ) -> LexicalModel:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, stop_words="english")
        model = LogisticRegression(C=strength, class_weight="balanced", max_iter=3000)
        model.fit(vectorizer.fit_transform(requests.texts), list(labels))
        return cls(tuple(str(c) for c in model.classes_), vectorizer, model)

    def probabilities(self, requests: Requests) -> Probabilities:
        features = self.vectorizer.transform(requests.texts)
        return np.asarray(self.model.predict_proba(features), dtype=np.float64)


@dataclass
class BlendModel:
    """Nearest examples and the lexical model, probabilities averaged with a fixed weight."""

    semantic: NearestExamplesModel
    lexical: LexicalModel
    lexical_weight: float = BLEND_LEXICAL_WEIGHT

    @property
    def domains(self) -> tuple[str, ...]:
        return self.semantic.domains

    @classmethod
    def train(cls, requests: Requests, labels: Sequence[str]) -> BlendModel:
        blend = cls(
            NearestExamplesModel.train(requests, labels), LexicalModel.train(requests, labels)
        )
        assert blend.semantic.domains == blend.lexical.domains  # both sorted
        return blend

    def probabilities(self, requests: Requests) -> Probabilities:
        weight = self.lexical_weight
        semantic = self.semantic.probabilities(requests)
        return (1 - weight) * semantic + weight * self.lexical.probabilities(requests)


Trainer = Callable[[Requests, Sequence[str]], DomainModel]
METHODS: dict[str, Trainer] = {
    "centroid": CentroidModel.train,
    "nearest-examples": NearestExamplesModel.train,
    "logistic": LogisticModel.train,
    "lexical": LexicalModel.train,
    "blend": BlendModel.train,
}
CHOSEN = "blend"
