"""Routing with the real embedder (all-MiniLM-L6-v2) over the real manifests: domains, the
confidence threshold, follow-ups, overrides, corrections, machine awareness, and the record."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.core.catalog import CatalogEntry
from app.core.embedder import Embedder
from app.core.errors import CadreError
from app.core.fit import FitAdvice, MemoryNeed, MemorySnapshot, Verdict
from app.core.paths import DataPaths
from app.core.routing import router as router_module
from app.core.routing.router import RouteDecision, split_mention
from app.core.routing.training import (
    ROUTING_TOKENS,
    bundled_vectors_path,
    manifest_examples,
    text_key,
)
from app.core.service import CadreService
from app.core.tasks import run_job
from specialists import load_manifests
from tests.conftest import install_specialist


@pytest.fixture
def router_service(
    paths: DataPaths, embedder: Embedder, routing_ready: Path
) -> Iterator[CadreService]:
    service = CadreService(paths, embedder=embedder)
    yield service
    service.close()


def route_all(service: CadreService, text: str, **kwargs: object) -> RouteDecision:
    return service.routing.route(text, among="all", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "domain"),
    [
        ("Why does my Python script raise KeyError when I read a missing dict key?", "code"),
        ("Solve for x: 3x + 7 = 22", "math"),
        ("What are the common side effects of metformin?", "medical"),
        ("Can my landlord keep my deposit for normal wear and tear?", "legal"),
        ("Suggest a three-day itinerary for Lisbon in spring.", "general"),
    ],
)
def test_clear_requests_reach_their_domain(
    router_service: CadreService, text: str, domain: str
) -> None:
    decision = route_all(router_service, text)
    assert (decision.domain, decision.specialist_id) == (domain, domain)
    assert decision.confidence == decision.scores[domain] > router_module.CONFIDENCE_THRESHOLD
    assert abs(sum(decision.scores.values()) - 1) < 1e-6
    assert decision.runner_up and decision.runner_up != domain


def test_below_the_threshold_general_answers_and_says_why(
    router_service: CadreService, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "Solve for x: 3x + 7 = 22"
    monkeypatch.setattr(router_module, "CONFIDENCE_THRESHOLD", 0.9999)
    decision = route_all(router_service, text)
    assert decision.domain == "general" and decision.specialist_id == "general"
    assert decision.reason.startswith("low confidence") and "math" in decision.reason
    monkeypatch.setattr(router_module, "CONFIDENCE_THRESHOLD", 0.0)
    assert route_all(router_service, text).domain == "math"


def test_a_follow_up_stays_unless_it_clearly_belongs_elsewhere(
    router_service: CadreService,
) -> None:
    follow_up = route_all(router_service, "and what about the dose?", previous_specialist="medical")
    assert follow_up.specialist_id == "medical"
    assert follow_up.reason.startswith("follow-up") or follow_up.domain == "medical"
    elsewhere = route_all(
        router_service,
        "Write a Python function that merges two sorted lists.",
        previous_specialist="medical",
    )
    assert elsewhere.specialist_id == "code"


def test_an_at_mention_or_a_flag_overrides_the_router(router_service: CadreService) -> None:
    decision = route_all(router_service, "@legal what is 2 + 2?")
    assert decision.specialist_id == "legal" and decision.reason == "chosen by you (@legal)"
    assert decision.text == "what is 2 + 2?"
    forced = router_service.routing.route("what is 2 + 2?", forced="medical", among="all")
    assert forced.specialist_id == "medical"
    with pytest.raises(CadreError, match="no specialist or domain '@nobody'"):
        route_all(router_service, "@nobody hello")
    assert split_mention("email me @ noon") == (None, "email me @ noon")


def test_a_correction_is_remembered_and_used(
    router_service: CadreService, paths: DataPaths, embedder: Embedder
) -> None:
    text = "What is the statute of limitations for medical malpractice claims?"
    first = route_all(router_service, text)
    target = "medical" if first.domain != "medical" else "general"
    router_service.routing.correct(text, target)
    again = route_all(router_service, text)
    assert again.domain == target and again.reason == "like a question you corrected before"
    later = CadreService(paths, embedder=embedder)
    try:
        assert route_all(later, text).domain == target  # stored, not just in memory
    finally:
        later.close()


def test_missing_specialists_are_named_with_their_cost(router_service: CadreService) -> None:
    decision = router_service.routing.route("Fix this SQL: SELECT * FORM users")
    assert decision.domain == "code"
    assert decision.specialist_id == "starter"  # the only one installed
    assert "no code specialist is ready" in decision.reason
    assert decision.suggestion is not None and decision.suggestion.specialist_id == "code"
    assert "GB download" in decision.suggestion.why and "cadre" not in decision.suggestion.why
    assert decision.suggestion.as_command_hint().endswith("Get it with: cadre pull code")


def test_an_installed_specialist_of_the_domain_answers(
    paths: DataPaths, embedder: Embedder, routing_ready: Path, tiny_model: Path
) -> None:
    install_specialist(paths, "tiny-coder", tiny_model, domain="code")
    service = CadreService(paths, embedder=embedder)
    try:
        decision = service.routing.route("Fix this SQL: SELECT * FORM users")
        assert decision.specialist_id == "tiny-coder"
        # the built-in Code model is bigger than this one, so it is still worth naming
        assert decision.suggestion is not None and decision.suggestion.specialist_id == "code"
    finally:
        service.close()


def test_a_specialist_that_will_not_fit_is_passed_over(router_service: CadreService) -> None:
    huge = MemoryNeed(10**12, 0, 0, "estimate")

    def fit(entry: CatalogEntry) -> FitAdvice:
        memory = MemorySnapshot(available_ram=8 * 10**9, free_vram=None)
        verdict = Verdict.WONT_FIT if entry.manifest.id == "math" else Verdict.FITS
        return FitAdvice(verdict, huge, 10**12, 0, memory, f"{verdict.value}: needs a lot")

    router_service.routing._fit = fit  # the memory figures, not the router, are what is faked
    decision = route_all(router_service, "Integrate x^2 e^x dx")
    assert decision.domain == "math" and decision.specialist_id != "math"
    assert decision.suggestion is not None and "too big" in decision.suggestion.why


def test_the_loaded_model_wins_a_near_tie(router_service: CadreService) -> None:
    from app.core.routing.router import RoutingContext, _SpecialistChooser

    catalog = router_service.catalog
    chooser = _SpecialistChooser(catalog, RoutingContext(loaded_specialist="general", among="all"))
    near = {"code": 0.46, "general": 0.44, "math": 0.1}
    assert chooser.prefer_loaded("code", "code", "general", near) == "general"
    clear = {"code": 0.8, "general": 0.1, "math": 0.1}
    assert chooser.prefer_loaded("code", "code", "general", clear) == "code"


def test_every_reply_keeps_its_routing_decision(
    router_service: CadreService, tiny_specialist: str
) -> None:
    service = router_service
    service.catalog.reload()
    decision = service.routing.route("@tiny hello there")
    conversation = service.conversations.create(decision.specialist_id)
    stored = run_job(service.reply_routed(conversation.id, decision))
    assert stored is not None and stored.route is not None
    assert (stored.route.specialist, stored.route.reason) == ("tiny", "chosen by you (@tiny)")
    reread = service.conversations.messages(conversation.id)[-1]
    assert reread.route == stored.route


def test_the_embedder_gives_unit_vectors_the_same_one_by_one_or_in_batches(
    embedder: Embedder,
) -> None:
    texts = ["hello there", "how do I bake bread?"]
    batch = embedder.encode(texts)
    single = embedder.encode(texts[:1])
    assert batch.shape == (2, 384)
    assert abs(float((batch**2).sum(axis=1)[0]) - 1) < 1e-5
    assert abs(batch[0] - single[0]).max() < 1e-5


def test_a_question_embedded_again_is_remembered_not_recomputed(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Routing and then the document search embed the same question: once is enough."""
    real = embedder._encode_one
    computed: list[str] = []

    def counting(text: str) -> Any:
        computed.append(text)
        return real(text)

    monkeypatch.setattr(embedder, "_encode_one", counting)
    question = "Who pays for repairs to the boiler?"
    first = embedder.encode([question])
    first[0, 0] = 42.0  # the caller's copy: what is remembered stays as computed
    again = embedder.encode([question])
    assert computed == [question] and again[0, 0] != 42.0
    shorter = embedder.encode([question], max_tokens=4)  # another reading is another vector
    assert computed == [question, question] and abs(shorter - again).max() > 1e-3


def test_cadre_route_reads_one_query_a_line_and_writes_json_lines() -> None:
    from tests.test_cli import cadre

    result = cadre(
        "route", "--among", "all", stdin="How do I undo a git commit?\nWhat is 17 * 23?\n"
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["query"] for line in lines] == ["How do I undo a git commit?", "What is 17 * 23?"]
    assert [line["specialist"] for line in lines] == ["code", "math"]
    for line in lines:
        assert {"query", "specialist", "domain", "confidence", "scores", "reason"} <= set(line)
        assert set(line["scores"]) == {"general", "code", "math", "medical", "legal"}
    single = cadre("route", "--json", "How do I undo a git commit?")
    decision = json.loads(single.stdout)
    assert decision["specialist"] == "starter" and "cadre pull code" in decision["suggestion"]


def test_cadre_ask_routes_and_says_where_and_why(tiny_specialist: str) -> None:
    from tests.test_cli import cadre

    result = cadre("ask", "Tell me a fun fact about octopuses.")
    assert result.returncode == 0, result.stderr
    assert "→ " in result.stderr and "general" in result.stderr
    forced = cadre("ask", "@tiny hello")
    assert forced.returncode == 0 and "chosen by you (@tiny)" in forced.stderr


def test_the_shipped_example_vectors_cover_every_built_in_example(embedder: Embedder) -> None:
    """Editing a manifest's examples needs `python packaging/routing_vectors.py` (a fresh install
    would otherwise encode the missing ones on first start)."""
    shipped = np.load(bundled_vectors_path())
    keys = dict(zip(shipped["keys"].tolist(), shipped["vectors"].astype(np.float32), strict=True))
    texts = [row.text for row in manifest_examples(load_manifests().values())]
    missing = [text for text in texts if text_key(text) not in keys]
    assert not missing, f"run python packaging/routing_vectors.py ({len(missing)} missing)"
    sample = texts[:: len(texts) // 5]
    fresh = embedder.encode(sample, max_tokens=ROUTING_TOKENS)
    cosine = [float(keys[text_key(t)] @ v) for t, v in zip(sample, fresh, strict=True)]
    assert min(cosine) > 0.999


def test_a_fresh_install_routes_without_encoding_the_examples(
    paths: DataPaths, embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[str] = []
    real_encode = embedder.encode

    def counting_encode(texts: list[str], max_tokens: int | None = None) -> np.ndarray:
        encoded.extend(texts)
        return real_encode(texts, max_tokens)

    monkeypatch.setattr(embedder, "encode", counting_encode)
    service = CadreService(paths, embedder=embedder)
    try:
        assert route_all(service, "Solve for x: 3x + 7 = 22").domain == "math"
    finally:
        service.close()
    assert encoded == ["Solve for x: 3x + 7 = 22"]
