"""The core facade that the CLI and the window both drive: catalog, conversations and engine.

Built once at start-up (the composition root passes it down); nothing here is a global.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from dataclasses import dataclass, replace

import sqlite_utils

from app.core.catalog import Catalog, CatalogEntry
from app.core.documents.grounding import (
    RETRIEVE,
    Grounding,
    any_relevant,
    ground,
    model_budget_chars,
)
from app.core.documents.library import DocumentLibrary
from app.core.documents.search import SearchHit
from app.core.embedded import prepare_model
from app.core.embedder import Embedder
from app.core.engine.client import EngineClient
from app.core.engine.protocol import (
    ChatMessage,
    GenerationStats,
    LoadModel,
    ModelLoaded,
)
from app.core.engine_io import history_for, sampling_for, timings_of
from app.core.errors import CadreError
from app.core.fit import FitAdvice, MemorySnapshot, advise, estimate_need
from app.core.gguf_header import validate_gguf
from app.core.installer import ModelInstaller, installed_state
from app.core.paths import DataPaths, data_paths
from app.core.peak_memory import PeakMemory
from app.core.routing.desk import RoutingDesk, record_of
from app.core.routing.router import RouteDecision
from app.core.settings import (
    Settings,
    effective_context,
    effective_threads,
    gpu_layers_policy,
    load_settings,
    usable_ram,
)
from app.core.storage import ConversationStore, StoredMessage, open_database
from app.core.storage.conversations import RouteRecord
from app.core.storage.corrections import CorrectionStore
from app.core.storage.model_files import Footprint, ModelFileStore
from app.core.tasks import CancelToken, Job, Progress
from app.core.turns import Turns
from specialists import SpecialistManifest


@dataclass(frozen=True)
class ModelReady:
    specialist_id: str
    info: ModelLoaded


@dataclass(frozen=True)
class SpecialistStatus:
    entry: CatalogEntry
    state: str  # "installed", "embedded", "not installed" or "partly downloaded"
    fit: FitAdvice
    user_added: bool  # the user's own manifest (a custom pull or an import), not a built-in
    customised: bool  # the user's own prompt, sampling or context size are in force


@dataclass(frozen=True)
class ReplyChunk:
    text: str


@dataclass(frozen=True)
class Retrieved:
    collection: str
    hits: list[SearchHit]


@dataclass(frozen=True)
class SourcesFound:
    """The document excerpts a reply is grounded in (before its text streams)."""

    grounding: Grounding


ReplyEvent = Progress | ModelReady | ReplyChunk | SourcesFound


class CadreService:
    def __init__(
        self,
        paths: DataPaths | None = None,
        engine: EngineClient | None = None,
        embedder: Embedder | None = None,
        settings: Settings | None = None,
    ) -> None:
        self.paths = (paths or data_paths()).ensure()
        self.settings = settings or load_settings(self.paths.settings)
        self.catalog = Catalog(self.paths)
        self.engine = engine or EngineClient(log_path=self.paths.worker_log)
        self._db: sqlite_utils.Database | None = None
        self._db_lock = threading.RLock()  # one connection, shared by the stores below
        self._conversations: ConversationStore | None = None
        self._model_files: ModelFileStore | None = None
        self.embedder = embedder or Embedder()  # shared by routing and retrieval; loads on use
        self._routing: RoutingDesk | None = None
        self._documents: DocumentLibrary | None = None

    def _database(self) -> sqlite_utils.Database:
        with self._db_lock:
            if self._db is None:
                self._db = open_database(self.paths.database)
            return self._db

    @property
    def conversations(self) -> ConversationStore:
        if self._conversations is None:
            self._conversations = ConversationStore(self._database(), self._db_lock)
        return self._conversations

    @property
    def model_files(self) -> ModelFileStore:
        if self._model_files is None:
            self._model_files = ModelFileStore(self._database(), self._db_lock)
        return self._model_files

    @property
    def routing(self) -> RoutingDesk:
        if self._routing is None:
            self._routing = RoutingDesk(
                self.catalog,
                self.embedder,
                self.paths.cache / "routing",
                CorrectionStore(self._database(), self._db_lock),
                fit=self.fit_advice,
                loaded_path=lambda: self.engine.loaded.path if self.engine.loaded else None,
            )
        return self._routing

    @property
    def documents(self) -> DocumentLibrary:
        if self._documents is None:
            self._documents = DocumentLibrary(self.paths, self.embedder)
        return self._documents

    @property
    def turns(self) -> Turns:
        """Regenerate the last reply, re-run it with another specialist, edit and resend."""
        return Turns(self)

    @property
    def installer(self) -> ModelInstaller:
        return ModelInstaller(self.catalog, self.model_files)

    def overview(self) -> list[SpecialistStatus]:
        """Every specialist with its install state and fit advice (reads files: not for a GUI
        thread)."""
        memory = MemorySnapshot.now()
        return [
            SpecialistStatus(
                entry,
                installed_state(entry),
                self.fit_advice(entry, memory),
                self.catalog.is_user_manifest(entry.manifest),
                self.catalog.is_customised(entry.manifest.id),
            )
            for entry in self.catalog.entries()
        ]

    def fit_advice(self, entry: CatalogEntry, memory: MemorySnapshot | None = None) -> FitAdvice:
        """Will this specialist fit in memory now? Uses its measured footprint once it has run,
        and the RAM budget and GPU setting from Settings."""
        measured = self.model_files.footprint(entry.model_path)
        memory = memory or MemorySnapshot.now()
        memory = replace(
            memory,
            available_ram=usable_ram(self.settings, memory.available_ram),
            free_vram=None if self.settings.gpu_offload == "off" else memory.free_vram,
        )
        return advise(estimate_need(entry, measured), memory)

    def default_specialist(self) -> CatalogEntry:
        """The general-purpose specialist to use when none is asked for: an installed download beats
        the small built-in one."""
        candidates = [entry for entry in self.catalog.ready() if entry.manifest.domain == "general"]
        candidates.sort(key=lambda entry: entry.manifest.model.source == "pypi")
        if not candidates:
            raise CadreError("No general specialist is installed.", hint="Run: cadre pull general")
        return candidates[0]

    def load_specialist(self, specialist_id: str) -> Job[ModelLoaded]:
        entry = self.catalog.require_ready(specialist_id)
        path = yield from prepare_model(entry)
        validate_gguf(path)  # a damaged or hostile file gets a clear error, never reaches llama.cpp
        request = LoadModel(
            path=str(path),
            n_ctx=effective_context(self.settings, entry.manifest.context_size),
            n_threads=effective_threads(self.settings),
            n_batch=512,
            n_gpu_layers=gpu_layers_policy(self.settings),
        )
        if self.engine.loaded != request:
            yield Progress(f"Loading {entry.manifest.name}…")
        info = self.engine.load(request)
        if not info.reused:
            footprint = Footprint(
                info.footprint_ram_bytes, info.footprint_vram_bytes, info.n_ctx, info.n_gpu_layers
            )
            self.model_files.record_footprint(path, entry.manifest.model.source, footprint)
        return info

    def ground(
        self,
        collection: str,
        question: str,
        specialist_id: str,
        hits: list[SearchHit],
        info: ModelLoaded,
    ) -> Grounding:
        """The retrieved excerpts that are relevant and fit the loaded specialist's context (after
        the system prompt, the question and, for template-less models, the transcript primer)."""
        manifest = self.catalog.manifest(specialist_id)
        read = manifest.system_prompt + question
        budget = model_budget_chars(info, manifest.sampling.max_tokens, read)
        return ground(collection, hits, budget)

    def reply(
        self,
        conversation_id: str,
        text: str,
        specialist_id: str,
        cancel: CancelToken | None = None,
        *,
        route: RouteRecord | None = None,
        collection: str | None = None,
    ) -> Generator[ReplyEvent, None, StoredMessage | None]:
        """Store the user's message, stream the specialist's reply, store it when complete.

        With a ``collection``, the reply is grounded in its documents; when none of them looks
        relevant, the reply says so without asking the model (it would guess).
        Returns the stored reply, or ``None`` when it was cancelled before any text came.
        """
        self.conversations.add_message(conversation_id, "user", text.strip(), specialist_id)
        return (
            yield from self.answer(
                conversation_id, text, specialist_id, cancel, route=route, collection=collection
            )
        )

    def reply_routed(
        self,
        conversation_id: str,
        decision: RouteDecision,
        cancel: CancelToken | None = None,
        *,
        collection: str | None = None,
    ) -> Generator[ReplyEvent, None, StoredMessage | None]:
        """:meth:`reply` to a routed message (its text, less any ``@id``) by the specialist the
        router chose; the reply keeps the decision as its route."""
        return self.reply(
            conversation_id,
            decision.text,
            decision.specialist_id,
            cancel,
            route=record_of(decision),
            collection=collection,
        )

    def answer(
        self,
        conversation_id: str,
        text: str,
        specialist_id: str,
        cancel: CancelToken | None = None,
        *,
        route: RouteRecord | None = None,
        collection: str | None = None,
    ) -> Generator[ReplyEvent, None, StoredMessage | None]:
        """Reply to ``text``, the conversation's last message, stored already (:meth:`reply` stores
        it; :class:`~app.core.turns.Turns` answers a stored one again)."""
        retrieved: Retrieved | None = None
        if collection:
            yield Progress(f"Searching the documents of {collection!r}…")
            retrieved = Retrieved(collection, self.documents.search(collection, text, k=RETRIEVE))
            if not any_relevant(retrieved.hits):
                nothing = Grounding(collection, ())
                yield SourcesFound(nothing)
                yield ReplyChunk(answer := nothing.not_found_reply())
                return self.conversations.add_message(
                    conversation_id,
                    "assistant",
                    answer,
                    specialist_id,
                    finish_reason="no_sources",
                    route=route,
                )
        return (
            yield from self._generate_reply(
                conversation_id, text, specialist_id, cancel, route=route, retrieved=retrieved
            )
        )

    def _generate_reply(
        self,
        conversation_id: str,
        text: str,
        specialist_id: str,
        cancel: CancelToken | None,
        *,
        route: RouteRecord | None,
        retrieved: Retrieved | None,
    ) -> Generator[ReplyEvent, None, StoredMessage | None]:
        store = self.conversations
        manifest = self.catalog.manifest(specialist_id)
        with PeakMemory(lambda: self.engine.pid) as peak:
            info = yield from self.load_specialist(specialist_id)
            yield ModelReady(specialist_id, info)
            if cancel is not None and cancel.cancelled:  # stopped while the model loaded
                return None
            history = history_for(manifest, store.messages(conversation_id))
            grounding = None
            if retrieved is not None:  # the model sees the excerpts; the transcript keeps the text
                grounding = self.ground(
                    retrieved.collection, text, specialist_id, retrieved.hits, info
                )
                yield SourcesFound(grounding)
                asked = history[-1].content.removesuffix(text.strip())
                history[-1] = ChatMessage("user", asked + grounding.prompt(text))
            content, stats = yield from self._stream(history, manifest, cancel)
        if not content and stats.finish_reason == "cancelled":
            return None
        sources = tuple(s.as_dict() for s in grounding.sources) if grounding else ()
        return store.add_message(
            conversation_id,
            "assistant",
            content,
            specialist_id,
            finish_reason=stats.finish_reason,
            timings=timings_of(stats, peak.bytes),
            route=route,
            sources=sources,
        )

    def _stream(
        self,
        history: list[ChatMessage],
        manifest: SpecialistManifest,
        cancel: CancelToken | None,
    ) -> Generator[ReplyChunk, None, tuple[str, GenerationStats]]:
        """The engine's text as :class:`ReplyChunk` events; returns it whole, and the stats."""
        stream = self.engine.generate(history, sampling_for(manifest), cancel)
        parts: list[str] = []
        while True:
            try:
                chunk = next(stream)
            except StopIteration as stop:
                return "".join(parts).strip(), stop.value
            parts.append(chunk)
            yield ReplyChunk(chunk)

    def close(self) -> None:
        self.engine.close()
        if self._documents is not None:
            self._documents.close()
            self._documents = None
        if self._db is not None:
            self._db.close()
            self._db, self._conversations, self._model_files = None, None, None
            self._routing = None
