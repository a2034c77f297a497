"""Stores: the storage contract and its in-memory, SQLite and PostgreSQL implementations."""

from ._base import OutboxRow, OutboxState, StatusRecord, Store, Transaction

__all__ = ["OutboxRow", "OutboxState", "StatusRecord", "Store", "Transaction"]
