"""Route each request to the best specialist: a domain classifier over sentence embeddings, then the
best available specialist of that domain on this machine.

Decision order: an explicit choice (``@code …``, ``--specialist``, the picker); a question very like
one the user corrected before; a follow-up that stays with the conversation's specialist unless it
clearly belongs elsewhere; the classifier, with ``general`` below the confidence threshold. Among
the specialists of the chosen domain, only installed ones that fit in memory answer; a better one
that is missing is named, with its download size and fit verdict.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from app.core.catalog import Catalog, CatalogEntry
from app.core.embedder import Embedder
from app.core.errors import CadreError
from app.core.fit import FitAdvice, Verdict
from app.core.routing.classifier import CHOSEN, METHODS, DomainModel, Matrix, Requests
from app.core.routing.training import (
    ROUTING_TOKENS,
    LabelledText,
    bundled_vectors_path,
    embed_cached,
    manifest_examples,
)
from app.core.units import human_bytes
from specialists.loader import DOMAINS

CONFIDENCE_THRESHOLD = 0.3  # below: general (5-fold cross-validation on the examples; bench)
FOLLOW_UP_SWITCH = 0.8  # a follow-up leaves its conversation's specialist only above this
CORRECTION_SIMILARITY = 0.88  # this close to a corrected question: route as corrected
NEAR_EQUAL = 0.05  # scores this close: prefer the model that is already loaded
FALLBACK_DOMAIN = "general"
_MENTION = re.compile(r"^\s*@([a-z0-9][a-z0-9-]{0,63})\b[\s:,]*", re.IGNORECASE)


@dataclass(frozen=True)
class Suggestion:
    """A better specialist this machine does not have ready."""

    specialist_id: str
    name: str
    why: str  # "not installed (2.1 GB download, fits)" or "won't fit: …"

    def as_text(self) -> str:
        return f"{self.name} would suit this better; it is {self.why}."

    def as_command_hint(self) -> str:
        """For the terminal: the sentence and the command that installs it."""
        if self.why.startswith("not installed"):
            return f"{self.as_text()} Get it with: cadre pull {self.specialist_id}"
        return self.as_text()


@dataclass(frozen=True)
class RouteDecision:
    specialist_id: str
    domain: str
    confidence: float
    scores: dict[str, float]
    runner_up: str
    reason: str
    text: str  # the request, without an @mention
    suggestion: Suggestion | None = None
    forced: bool = False  # chosen by the user (@id, --specialist, the picker), not by the router

    def as_dict(self) -> dict[str, object]:
        return {
            "specialist": self.specialist_id,
            "domain": self.domain,
            "confidence": round(self.confidence, 4),
            "scores": {d: round(s, 4) for d, s in self.scores.items()},
            "runner_up": self.runner_up,
            "reason": self.reason,
            "suggestion": self.suggestion.as_command_hint() if self.suggestion else None,
        }


@dataclass
class RoutingContext:
    """What the router may know beyond the text: the conversation's specialist, the loaded model,
    and fit advice (computed by the caller, which owns memory figures)."""

    previous_specialist: str | None = None
    loaded_specialist: str | None = None
    among: str = "installed"  # or "all": route as if every specialist were installed
    fit: Callable[[CatalogEntry], FitAdvice] | None = None
    forced: str | None = None


def split_mention(text: str) -> tuple[str | None, str]:
    """``"@code fix this"`` -> ``("code", "fix this")``; no mention -> ``(None, text)``."""
    match = _MENTION.match(text)
    if match is None:
        return None, text
    return match.group(1).lower(), text[match.end() :]


class Router:
    def __init__(self, catalog: Catalog, embedder: Embedder, cache_dir: Path) -> None:
        self._catalog = catalog
        self._embedder = embedder
        self._cache_dir = cache_dir
        self._model: DomainModel | None = None
        self._corrections: list[LabelledText] = []
        self._correction_vectors = np.zeros((0, 384), dtype=np.float32)

    @property
    def ready(self) -> bool:
        return self._model is not None

    def train(self, corrections: list[LabelledText] | None = None) -> None:
        """(Re)build the classifier from the manifests and the user's corrections."""
        self._corrections = list(corrections or [])
        rows = manifest_examples(self._catalog.manifests()) + self._corrections
        texts = [r.text for r in rows]
        vectors = embed_cached(self._embedder, texts, self._cache_dir, bundled_vectors_path())
        requests = Requests(vectors, texts)
        self._model = METHODS[CHOSEN](requests, [r.domain for r in rows])
        self._correction_vectors = vectors[len(rows) - len(self._corrections) :]

    def domain_scores(self, vector: Matrix, text: str) -> dict[str, float]:
        if self._model is None:
            self.train()
        assert self._model is not None
        probabilities = self._model.probabilities(Requests(vector[None, :], [text]))[0]
        return {d: float(p) for d, p in zip(self._model.domains, probabilities, strict=True)}

    def route(self, text: str, context: RoutingContext | None = None) -> RouteDecision:
        context = context or RoutingContext()
        mention, body = split_mention(text)
        forced = context.forced or mention
        if forced:
            return self._forced(forced, body, context)
        if not body.strip():
            raise CadreError("There is nothing to route: the request is empty.")
        vector = self._embedder.encode([body], max_tokens=ROUTING_TOKENS)[0]
        scores = self.domain_scores(vector, body)
        domain, reason = self._pick_domain(vector, scores, context)
        return self._decide(domain, scores, reason, body, context)

    def _pick_domain(
        self, vector: Matrix, scores: dict[str, float], context: RoutingContext
    ) -> tuple[str, str]:
        top = max(scores, key=scores.__getitem__)
        corrected = self._corrected_domain(vector)
        if corrected is not None:
            return corrected, "like a question you corrected before"
        previous = self._domain_of(context.previous_specialist)
        if previous is not None and top != previous and scores[top] < FOLLOW_UP_SWITCH:
            return previous, "follow-up: stays with the conversation's specialist"
        if scores[top] < CONFIDENCE_THRESHOLD:
            return FALLBACK_DOMAIN, f"low confidence ({scores[top]:.0%} {top}): general"
        return top, f"{top} ({scores[top]:.0%})"

    def _corrected_domain(self, vector: Matrix) -> str | None:
        if not self._corrections:
            return None
        similarity = self._correction_vectors @ vector
        best = int(np.argmax(similarity))
        if similarity[best] >= CORRECTION_SIMILARITY:
            return self._corrections[best].domain
        return None

    def _domain_of(self, specialist_id: str | None) -> str | None:
        if specialist_id is None or specialist_id not in self._catalog.ids():
            return None
        return self._catalog.manifest(specialist_id).domain

    def _forced(self, forced: str, body: str, context: RoutingContext) -> RouteDecision:
        ids = self._catalog.ids()
        if forced in ids:
            domain = self._catalog.manifest(forced).domain
            scores = {d: float(d == domain) for d in DOMAINS}
            reason = f"chosen by you (@{forced})"
            return RouteDecision(forced, domain, 1.0, scores, "", reason, body, forced=True)
        if forced in DOMAINS:
            scores = {d: float(d == forced) for d in DOMAINS}
            decided = self._decide(forced, scores, f"chosen by you (@{forced})", body, context)
            return replace(decided, forced=True)
        raise CadreError(
            f"There is no specialist or domain '@{forced}'.",
            hint=f"Specialists: {', '.join(ids)}. Domains: {', '.join(DOMAINS)}.",
        )

    def _decide(
        self, domain: str, scores: dict[str, float], reason: str, text: str, context: RoutingContext
    ) -> RouteDecision:
        chooser = _SpecialistChooser(self._catalog, context)
        best, suggestion = chooser.best_for(domain)
        if best is None:  # nothing usable in that domain: the best general one answers
            best, _ = chooser.best_for(FALLBACK_DOMAIN)
            reason += f"; no {domain} specialist is ready, so general answers"
        if best is None:
            raise CadreError("No specialist is ready to answer.", hint="Run: cadre setup")
        ranked = sorted(scores, key=scores.__getitem__, reverse=True)
        runner_up = next((d for d in ranked if d != domain), "")
        best = chooser.prefer_loaded(best, domain, runner_up, scores)
        confidence = scores.get(domain, 0.0)
        return RouteDecision(best, domain, confidence, scores, runner_up, reason, text, suggestion)


class _SpecialistChooser:
    """Picks among the specialists of one domain what this machine can run."""

    def __init__(self, catalog: Catalog, context: RoutingContext) -> None:
        self._catalog = catalog
        self._context = context

    def _candidates(self, domain: str) -> list[CatalogEntry]:
        entries = [e for e in self._catalog.entries() if e.manifest.domain == domain]
        return sorted(entries, key=_strength, reverse=True)

    def best_for(self, domain: str) -> tuple[str | None, Suggestion | None]:
        suggestion: Suggestion | None = None
        for entry in self._candidates(domain):
            usable, why = self._usable(entry)
            if usable:
                return entry.manifest.id, suggestion
            if suggestion is None:
                suggestion = Suggestion(entry.manifest.id, entry.manifest.name, why)
        return None, suggestion

    def _usable(self, entry: CatalogEntry) -> tuple[bool, str]:
        fit = self._context.fit(entry) if self._context.fit else None
        if fit is not None and fit.verdict is Verdict.WONT_FIT:
            return False, f"too big for the memory free now ({fit.summary})"
        if entry.ready or self._context.among == "all":
            return True, ""
        size = human_bytes(entry.manifest.model.size_bytes)
        verdict = f", {fit.verdict.value}" if fit is not None else ""
        return False, f"not installed ({size} download{verdict})"

    def prefer_loaded(
        self, best: str, domain: str, runner_up: str, scores: dict[str, float]
    ) -> str:
        loaded = self._context.loaded_specialist
        if loaded is None or loaded == best or loaded not in self._catalog.ids():
            return best
        loaded_domain = self._catalog.manifest(loaded).domain
        # abs: a corrected or follow-up domain may score far below the runner-up; no tie
        close = loaded_domain == runner_up and abs(scores[domain] - scores[runner_up]) <= NEAR_EQUAL
        if close and self._usable(self._catalog.entry(loaded))[0]:
            return loaded
        return best


def _strength(entry: CatalogEntry) -> tuple[bool, int]:
    """Downloaded specialists before the small embedded one; then the bigger model."""
    model = entry.manifest.model
    return model.source != "pypi", model.size_bytes
