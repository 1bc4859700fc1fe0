"""Screenshots of every page of the window, in the light and the dark theme, for a person to look
at: the chat (a stored conversation with Markdown, code, a routed reply and sources), an empty new
chat, the Resources dock, Specialists (the starter customised), Add a specialist, Customise a
specialist, Documents and Settings.

Focus pages show where the keyboard is after Tab presses (a link, a button, a field).

Usage (a real X server renders fonts and styles as users see them):
    xvfb-run -a -s "-screen 0 1600x1000x24" python bench/screens.py [--out DIR]
It prints the path of each PNG it writes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from app.core.service import CadreService
    from app.core.storage import StoredMessage
    from app.ui.chat_window import ChatWindow

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

QUESTION = "How do I read a CSV file in Python and sum one column?"
ANSWER = """Use the standard library's **csv** module; no extra package is needed.

```python
import csv

def column_total(path: str, column: str) -> float:
    with open(path, newline="", encoding="utf-8") as f:
        return sum(float(row[column]) for row in csv.DictReader(f))
```

Notes:
1. `newline=""` lets *csv* handle line endings itself.
2. For large files, **pandas** is faster: `pd.read_csv(path)[column].sum()`.

| approach | extra install | speed |
|---|---|---|
| csv | none | fine |
| pandas | yes | fast |
"""
LEASE = """# Lease for the flat at 12 Garden Road

1. The lease runs for twelve months from the first of March.
2. The rent is 950 euros a month.
3. The tenant pays the rent on the first day of each month.
4. A payment more than ten days late costs a fee of 25 euros.
5. The landlord may raise the rent once a year, with two months' notice.
6. Pets need written consent.
7. The tenant keeps the garden tidy; the landlord cuts the hedges.
8. Either side may end the lease with three months' notice, in writing.
9. The deposit is two months' rent, returned within thirty days of the end.
"""
CITED = (5, 7)  # the lines of LEASE the stored reply cites


def seed(service: object) -> None:
    """A routed conversation with sources, and a small indexed collection."""
    from app.core.documents.passage import fingerprint
    from app.core.service import CadreService
    from app.core.storage.conversations import MessageTimings, RouteRecord

    assert isinstance(service, CadreService)
    folder = Path(tempfile.mkdtemp(prefix="cadre-screens-docs-"))
    (folder / "lease.txt").write_text(LEASE)
    service.documents.add("Lease", [folder])
    for _ in service.documents.index("Lease"):
        pass
    store = service.conversations
    chat = store.create("starter")
    store.add_message(chat.id, "user", QUESTION, "starter")
    route = RouteRecord(
        "starter",
        "code",
        0.82,
        "general",
        "Routed to Starter: code question (0.82); Code would suit this better; "
        "it is not installed (2.1 GB download, fits)",
        {"code": 0.82, "general": 0.11, "math": 0.04, "legal": 0.02, "medical": 0.01},
    )
    timings = MessageTimings(40, 0, 96, 310.0, 41.5, 2600.0)
    first, last = CITED
    excerpt = "\n".join(LEASE.split("\n")[first - 1 : last])
    source = {
        "number": 1,
        "path": str(folder / "lease.txt"),
        "place": f"lines {first}-{last}",
        "line_start": first,
        "line_end": last,
        "fingerprint": fingerprint(excerpt),
    }
    store.add_message(
        chat.id, "assistant", ANSWER, "starter", route=route, timings=timings, sources=(source,)
    )
    customise_starter(service)


def customise_starter(service: CadreService) -> None:
    """An override, so the starter's card shows its Customised mark."""
    from dataclasses import replace

    from app.core.specialist_overrides import Customisation

    catalog = service.catalog
    shipped = catalog.defaults("starter")
    wanted = Customisation.of(shipped)
    wanted = replace(wanted, sampling=replace(wanted.sampling, temperature=0.4))
    catalog.overrides.save(shipped, wanted)


def wait_until(condition: Callable[[], bool], timeout_ms: int = 20_000) -> None:
    from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QThread

    deadline = QDeadlineTimer(timeout_ms)
    while not condition() and not deadline.hasExpired():
        QCoreApplication.processEvents()
        QThread.msleep(20)


def settle(ms: int = 400) -> None:
    wait_until(lambda: False, ms)


def shoot(widget: object, path: Path) -> None:
    from PySide6.QtWidgets import QWidget

    assert isinstance(widget, QWidget)
    settle()
    widget.grab().save(str(path))
    print(path)


def pages(theme: str, out: Path) -> None:
    from app.core.service import CadreService
    from app.ui.app import _application
    from app.ui.chat_window import ChatWindow
    from app.ui.theme import ThemeManager

    app = _application()
    themes = ThemeManager(app, parent=app)
    themes.apply(theme)
    service = CadreService()
    window = ChatWindow(service, themes)
    window.show()
    window.extras.resources.show()
    chat_pages(window, service, theme, out)
    dialog_pages(window, service, theme, out)
    focus_pages(window, service, theme, out)
    window.close()
    service.close()


def chat_pages(window: ChatWindow, service: CadreService, theme: str, out: Path) -> None:
    """A stored conversation with the Resources dock, the routing chip's menus, an empty chat."""
    from PySide6.QtWidgets import QMenu

    store = service.conversations
    wait_until(lambda: window.conversation_list.list.count() > 0)
    window.conversation_list.list.setCurrentRow(0)
    window.open_conversation(store.recent()[0].id)
    settle(1500)  # the dock's first figures
    shoot(window, out / f"chat-{theme}.png")
    reply = store.messages(store.recent()[0].id)[-1]
    viewer_pages(window, reply, theme, out)
    menu = window.route_menu(reply.id)
    assert menu is not None
    at = window.mapToGlobal(window.rect().center())
    menu.popup(at)
    shoot(menu, out / f"route-menu-{theme}.png")
    rerun = menu.actions()[-1].menu()  # "Re-run with ▸"
    assert isinstance(rerun, QMenu)
    rerun.popup(at)
    shoot(rerun, out / f"route-menu-rerun-{theme}.png")
    rerun.close()
    menu.close()
    window.new_chat()
    shoot(window, out / f"chat-empty-{theme}.png")


def viewer_pages(window: ChatWindow, reply: StoredMessage, theme: str, out: Path) -> None:
    """The source viewer, opened from the reply's source link, and on a file that is gone."""
    from PySide6.QtCore import QUrl

    from app.core.documents.passage import Citation
    from app.ui.transcript import source_links

    viewer = window.source_viewer
    window.transcript.anchorClicked.emit(QUrl(source_links(reply)[0][1]))
    wait_until(lambda: viewer.message.text() != "Reading…")
    shoot(viewer, out / f"viewer-{theme}.png")
    folder = Path(str(reply.sources[0]["path"])).parent
    viewer.show_citation(Citation(str(folder / "old-lease.pdf"), page=3))
    wait_until(lambda: viewer.message.text() != "Reading…")
    shoot(viewer, out / f"viewer-missing-{theme}.png")
    viewer.close()


def dialog_pages(window: ChatWindow, service: CadreService, theme: str, out: Path) -> None:
    """Specialists, Add a specialist, Customise, Documents and Settings."""
    from app.ui.settings_dialog import SettingsDialog

    specialists = window.open_specialists()
    wait_until(lambda: len(specialists.cards) >= 6)
    shoot(specialists, out / f"specialists-{theme}.png")
    form = specialists.open_add_dialog()
    shoot(form, out / f"add-specialist-{theme}.png")
    form.reject()
    customise = specialists.open_customise_dialog("starter")
    shoot(customise, out / f"customise-{theme}.png")
    customise.reject()
    specialists.close()
    documents = window.open_documents()
    settle(1500)
    shoot(documents, out / f"documents-{theme}.png")
    documents.close()
    ready = [(e.manifest.id, e.manifest.name) for e in service.catalog.ready()]
    settings = SettingsDialog(service.settings, ready, window, api_token="x" * 43)
    settings.show()
    shoot(settings, out / f"settings-{theme}.png")
    settings.close()


def focus_pages(window: ChatWindow, service: CadreService, theme: str, out: Path) -> None:
    """Where the keyboard is, reached with Tab as a user would (Qt marks a button's focus only
    after a key moved it): a reply's link, the Send button, fields and buttons in Settings."""
    from PySide6.QtGui import QTextCursor
    from PySide6.QtWidgets import QWidget

    from app.ui.settings_dialog import SettingsDialog

    window.open_conversation(_first(window))
    window.activateWindow()
    view = window.transcript
    view.setFocus()
    view.moveCursor(QTextCursor.MoveOperation.Start)
    _tab(view, 2)  # Edit, then the routing chip
    shoot(window, out / f"focus-link-{theme}.png")
    window.input.setFocus()
    _tab(window.input, 1)
    shoot(window, out / f"focus-button-{theme}.png")
    settings = SettingsDialog(service.settings, [], window, api_token="x" * 43)
    settings.show()
    settings.activateWindow()
    wait_until(lambda: settings.focusWidget() is not None, 2000)
    for presses, name in ((1, "combo"), (5, "field"), (1, "browse")):
        focused = settings.focusWidget()
        assert isinstance(focused, QWidget)
        _tab(focused, presses)
        shoot(settings, out / f"focus-{name}-{theme}.png")
    settings.close()


def _tab(widget: object, presses: int) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication, QWidget

    for _ in range(presses):
        target = QApplication.focusWidget() or widget
        assert isinstance(target, QWidget)
        QTest.keyClick(target, Qt.Key.Key_Tab)


def _first(window: ChatWindow) -> str:
    from PySide6.QtCore import Qt

    return str(window.conversation_list.list.item(0).data(Qt.ItemDataRole.UserRole))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(tempfile.mkdtemp(prefix="cadre-screens-")))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ["CADRE_HOME"] = tempfile.mkdtemp(prefix="cadre-screens-home-")
    from app.core.service import CadreService

    service = CadreService()
    seed(service)
    service.close()
    for theme in ("light", "dark"):
        pages(theme, args.out)


if __name__ == "__main__":
    main()
