"""Routing corrections: "this should have gone to math". Each becomes a training example."""

from __future__ import annotations

import threading

import sqlite_utils

from app.core.storage.db import utc_now


class CorrectionStore:
    def __init__(self, db: sqlite_utils.Database, lock: threading.RLock | None = None) -> None:
        self._db = db
        self._lock = lock or threading.RLock()

    def add(self, text: str, specialist_id: str, domain: str) -> None:
        row = {"text": text.strip(), "specialist_id": specialist_id, "domain": domain}
        with self._lock:
            self._db.table("routing_corrections").insert(row | {"created_at": utc_now()})

    def all(self) -> list[tuple[str, str, str]]:
        """(text, specialist id, domain), oldest first."""
        with self._lock:
            rows = self._db.table("routing_corrections").rows_where(order_by="id")
            return [(r["text"], r["specialist_id"], r["domain"]) for r in rows]
