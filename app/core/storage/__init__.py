"""SQLite storage (sqlite-utils): named migrations and the conversation store."""

from app.core.storage.conversations import Conversation, ConversationStore, StoredMessage
from app.core.storage.db import open_database
from app.core.storage.search import SearchResult

__all__ = ["Conversation", "ConversationStore", "SearchResult", "StoredMessage", "open_database"]
