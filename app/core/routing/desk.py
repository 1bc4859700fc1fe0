"""Routing as the app uses it: the router plus what it needs from the rest of Cadre (the
conversation's last specialist, the loaded model, fit advice, stored corrections)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from app.core.catalog import Catalog, CatalogEntry
from app.core.embedder import Embedder
from app.core.fit import FitAdvice
from app.core.routing.router import RouteDecision, Router, RoutingContext
from app.core.routing.training import LabelledText
from app.core.storage.conversations import ConversationStore, RouteRecord
from app.core.storage.corrections import CorrectionStore
from app.core.tasks import Job, Progress

FIT_CACHE_S = 10.0  # fit advice reads model headers and memory: reuse it for a few seconds


class RoutingDesk:
    def __init__(
        self,
        catalog: Catalog,
        embedder: Embedder,
        cache_dir: Path,
        corrections: CorrectionStore,
        *,
        fit: Callable[[CatalogEntry], FitAdvice],
        loaded_path: Callable[[], str | None],
    ) -> None:
        self._catalog = catalog
        self._router = Router(catalog, embedder, cache_dir)
        self._embedder = embedder
        self._corrections = corrections
        self._fit = fit
        self._loaded_path = loaded_path
        self._fit_cache: dict[str, tuple[float, FitAdvice]] = {}
        self._trained_on: tuple[str, ...] = ()

    def warm_up(self) -> Job[None]:
        """Load the embedder and train the router (seconds, the first time): off the GUI thread."""
        if not self._embedder.loaded:
            yield Progress("Loading the router…")
        self._embedder.load()  # the shipped example vectors spare encoding, not the model load
        self._ensure_trained()

    def _ensure_trained(self) -> None:
        ids = tuple(self._catalog.ids())
        if not self._router.ready or ids != self._trained_on:
            self._router.train(self._stored_corrections())
            self._trained_on = ids

    def _stored_corrections(self) -> list[LabelledText]:
        return [LabelledText(t, d, s) for t, s, d in self._corrections.all()]

    def route(
        self,
        text: str,
        *,
        previous_specialist: str | None = None,
        among: str = "installed",
        forced: str | None = None,
    ) -> RouteDecision:
        self._ensure_trained()
        context = RoutingContext(
            previous_specialist=previous_specialist,
            loaded_specialist=self._loaded_specialist(),
            among=among,
            fit=self._cached_fit,
            forced=forced,
        )
        return self._router.route(text, context)

    def correct(self, text: str, specialist_id: str) -> None:
        """Remember that ``text`` belongs to ``specialist_id``; it becomes a training example."""
        domain = self._catalog.manifest(specialist_id).domain
        self._corrections.add(text, specialist_id, domain)
        self._router.train(self._stored_corrections())

    def last_specialist(self, store: ConversationStore, conversation_id: str | None) -> str | None:
        if conversation_id is None:
            return None
        replies = [m for m in store.messages(conversation_id) if m.role == "assistant"]
        return replies[-1].specialist_id if replies else None

    def _loaded_specialist(self) -> str | None:
        path = self._loaded_path()
        if path is None:
            return None
        users = self._catalog.users_of(Path(path))
        return users[0].id if users else None

    def _cached_fit(self, entry: CatalogEntry) -> FitAdvice:
        key = entry.manifest.id
        now = time.monotonic()
        cached = self._fit_cache.get(key)
        if cached is None or now - cached[0] > FIT_CACHE_S:
            cached = (now, self._fit(entry))
            self._fit_cache[key] = cached
        return cached[1]


def record_of(decision: RouteDecision) -> RouteRecord:
    return RouteRecord(
        specialist=decision.specialist_id,
        domain=decision.domain,
        confidence=decision.confidence,
        runner_up=decision.runner_up,
        reason=decision.reason,
        scores=decision.scores,
        forced=decision.forced,
    )
