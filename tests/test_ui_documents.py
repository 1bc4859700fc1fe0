"""The Documents window and its operations on the real core: indexing with progress, skipped files,
cancel, removal, drops, the folder watcher, and a chat reply grounded in a collection."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent
from pytestqt.qtbot import QtBot

from app.core.embedder import Embedder
from app.core.paths import DataPaths
from app.core.service import CadreService
from app.ui import chat_window
from app.ui.chat_window import ChatWindow
from app.ui.document_ops import DocumentOps
from app.ui.documents_dialog import COLUMNS, EMPTY_TEXT, DocumentsDialog
from tests.conftest import install_specialist
from tests.ui_helpers import shown_window

pytestmark = [
    pytest.mark.qt_log_level_fail("WARNING"),
    pytest.mark.qt_log_ignore("This plugin does not support"),  # offscreen: no raise(), sizes
]

LEASE = "The tenant must give two months' notice in writing before moving out of the flat."
GARDEN = "Water the tomatoes every morning and feed them once a week in summer."
INDEX_TIMEOUT_MS = 30_000


@pytest.fixture
def service(paths: DataPaths, embedder: Embedder) -> Iterator[CadreService]:
    service = CadreService(paths, embedder=embedder)
    yield service
    service.close()


@pytest.fixture
def ops(qtbot: QtBot, service: CadreService) -> Iterator[DocumentOps]:
    ops = DocumentOps(service, settle_s=0.3)
    yield ops
    ops.shutdown()


@pytest.fixture
def dialog(qtbot: QtBot, ops: DocumentOps) -> DocumentsDialog:
    dialog = DocumentsDialog(ops)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    root = tmp_path / "contracts"
    root.mkdir()
    (root / "lease.txt").write_text(f"Lease\n\n{LEASE}\n")
    (root / "garden.md").write_text(f"# Garden\n\n{GARDEN}\n")
    (root / "empty.txt").write_text("")
    (root / "blob.txt").write_bytes(bytes(range(256)) * 8)
    return root


def add_and_wait(qtbot: QtBot, ops: DocumentOps, name: str, paths: list[Path]) -> str:
    with qtbot.waitSignal(ops.index_ended, timeout=INDEX_TIMEOUT_MS) as ended:
        ops.add_folders(name, paths)
    assert ended.args[0] == name
    return str(ended.args[1])


def cell(dialog: DocumentsDialog, row: int, column: str) -> str:
    item = dialog.table.item(row, COLUMNS.index(column))
    return item.text() if item is not None else ""


def test_the_empty_window_says_what_to_do(qtbot: QtBot, dialog: DocumentsDialog) -> None:
    qtbot.waitUntil(dialog.empty_label.isVisible)
    assert dialog.empty_label.text() == EMPTY_TEXT and not dialog.table.isVisible()
    assert dialog.new_button.isEnabled()
    for button in (dialog.add_button, dialog.reindex_button, dialog.cancel_button):
        assert not button.isEnabled()
    assert not dialog.skipped.isVisible()


def test_an_added_folder_is_indexed_and_listed_with_its_skipped_files(
    qtbot: QtBot, ops: DocumentOps, dialog: DocumentsDialog, folder: Path
) -> None:
    progress: list[object] = []
    ops.progress.connect(lambda name, report: progress.append(report))
    outcome = add_and_wait(qtbot, ops, "contracts", [folder])
    assert outcome.startswith("2 indexed") and "2 skipped" in outcome
    assert progress
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1 and cell(dialog, 0, "Documents") == "2")
    assert cell(dialog, 0, "Collection") == "contracts"
    assert cell(dialog, 0, "Folders") == "contracts"
    assert int(cell(dialog, 0, "Chunks")) >= 2
    assert cell(dialog, 0, "Last indexed") != "never"
    assert cell(dialog, 0, "Status") == outcome
    assert "Select a collection" in dialog.skipped_label.text()
    dialog.table.selectRow(0)
    assert dialog.selected_name() == "contracts"
    assert dialog.skipped.rowCount() == 2
    skipped = {
        dialog.skipped.item(row, 0).text(): dialog.skipped.item(row, 1).text() for row in range(2)
    }
    assert skipped == {
        str(Path("contracts", "blob.txt")): "binary data, not text",
        str(Path("contracts", "empty.txt")): "empty",
    }
    assert dialog.skipped.item(0, 0).toolTip() == str((folder / "blob.txt").resolve())
    assert "(2)" in dialog.skipped_label.text()
    assert dialog.reindex_button.isEnabled() and not dialog.cancel_button.isEnabled()


def test_a_new_collection_through_the_prompts_then_removed_leaves_the_files(
    qtbot: QtBot,
    ops: DocumentOps,
    dialog: DocumentsDialog,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []
    monkeypatch.setattr(dialog, "ask_folder", lambda: folder)
    monkeypatch.setattr(dialog, "ask_collection_name", lambda s: asked.append(s) or "leases")
    with qtbot.waitSignal(ops.index_ended, timeout=INDEX_TIMEOUT_MS):
        dialog.new_button.click()
    assert asked == ["contracts"]  # the folder's name is offered
    qtbot.waitUntil(lambda: dialog.selected_name() == "leases")
    assert dialog.remove_button.isEnabled()
    confirmed: list[str] = []
    monkeypatch.setattr(dialog, "confirm_removal", lambda name: confirmed.append(name) or True)
    with qtbot.waitSignal(ops.collections_changed):
        dialog.remove_button.click()
    assert confirmed == ["leases"]
    qtbot.waitUntil(dialog.empty_label.isVisible)
    assert (folder / "lease.txt").is_file() and (folder / "garden.md").is_file()


def test_folders_dropped_on_the_window_join_the_selected_collection(
    qtbot: QtBot, ops: DocumentOps, dialog: DocumentsDialog, folder: Path, tmp_path: Path
) -> None:
    add_and_wait(qtbot, ops, "contracts", [folder])
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1)
    dialog.table.selectRow(0)
    extra = tmp_path / "letters"
    extra.mkdir()
    (extra / "letter.txt").write_text("Dear landlord, I am writing to give notice.")
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(extra))])
    drop = QDropEvent(
        QPointF(10, 10),
        Qt.DropAction.CopyAction,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    with qtbot.waitSignal(ops.index_ended, timeout=INDEX_TIMEOUT_MS):
        dialog.dropEvent(drop)
    assert drop.isAccepted()
    qtbot.waitUntil(lambda: cell(dialog, 0, "Documents") == "3")
    assert cell(dialog, 0, "Folders") == "contracts, letters"


def start_indexing_many(qtbot: QtBot, ops: DocumentOps, tmp_path: Path, count: int) -> Path:
    """Add a folder of ``count`` short notes to a collection 'many' and wait until its indexing
    is under way: with enough notes it is still running when the test acts. Returns the folder."""
    many = tmp_path / "many"
    many.mkdir()
    for i in range(count):
        (many / f"note-{i:03d}.txt").write_text(f"Note {i}: the meeting about item {i * 7} moved.")
    with qtbot.waitSignal(ops.progress, timeout=INDEX_TIMEOUT_MS):
        ops.add_folders("many", [many])
    return many


def test_cancel_stops_an_index_and_nothing_is_half_done(
    qtbot: QtBot, ops: DocumentOps, dialog: DocumentsDialog, tmp_path: Path
) -> None:
    start_indexing_many(qtbot, ops, tmp_path, 400)
    assert ops.is_indexing("many")
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1)
    dialog.table.selectRow(0)
    assert dialog.cancel_button.isEnabled()
    with qtbot.waitSignal(ops.index_ended, timeout=INDEX_TIMEOUT_MS) as ended:
        dialog.cancel_button.click()
    assert ended.args == ["many", "Cancelled."]
    assert not ops.is_indexing("many")
    qtbot.waitUntil(lambda: not dialog.cancel_button.isEnabled())
    assert cell(dialog, 0, "Status") == "Cancelled."
    assert int(cell(dialog, 0, "Documents") or 0) < 400


def test_removing_a_collection_while_it_indexes_stops_the_run_first(
    qtbot: QtBot, ops: DocumentOps, service: CadreService, tmp_path: Path
) -> None:
    many = start_indexing_many(qtbot, ops, tmp_path, 200)
    with qtbot.waitSignals([ops.index_ended, ops.collections_changed], timeout=INDEX_TIMEOUT_MS):
        ops.remove("many")
    assert service.documents.collections() == []
    assert len(list(many.iterdir())) == 200


def test_the_watcher_catches_up_and_then_picks_up_a_new_file(
    qtbot: QtBot, ops: DocumentOps, service: CadreService, folder: Path
) -> None:
    add_and_wait(qtbot, ops, "contracts", [folder])
    (folder / "deposit.txt").write_text("The deposit is returned within ten days.")
    ended: list[str] = []
    ops.index_ended.connect(lambda name, outcome: ended.append(outcome))
    with qtbot.waitSignals([ops.index_ended, ops.watch_started], timeout=INDEX_TIMEOUT_MS):
        ops.start_watching()
    assert len(ended) == 1 and ended[0].startswith("1 indexed")  # changed while none watched
    (folder / "keys.txt").write_text("Both sets of keys go back to the agent on the last day.")
    qtbot.waitUntil(lambda: len(ended) == 2, timeout=20_000)
    assert ended[1].startswith("1 indexed")
    status = service.documents.status()[0]
    assert status.documents == 4
    ops.stop_watching()


def test_an_index_asked_for_while_running_runs_once_more(
    qtbot: QtBot, ops: DocumentOps, folder: Path
) -> None:
    ended: list[str] = []
    ops.index_ended.connect(lambda name, outcome: ended.append(outcome))
    with qtbot.waitSignal(ops.progress, timeout=INDEX_TIMEOUT_MS):
        ops.add_folders("contracts", [folder])
    ops.index("contracts")
    ops.index("contracts")  # asked twice: still one more run, not two
    qtbot.waitUntil(lambda: len(ended) == 2, timeout=INDEX_TIMEOUT_MS)
    assert ended[0].startswith("2 indexed")
    assert ended[1].startswith("0 indexed") and "4 unchanged" in ended[1]
    qtbot.wait(300)
    assert len(ended) == 2 and not ops.is_indexing("contracts")


@pytest.fixture
def tiny_reader(paths: DataPaths, tiny_model: Path) -> str:
    """The tiny model with room for excerpts. Its tokens are about one character each: at the
    shared fixture's 512 tokens the grounded prompt (instructions, primer, excerpt) overflows the
    context and the engine refuses it as too long."""
    return install_specialist(paths, "tiny", tiny_model, context_size=1024, max_tokens=4)


@pytest.fixture
def window(
    qtbot: QtBot,
    tiny_reader: str,
    embedder: Embedder,
    routing_ready: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[ChatWindow]:
    """The chat window; an error it would show in a (modal) message box fails the test instead."""
    errors: list[BaseException] = []
    monkeypatch.setattr(chat_window, "show_known_error", lambda parent, exc: errors.append(exc))
    monkeypatch.setattr(chat_window, "show_bug", lambda parent, exc: errors.append(exc))
    with shown_window(qtbot, CadreService(embedder=embedder)) as win:
        yield win
    assert not errors


def test_a_reply_grounded_in_the_picked_collection_shows_its_sources(
    qtbot: QtBot, window: ChatWindow, folder: Path, tiny_reader: str
) -> None:
    picker = window.collections
    assert picker.itemText(0) == "No documents" and picker.currentData() is None
    add_and_wait(qtbot, window.document_ops, "contracts", [folder])
    qtbot.waitUntil(lambda: picker.findData("contracts") >= 0)
    dialog = window.open_documents()
    qtbot.waitUntil(lambda: dialog.table.rowCount() == 1)
    picker.setCurrentIndex(picker.findData("contracts"))
    window.specialists.setCurrentIndex(window.specialists.findData(tiny_reader))
    window.input.setPlainText("How much notice must the tenant give before moving out?")
    with qtbot.waitSignal(window.controller.reply_finished, timeout=60_000) as finished:
        window.send()
        assert not picker.isEnabled()
    message = finished.args[0]
    assert message is not None
    with closing(CadreService()) as service:  # the same CADRE_HOME, read afresh
        conversation = service.conversations.get(message.conversation_id)
    assert conversation.collection == "contracts"
    transcript = window.transcript.toHtml()
    if message.finish_reason == "no_sources":
        assert "could not find anything" in message.content
    else:
        assert message.sources and message.sources[0]["path"].endswith("lease.txt")
        assert "Sources: " in window.transcript.toPlainText()
        assert "[1] lease.txt" in window.transcript.toPlainText()
        assert QUrl.fromLocalFile(str(folder / "lease.txt")).toString() in transcript
    qtbot.waitUntil(picker.isEnabled, timeout=5000)
