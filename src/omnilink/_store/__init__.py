"""Stores: the storage contract and its in-memory, SQLite and PostgreSQL implementations."""

from ._base import OutboxRow, OutboxState, StatusRecord, Store, Transaction
from ._feed import PostgresNotifications
from ._memory import MemoryStore
from ._postgres import PostgresStore
from ._sqlite import SQLiteStore

__all__ = [
    "MemoryStore",
    "OutboxRow",
    "OutboxState",
    "PostgresNotifications",
    "PostgresStore",
    "SQLiteStore",
    "StatusRecord",
    "Store",
    "Transaction",
]
