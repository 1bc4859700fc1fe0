"""Regenerate, re-run with another specialist, edit and resend, and each reply's peak memory: the
core facade on tiny models and the real store."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import sqlite_utils

from app.core.embedder import Embedder
from app.core.errors import CadreError
from app.core.fit import Verdict
from app.core.paths import DataPaths
from app.core.peak_memory import PeakMemory
from app.core.routing.router import RouteDecision
from app.core.service import CadreService
from app.core.storage import ConversationStore, StoredMessage, archive, open_database
from app.core.storage.conversations import MessageTimings, RouteRecord
from app.core.storage.db import apply_migrations
from app.core.storage.migrations import MIGRATIONS
from app.core.tasks import CancelToken, run_job
from tests.conftest import SQL_QUESTION


@pytest.fixture
def service(
    paths: DataPaths, tiny_coder: str, embedder: Embedder, routing_ready: Path
) -> Iterator[CadreService]:
    """Two tiny specialists, each with its own model: 'tiny' (general), 'tiny-coder' (code)."""
    svc = CadreService(paths, embedder=embedder)
    yield svc
    svc.close()


def ask(service: CadreService, conversation_id: str, text: str) -> StoredMessage:
    decision = service.routing.route(text)
    reply = run_job(service.reply_routed(conversation_id, decision))
    assert reply is not None
    return reply


def shape(service: CadreService, conversation_id: str) -> list[tuple[str, str, str]]:
    messages = service.conversations.messages(conversation_id)
    return [(m.role, m.content, m.specialist_id) for m in messages]


def fts_is_consistent(db: sqlite_utils.Database) -> bool:
    """FTS5's own check of an external-content index against its table (raises when not)."""
    db.execute("insert into messages_fts(messages_fts, rank) values ('integrity-check', 1)")
    return True


def test_regenerate_replaces_the_last_reply(service: CadreService) -> None:
    conversation = service.conversations.create("")
    first = ask(service, conversation.id, SQL_QUESTION)
    again = run_job(service.turns.regenerate(conversation.id, first.id))
    assert again is not None and again.id != first.id
    assert again.specialist_id == first.specialist_id == "tiny-coder"
    assert again.route == first.route  # the same specialist, for the same reason
    assert shape(service, conversation.id) == [
        ("user", SQL_QUESTION, "tiny-coder"),
        ("assistant", again.content, "tiny-coder"),
    ]
    assert [m.position for m in service.conversations.messages(conversation.id)] == [0, 1]
    assert service.routing._corrections.all() == []


def test_a_reply_that_is_not_written_again_is_put_back(
    service: CadreService, tiny_chat_model: Path
) -> None:
    """Nothing is lost: stopped before any text, or failed, the earlier reply stays."""
    conversation = service.conversations.create("")
    first = ask(service, conversation.id, SQL_QUESTION)
    stopped = CancelToken()
    stopped.cancel()
    assert run_job(service.turns.regenerate(conversation.id, first.id, stopped)) is None
    kept = service.conversations.messages(conversation.id)
    assert shape(service, conversation.id) == [
        ("user", SQL_QUESTION, "tiny-coder"),
        ("assistant", first.content, "tiny-coder"),
    ]
    assert (kept[1].route, kept[1].timings, kept[1].position) == (first.route, first.timings, 1)
    retry = service.turns.drop_reply(conversation.id, kept[1].id)
    tiny_chat_model.rename(tiny_chat_model.with_suffix(".moved"))  # gone before it loads
    try:
        with pytest.raises(CadreError):
            run_job(service.turns.answer_again(retry))
    finally:
        tiny_chat_model.with_suffix(".moved").rename(tiny_chat_model)
    assert shape(service, conversation.id)[-1] == ("assistant", first.content, "tiny-coder")
    assert fts_is_consistent(service._database())


def test_only_the_last_reply_can_be_regenerated(service: CadreService) -> None:
    conversation = service.conversations.create("")
    first = ask(service, conversation.id, "hello there")
    ask(service, conversation.id, "and again")
    question = service.conversations.messages(conversation.id)[0]
    for wrong in (first.id, question.id, "no-such-id"):
        with pytest.raises(CadreError, match="Only the last reply"):
            service.turns.drop_reply(conversation.id, wrong)
    assert len(service.conversations.messages(conversation.id)) == 4  # nothing was deleted


def test_rerunning_a_routed_reply_teaches_the_router(service: CadreService) -> None:
    conversation = service.conversations.create("")
    routed = ask(service, conversation.id, SQL_QUESTION)
    assert routed.route is not None and not routed.route.forced
    events: list[object] = []
    again = run_job(
        service.turns.regenerate(conversation.id, routed.id, specialist_id="tiny"), events.append
    )
    assert again is not None and again.specialist_id == "tiny"
    assert again.route is not None and again.route.forced
    assert again.route.reason == "chosen by you (re-run with Tiny)"
    assert any("Teaching the router" in getattr(e, "message", "") for e in events)
    assert service.routing._corrections.all() == [(SQL_QUESTION, "tiny", "general")]
    learnt = service.routing.route(SQL_QUESTION)
    assert (learnt.specialist_id, learnt.reason) == ("tiny", "like a question you corrected before")


def test_a_correction_is_no_near_tie_for_the_loaded_model(service: CadreService) -> None:
    """The corrected domain may score far below the runner-up; a loaded runner-up model must not
    take the question back."""
    from app.core.routing.router import RoutingContext, _SpecialistChooser

    context = RoutingContext(loaded_specialist="tiny-coder")
    chooser = _SpecialistChooser(service.catalog, context)
    far_below = {"general": 0.2, "code": 0.7}
    assert chooser.prefer_loaded("tiny", "general", "code", far_below) == "tiny"
    near = {"general": 0.45, "code": 0.46}
    assert chooser.prefer_loaded("tiny", "general", "code", near) == "tiny-coder"


def test_rerunning_a_manual_pick_teaches_nothing(service: CadreService) -> None:
    conversation = service.conversations.create("")
    picked = ask(service, conversation.id, f"@tiny-coder {SQL_QUESTION}")
    assert picked.route is not None and picked.route.forced
    again = run_job(service.turns.regenerate(conversation.id, picked.id, specialist_id="tiny"))
    assert again is not None and again.specialist_id == "tiny"
    assert service.routing._corrections.all() == []
    assert service.routing.route(SQL_QUESTION).specialist_id == "tiny-coder"


def test_rerouting_a_manual_pick_lets_the_router_choose(service: CadreService) -> None:
    conversation = service.conversations.create("")
    picked = ask(service, conversation.id, f"@tiny {SQL_QUESTION}")
    events: list[object] = []
    again = run_job(
        service.turns.regenerate(conversation.id, picked.id, reroute=True), events.append
    )
    decisions = [e for e in events if isinstance(e, RouteDecision)]
    assert len(decisions) == 1 and not decisions[0].forced
    assert again is not None and again.specialist_id == decisions[0].specialist_id == "tiny-coder"
    assert again.route is not None and again.route.reason == decisions[0].reason
    assert service.routing._corrections.all() == []


def test_rerun_options_name_the_other_specialists_with_their_scores(
    service: CadreService,
) -> None:
    conversation = service.conversations.create("")
    routed = ask(service, conversation.id, SQL_QUESTION)
    assert routed.route is not None
    options = {o.specialist_id: o for o in service.turns.rerun_options(routed)}
    assert set(options) == {e.manifest.id for e in service.catalog.ready()} - {"tiny-coder"}
    assert options["tiny"].name == "Tiny"
    assert options["tiny"].score == routed.route.scores["general"]
    assert options["tiny"].fit is Verdict.FITS
    picked = ask(service, conversation.id, "@tiny hello")
    assert {o.score for o in service.turns.rerun_options(picked)} == {None}
    fits = service.turns.memory_fits()
    assert set(fits) == {e.manifest.id for e in service.catalog.ready()}
    assert fits["tiny"] is fits["tiny-coder"] is Verdict.FITS
    assert service.turns.rerun_options(routed, fits) == service.turns.rerun_options(routed)
    assert {o.fit for o in service.turns.rerun_options(routed, {})} == {None}  # not known yet


def test_a_rerun_with_a_missing_specialist_deletes_nothing(service: CadreService) -> None:
    conversation = service.conversations.create("")
    reply = ask(service, conversation.id, "hello there")
    with pytest.raises(CadreError, match="not installed"):
        service.turns.drop_reply(conversation.id, reply.id, "code")
    assert service.conversations.messages(conversation.id)[-1].id == reply.id


def test_regenerating_with_a_removed_specialist_deletes_nothing(
    service: CadreService, paths: DataPaths
) -> None:
    conversation = service.conversations.create("")
    reply = ask(service, conversation.id, SQL_QUESTION)
    assert reply.specialist_id == "tiny-coder"
    (paths.user_manifests / "tiny-coder.toml").unlink()
    service.catalog.reload()
    with pytest.raises(CadreError):
        service.turns.drop_reply(conversation.id, reply.id)
    assert service.conversations.messages(conversation.id)[-1].id == reply.id


def test_edit_drops_the_message_and_what_followed_then_sends_the_new_text(
    service: CadreService,
) -> None:
    conversation = service.conversations.create("")
    ask(service, conversation.id, "first question")
    ask(service, conversation.id, "second question")
    ask(service, conversation.id, "third question")
    second = service.conversations.messages(conversation.id)[2]
    dropped = service.turns.drop_from(conversation.id, second.id)
    assert dropped == second
    assert next(m.content for m in service.conversations.messages(conversation.id)) == (
        "first question"
    )
    assert len(service.conversations.messages(conversation.id)) == 2
    ask(service, conversation.id, "second question, better put")
    messages = service.conversations.messages(conversation.id)
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[2].content == "second question, better put"
    assert [m.position for m in messages] == [0, 1, 2, 3]


def test_editing_the_first_question_retitles_the_conversation(service: CadreService) -> None:
    conversation = service.conversations.create("")
    ask(service, conversation.id, "first question")
    ask(service, conversation.id, "second question")
    assert service.conversations.get(conversation.id).title == "first question"
    second = service.conversations.messages(conversation.id)[2]
    service.turns.drop_from(conversation.id, second.id)  # not the first: the title stays
    assert service.conversations.get(conversation.id).title == "first question"
    first = service.conversations.messages(conversation.id)[0]
    service.turns.drop_from(conversation.id, first.id)
    ask(service, conversation.id, "a much better first question")
    assert service.conversations.get(conversation.id).title == "a much better first question"


def test_editing_the_first_question_keeps_a_title_the_user_gave(tmp_path: Path) -> None:
    store = ConversationStore(open_database(tmp_path / "cadre.db"))
    renamed, made = store.create("tiny"), store.create("tiny", title="Given at creation")
    for conversation in (renamed, made):
        store.add_message(conversation.id, "user", "first question", "tiny")
        store.add_message(conversation.id, "assistant", "an answer", "tiny")
    store.rename(renamed.id, "My SQL chat")
    for conversation in (renamed, made):
        store.truncate(conversation.id, store.messages(conversation.id)[0].id)
        store.add_message(conversation.id, "user", "another question", "tiny")
    assert [store.get(c.id).title for c in (renamed, made)] == ["My SQL chat", "Given at creation"]


def test_only_a_user_message_can_be_edited(service: CadreService) -> None:
    conversation = service.conversations.create("")
    reply = ask(service, conversation.id, "hello there")
    with pytest.raises(CadreError, match="Only a message you wrote"):
        service.turns.drop_from(conversation.id, reply.id)
    assert len(service.conversations.messages(conversation.id)) == 2


def test_truncation_keeps_the_search_index_in_step(tmp_path: Path) -> None:
    db = open_database(tmp_path / "cadre.db")
    store = ConversationStore(db)
    kept, cut = store.create("tiny"), store.create("tiny")
    store.add_message(kept.id, "user", "marmalade in the kept chat", "tiny")
    for word in ("apricot", "blackberry", "cloudberry"):
        store.add_message(cut.id, "user", f"{word} marmalade", "tiny")
    second = store.messages(cut.id)[1]
    deleted = store.truncate(cut.id, second.id)
    assert [m.content for m in deleted] == ["blackberry marmalade", "cloudberry marmalade"]
    assert store.search("blackberry") == [] and store.search("cloudberry") == []
    assert len(store.search("apricot")) == 1
    assert {r.conversation_id for r in store.search("marmalade")} == {kept.id, cut.id}
    assert fts_is_consistent(db)
    assert store.truncate(kept.id, second.id) == []  # not that conversation's message
    store.add_message(cut.id, "user", "damson marmalade", "tiny")
    assert [m.position for m in store.messages(cut.id)] == [0, 1]
    assert len(store.search("damson")) == 1 and fts_is_consistent(db)


def test_each_reply_keeps_its_peak_memory(service: CadreService) -> None:
    conversation = service.conversations.create("")
    reply = ask(service, conversation.id, "hello there")
    own = psutil.Process().memory_info().rss
    worker = psutil.Process(service.engine.pid).memory_info().rss if service.engine.pid else 0
    assert worker > 0
    peak = reply.timings.peak_memory_bytes
    assert peak >= 0.9 * (own + worker)  # this process and the engine worker, together
    assert service.conversations.messages(conversation.id)[-1].timings.peak_memory_bytes == peak
    assert not [t for t in threading.enumerate() if t.name == "cadre-peak-memory"]


def test_the_peak_is_seen_between_samples_and_the_thread_ends() -> None:
    with PeakMemory(lambda: None, interval_s=0.01) as peak:
        baseline = peak.bytes
        block = b"x" * (48 << 20)  # written, so resident
        time.sleep(0.2)
        del block
        time.sleep(0.05)
        assert sum(t.name == "cadre-peak-memory" for t in threading.enumerate()) == 1
    assert peak.bytes >= baseline + (40 << 20)
    assert not [t for t in threading.enumerate() if t.name == "cadre-peak-memory"]


def test_migration_marks_the_manual_picks_of_an_older_database(tmp_path: Path) -> None:
    db = sqlite_utils.Database(tmp_path / "old.db")
    apply_migrations(db, MIGRATIONS[:6])
    db.table("conversations").insert({"id": "c", "title": "t", "specialist_id": "tiny"})
    for position, reason in enumerate(["chosen by you (@tiny)", "general (71%)"]):
        row = {"id": f"m{position}", "conversation_id": "c", "position": position}
        db.table("messages").insert(
            row
            | {"role": "assistant", "content": "hi", "route_specialist": "tiny"}
            | {"route_reason": reason, "route_scores": "{}"}
        )
    db.close()
    store = ConversationStore(open_database(tmp_path / "old.db"))
    messages = store.messages("c")
    assert [m.route.forced for m in messages if m.route] == [True, False]
    assert [m.timings.peak_memory_bytes for m in messages] == [0, 0]


def test_exports_keep_peak_memory_and_older_exports_still_import(tmp_path: Path) -> None:
    store = ConversationStore(open_database(tmp_path / "cadre.db"))
    conversation = store.create("tiny")
    store.add_message(conversation.id, "user", "hi", "tiny")
    route = RouteRecord("tiny", "general", 1.0, "", "chosen by you (@tiny)", forced=True)
    timings = MessageTimings(completion_tokens=3, peak_memory_bytes=123_456_789)
    store.add_message(conversation.id, "assistant", "hello", "tiny", timings=timings, route=route)
    doc = store.export_json(conversation.id)
    copied = store.messages(store.import_json(doc).id)[-1]
    assert (copied.timings, copied.route) == (timings, route)
    for message in doc["messages"]:  # as a Cadre without these fields wrote it
        del message["timings"]["peak_memory_bytes"]
        if message["route"]:
            del message["route"]["forced"]
    older = archive.from_json(doc)[1][-1]
    assert older.timings.peak_memory_bytes == 0 and older.timings.completion_tokens == 3
    assert older.route is not None and not older.route.forced
