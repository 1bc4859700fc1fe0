"""SQLite storage (sqlite-utils): named migrations and the conversation store."""

from app.core.storage.conversations import Conversation, ConversationStore, StoredMessage
from app.core.storage.db import open_database

__all__ = ["Conversation", "ConversationStore", "StoredMessage", "open_database"]
