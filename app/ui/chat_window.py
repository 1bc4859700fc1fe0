"""The first Cadre window: pick a specialist, chat, stop a reply. Lays out widgets and wires them
to the :class:`ChatController`; it holds no business logic."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPoint, Qt
from PySide6.QtGui import QCloseEvent, QCursor, QKeyEvent, QKeySequence, QShortcut, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from app import APP_NAME
from app.core.documents.library import CollectionStatus
from app.core.routing.router import RouteDecision
from app.core.service import CadreService
from app.core.settings import AUTO_SPECIALIST
from app.core.storage import StoredMessage
from app.core.storage.conversations import RouteRecord
from app.ui.access import buddy, named
from app.ui.chat_controller import ChatController
from app.ui.conversation_list import ConversationList
from app.ui.document_ops import DocumentOps
from app.ui.documents_dialog import DocumentsDialog
from app.ui.errors import show_bug, show_known_error
from app.ui.model_ops import ModelOps
from app.ui.route_menu import route_menu
from app.ui.source_viewer import SourceViewer
from app.ui.specialists_dialog import SpecialistsDialog
from app.ui.theme import ThemeManager
from app.ui.transcript import TranscriptView, footer_for, source_links
from app.ui.window_extras import WindowExtras

OPEN_LATEST = 12  # messages read when a conversation opens (its end); the rest in the background


class _EnterSends(QObject):
    """Enter sends, Shift+Enter inserts a newline."""

    def __init__(self, window: ChatWindow) -> None:
        super().__init__(window)
        self._window = window

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if isinstance(event, QKeyEvent) and event.type() == QEvent.Type.KeyPress:
            enter = event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter)
            if enter and not event.modifiers() & Qt.KeyboardModifier.ShiftModifier:
                self._window.send()
                return True
        return False


class ChatWindow(QMainWindow):
    def __init__(self, service: CadreService, themes: ThemeManager | None = None) -> None:
        super().__init__()
        self.setWindowTitle(APP_NAME)
        self.resize(1280, 720)
        self._service = service
        self.controller = ChatController(service, self)
        self.model_ops = ModelOps(service, self)
        self.document_ops = DocumentOps(service, self)
        self.specialists_dialog: SpecialistsDialog | None = None
        self.documents_dialog: DocumentsDialog | None = None
        self.source_viewer = SourceViewer(self)  # one, reused for every source link
        self.specialists = QComboBox()
        self.collections = QComboBox()
        self.transcript = TranscriptView()
        self.conversation_list = ConversationList(service.conversations)
        self.input = QPlainTextEdit()
        self.send_button = QPushButton("Send")
        self.edit_banner = QLabel("Editing your message — Enter sends it in its place, Esc cancels")
        self._editing: str | None = None  # the id of the user message being edited
        self._build_layout()
        self._fill_specialists()
        self._fill_collections([])
        self._connect()
        self.extras = WindowExtras(self, service, self.controller, themes)
        self.document_ops.refresh()
        self.controller.warm_up(self._service.default_specialist().manifest.id)
        self.controller.refresh_fits()  # first: the router's warm-up takes seconds
        self.controller.warm_up_router()

    def _build_layout(self) -> None:
        new_chat = QPushButton("New chat")
        new_chat.clicked.connect(self.new_chat)
        manage = QPushButton("Specialists…")
        manage.setToolTip("Download, check and remove specialists")
        manage.clicked.connect(self.open_specialists)
        documents = QPushButton("Documents…")
        documents.setToolTip("Collections of your own documents that replies can cite")
        documents.clicked.connect(self.open_documents)
        self.collections.setToolTip("Answer from the documents of this collection, with sources")
        top = QHBoxLayout()
        top.addWidget(buddy("&Specialist:", self.specialists))
        top.addWidget(self.specialists, 2)
        top.addWidget(buddy("D&ocuments:", self.collections))
        top.addWidget(self.collections, 1)
        top.addWidget(new_chat)
        top.addWidget(manage)
        top.addWidget(documents)
        named(self.transcript, "Conversation", "Tab moves between its links, Enter follows one")
        self.edit_banner.hide()
        layout = QVBoxLayout()
        layout.addLayout(top)
        layout.addWidget(self.transcript, 1)
        layout.addWidget(self.edit_banner)
        layout.addLayout(self._input_row())
        chat = QWidget()
        chat.setLayout(layout)
        central = QSplitter()
        central.addWidget(self.conversation_list)
        central.addWidget(chat)
        central.setStretchFactor(1, 1)
        central.setSizes([260, 1020])
        self.setCentralWidget(central)
        self.statusBar().showMessage("Ready. Everything runs on this computer.")
        self.input.setFocus()  # the window opens ready to type

    def _input_row(self) -> QHBoxLayout:
        self.input.setPlaceholderText("Message Cadre (Enter to send, Shift+Enter for a new line)")
        self.input.setFixedHeight(90)
        self.input.setTabChangesFocus(True)  # Tab leaves the box; a tab is rare in a message
        named(self.input, "Message", "Enter sends, Shift+Enter adds a line, Esc stops a reply")
        self.input.installEventFilter(_EnterSends(self))
        row = QHBoxLayout()
        row.addWidget(self.input, 1)
        row.addWidget(self.send_button)
        return row

    def _fill_specialists(self) -> None:
        """The picker: Automatic, then installed specialists; the first time, the default
        specialist from Settings is chosen (when it is installed)."""
        first = self.specialists.count() == 0
        current = self.specialists.currentData()
        if first and self._service.settings.default_specialist != AUTO_SPECIALIST:
            current = self._service.settings.default_specialist
        self.specialists.clear()
        self.specialists.addItem("Automatic", None)
        self.specialists.setItemData(
            0, "Each message goes to the best specialist", Qt.ItemDataRole.ToolTipRole
        )
        for entry in self._service.catalog.ready():
            label = (
                f"{entry.manifest.name} — {entry.manifest.model.parameters} ({entry.state.value})"
            )
            self.specialists.addItem(label, entry.manifest.id)
        self.specialists.setCurrentIndex(max(0, self.specialists.findData(current)))

    def _fill_collections(self, statuses: list[CollectionStatus]) -> None:
        names = [status.name for status in statuses]
        listed = [self.collections.itemData(i) for i in range(1, self.collections.count())]
        if self.collections.count() and names == listed:
            return  # counts changed, not names: leave the picker (and an open popup) alone
        current = self.collections.currentData()
        self.collections.clear()
        self.collections.addItem("No documents", None)
        for name in names:
            self.collections.addItem(name, name)
        self.collections.setCurrentIndex(max(0, self.collections.findData(current)))

    def _connect(self) -> None:
        c = self.controller
        self.send_button.clicked.connect(self._send_or_stop)
        self.specialists.activated.connect(self._on_specialist_picked)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self._on_escape)
        QShortcut(QKeySequence.StandardKey.New, self, self.new_chat)
        QShortcut(QKeySequence("Ctrl+K"), self, self.conversation_list.focus_search)
        self.conversation_list.opened.connect(self.open_conversation)
        self.conversation_list.deleted.connect(self._on_conversation_deleted)
        self.transcript.action_requested.connect(self._on_action)
        self.transcript.source_requested.connect(self.source_viewer.show_citation)
        c.rewound.connect(self._on_rewound)
        c.reply_started.connect(self.transcript.begin_reply)
        c.text_arrived.connect(self.transcript.add_reply_text)
        c.reply_finished.connect(self._on_reply_finished)
        c.routed.connect(self._on_routed)
        c.status.connect(self.statusBar().showMessage)
        c.busy_changed.connect(self._on_busy)
        c.known_error.connect(lambda exc: show_known_error(self, exc))
        c.bug.connect(lambda exc: show_bug(self, exc))
        ops = self.model_ops
        ops.catalog_changed.connect(self._fill_specialists)
        ops.catalog_changed.connect(self.controller.refresh_fits)
        ops.known_error.connect(lambda exc: show_known_error(self._dialog_parent(), exc))
        ops.bug.connect(lambda exc: show_bug(self._dialog_parent(), exc))
        docs = self.document_ops
        docs.status_ready.connect(self._fill_collections)
        docs.known_error.connect(lambda exc: show_known_error(self._dialog_parent(), exc))
        docs.bug.connect(lambda exc: show_bug(self._dialog_parent(), exc))

    def open_specialists(self) -> SpecialistsDialog:
        if self.specialists_dialog is None:
            self.specialists_dialog = SpecialistsDialog(self.model_ops, self)
        self.specialists_dialog.show()
        self.specialists_dialog.raise_()
        return self.specialists_dialog

    def open_documents(self) -> DocumentsDialog:
        if self.documents_dialog is None:
            self.documents_dialog = DocumentsDialog(self.document_ops, self)
        self.documents_dialog.show()
        self.documents_dialog.raise_()
        return self.documents_dialog

    def _dialog_parent(self) -> QWidget:
        """Errors show over the dialog the user is looking at, else over the window."""
        for dialog in (self.documents_dialog, self.specialists_dialog):
            if dialog is not None and dialog.isActiveWindow():
                return dialog
        for dialog in (self.documents_dialog, self.specialists_dialog):
            if dialog is not None and dialog.isVisible():
                return dialog
        return self

    def _on_specialist_picked(self) -> None:
        picked = self.specialists.currentData()
        if picked is not None:
            self.controller.warm_up(picked)

    def _on_routed(self, route: RouteDecision | RouteRecord) -> None:
        note = route.reason
        if isinstance(route, RouteDecision) and route.suggestion is not None:
            note += f" — {route.suggestion.as_text().removesuffix('.')}; see Specialists…"
        self.transcript.add_note(note)

    def send(self) -> None:
        """Send the input box's text; while editing, in place of the message being edited."""
        text = self.input.toPlainText().strip()
        if not text or self.controller.busy:
            return
        picked, collection = self.specialists.currentData(), self.collections.currentData()
        if self._editing is not None:
            sent = self.controller.edit(self._editing, text, picked, collection)
            self.cancel_edit()
        else:
            sent = self.controller.send(text, picked, collection)
        if sent:
            self.input.clear()
            self.transcript.add_user(text)

    def _on_action(self, action: str, message_id: str) -> None:
        """A link under a message: Regenerate, Edit, or the routing chip."""
        if self.controller.busy:
            self.statusBar().showMessage("Wait for the reply to finish, or stop it (Esc).")
        elif action == "regenerate":
            self.controller.regenerate(message_id, collection=self.collections.currentData())
        elif action == "edit":
            self.start_edit(message_id)
        elif action == "route":
            menu = self.route_menu(message_id)
            if menu is not None:
                menu.exec(self._menu_point())

    def _menu_point(self) -> QPoint:
        """At the mouse when it clicked the chip; under the chip when the keyboard followed it
        (Tab selects a link in the transcript, Enter follows it)."""
        view = self.transcript
        if view.anchorAt(view.viewport().mapFromGlobal(QCursor.pos())):
            return QCursor.pos()
        cursor = view.textCursor()
        cursor.setPosition(cursor.selectionStart())
        return view.viewport().mapToGlobal(view.cursorRect(cursor).bottomLeft())

    def route_menu(self, message_id: str) -> QMenu | None:
        reply = self.controller.message(message_id)
        if reply is None:
            return None
        options = self.controller.rerun_options(reply)
        speaker = self.controller.speaker(reply.specialist_id)
        return route_menu(
            reply,
            speaker,
            options,
            lambda chosen: self._rerun(reply, chosen),
            self,
            rerun_allowed=self.controller.is_last_reply(message_id),
        )

    def _rerun(self, reply: StoredMessage, specialist_id: str | None) -> None:
        collection = self.collections.currentData()
        reroute = specialist_id is None
        self.controller.regenerate(reply.id, specialist_id, reroute=reroute, collection=collection)

    def start_edit(self, message_id: str) -> None:
        """Put a message back in the input box; sending replaces it and everything after it."""
        message = self.controller.message(message_id)
        if message is None or message.role != "user":
            return
        self._editing = message_id
        self.input.setPlainText(message.content)
        self.input.moveCursor(QTextCursor.MoveOperation.End)
        self.input.setFocus()
        self.edit_banner.show()

    def cancel_edit(self) -> None:
        if self._editing is not None:
            self._editing = None
            self.edit_banner.hide()

    def _on_escape(self) -> None:
        if self._editing is not None:
            self.cancel_edit()
            self.input.clear()
        else:
            self.controller.stop()

    def _on_rewound(self, question: StoredMessage | None) -> None:
        """Messages were deleted: show what is left; a question answered again goes live."""
        conversation_id = self.controller.conversation_id
        if conversation_id is None:
            return
        messages = self._service.conversations.messages(conversation_id)
        stored = messages[:-1] if question is not None else messages
        self.transcript.show_conversation(stored, self._speaker)
        if question is not None:
            self.transcript.add_user(question.content)

    def _send_or_stop(self) -> None:
        if self.controller.busy:
            self.controller.stop()
        else:
            self.send()

    def new_chat(self) -> None:
        if not self.controller.busy:
            self.cancel_edit()
            self.controller.new_conversation()
            self.transcript.clear()
            self.conversation_list.refresh()
            self.conversation_list.select(None)
            self.input.setFocus()

    def open_conversation(self, conversation_id: str) -> None:
        """Show a stored conversation; the next message continues it."""
        if not self.controller.open_conversation(conversation_id):
            self.statusBar().showMessage("Stop the reply before opening another conversation.")
            self.conversation_list.select(self.controller.conversation_id)
            return
        self.cancel_edit()
        conversation = self._service.conversations.get(conversation_id)
        self.collections.setCurrentIndex(max(0, self.collections.findData(conversation.collection)))
        store = self._service.conversations
        latest = store.messages(conversation_id, last=OPEN_LATEST)
        start = latest[0].position if len(latest) == OPEN_LATEST else None  # more before it?
        self.transcript.show_conversation(
            latest,
            self._speaker,
            None if start is None else lambda: store.messages(conversation_id, before=start),
        )
        self.conversation_list.select(conversation_id)

    def _speaker(self, specialist_id: str) -> str:
        return self.controller.speaker(specialist_id)

    def _on_conversation_deleted(self, conversation_id: str) -> None:
        if conversation_id == self.controller.conversation_id:
            self.new_chat()

    def _on_busy(self, busy: bool) -> None:
        self.send_button.setText("Stop" if busy else "Send")
        self.conversation_list.set_locked(self.controller.conversation_id if busy else None)
        self.specialists.setEnabled(not busy)
        self.collections.setEnabled(not busy)

    def _on_reply_finished(self, message: StoredMessage | None) -> None:
        self.conversation_list.select(self.controller.conversation_id)
        self.conversation_list.touched(self.controller.conversation_id)  # a title, a newer date
        if message is None:
            self._show_stopped()
            return
        self.transcript.end_reply(footer_for(message), source_links(message))
        stored = self._service.conversations.messages(message.conversation_id)[-2:]
        if len(stored) == 2 and stored[0].role == "user" and stored[1].id == message.id:
            self.transcript.finish_turn(stored[0], message, self._speaker)
        self.statusBar().showMessage("Ready.")

    def _show_stopped(self) -> None:
        """A reply stopped before any text. One that was to replace an earlier reply leaves that
        reply in place (the core puts it back): show the conversation as it is stored."""
        conversation_id = self.controller.conversation_id
        stored = self._service.conversations.messages(conversation_id) if conversation_id else []
        if stored and stored[-1].role == "assistant":
            self.transcript.show_conversation(stored, self._speaker)
            self.statusBar().showMessage("Stopped: the earlier reply is kept.")
        else:
            self.transcript.end_reply("Stopped.")

    def closeEvent(self, event: QCloseEvent) -> None:
        self.conversation_list.shutdown()
        self.document_ops.shutdown()
        self.model_ops.shutdown()
        self.controller.shutdown()
        super().closeEvent(event)
