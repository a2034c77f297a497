"""Versioned schema migrations for the SQL stores.

Each ``Migration`` has a version, a description and its statements per dialect. ``migrate``
runs inside one transaction when a store opens: it creates ``schema_migrations`` if needed,
refuses a database migrated by newer code (``StoreError``), applies the pending migrations in
order and records each. Migrations are append-only: never edit a released one, add the next.

Rows keep the columns that queries filter and sort on, plus a ``data`` column with the
model's JSON (``model_dump_json``), read back with ``model_validate_json``. Timestamps are
``timestamptz`` in PostgreSQL and fixed-width ISO-8601 UTC text in SQLite
(``YYYY-MM-DDTHH:MM:SS.ffffff+00:00``), so comparing and sorting the text sorts by time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from .._errors import StoreError
from ._sql import Cursor, Dialect


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    sql: Mapping[str, tuple[str, ...]]
    """Statements per dialect name (``sqlite``, ``postgres``)."""


_TYPES: Mapping[str, Mapping[str, str]] = {
    "sqlite": {
        "ts": "TEXT",
        "json": "TEXT",
        "bool": "INTEGER",
        "bigint": "INTEGER",
        "seqpk": "INTEGER PRIMARY KEY",
    },
    "postgres": {
        "ts": "TIMESTAMPTZ",
        # json (not jsonb): stored verbatim, validated, and it accepts \u0000 escapes.
        "json": "JSON",
        "bool": "BOOLEAN",
        "bigint": "BIGINT",
        "seqpk": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
}

_V1 = (
    "CREATE TABLE contacts (id TEXT PRIMARY KEY, data {json} NOT NULL)",
    "CREATE TABLE handles (channel TEXT NOT NULL, address TEXT NOT NULL, contact_id TEXT NOT NULL,"
    " PRIMARY KEY (channel, address))",
    "CREATE INDEX handles_contact ON handles (contact_id)",
    "CREATE TABLE contact_links (seq {seqpk}, id TEXT NOT NULL UNIQUE, contact_id TEXT NOT NULL,"
    " other_contact_id TEXT NOT NULL, created_at {ts} NOT NULL, data {json} NOT NULL)",
    "CREATE INDEX contact_links_contact ON contact_links (contact_id)",
    "CREATE INDEX contact_links_other ON contact_links (other_contact_id)",
    "CREATE TABLE conversations (id TEXT PRIMARY KEY, contact_id TEXT NOT NULL, status TEXT NOT NULL,"
    " updated_at {ts} NOT NULL, save_seq {bigint} NOT NULL, last_inbound_at {ts}, last_outbound_at {ts},"
    " data {json} NOT NULL)",
    "CREATE INDEX conversations_contact ON conversations (contact_id, updated_at)",
    "CREATE INDEX conversations_updated ON conversations (updated_at, save_seq)",
    "CREATE INDEX conversations_status ON conversations (status, updated_at, save_seq)",
    "CREATE TABLE conversation_threads (channel TEXT NOT NULL, account TEXT NOT NULL,"
    " thread_key TEXT NOT NULL, conversation_id TEXT NOT NULL,"
    " PRIMARY KEY (channel, account, thread_key, conversation_id))",
    "CREATE INDEX conversation_threads_conversation ON conversation_threads (conversation_id)",
    "CREATE TABLE inbound_claims (channel TEXT NOT NULL, account TEXT NOT NULL,"
    " provider_message_id TEXT NOT NULL, message_id TEXT NOT NULL,"
    " PRIMARY KEY (channel, account, provider_message_id))",
    "CREATE TABLE messages (seq {seqpk}, id TEXT NOT NULL UNIQUE, conversation_id TEXT NOT NULL,"
    " direction TEXT NOT NULL, channel TEXT NOT NULL, account TEXT NOT NULL, thread_key TEXT NOT NULL,"
    " sent_at {ts} NOT NULL, data {json} NOT NULL)",
    "CREATE INDEX messages_conversation ON messages (conversation_id, sent_at, seq)",
    "CREATE INDEX messages_thread ON messages (channel, account, thread_key, sent_at, seq)",
    "CREATE TABLE message_provider_ids (channel TEXT NOT NULL, account TEXT NOT NULL,"
    " provider_id TEXT NOT NULL, message_id TEXT NOT NULL,"
    " PRIMARY KEY (channel, account, provider_id, message_id))",
    "CREATE TABLE idempotency_keys (idempotency_key TEXT PRIMARY KEY, message_id TEXT NOT NULL)",
    "CREATE TABLE status_records (seq {seqpk}, message_id TEXT NOT NULL, data {json} NOT NULL)",
    "CREATE INDEX status_records_message ON status_records (message_id, seq)",
    "CREATE TABLE outbox (seq {seqpk}, id TEXT NOT NULL UNIQUE, message_id TEXT NOT NULL,"
    " part_index INTEGER NOT NULL, channel TEXT NOT NULL, state TEXT NOT NULL, due_at {ts} NOT NULL,"
    " lease_until {ts}, data {json} NOT NULL)",
    "CREATE INDEX outbox_due ON outbox (state, due_at, seq)",
    "CREATE INDEX outbox_lease ON outbox (state, lease_until)",
    "CREATE INDEX outbox_message ON outbox (message_id, part_index, seq)",
    "CREATE TABLE opt_outs (channel TEXT NOT NULL, account TEXT NOT NULL, address TEXT NOT NULL,"
    " opted_out {bool} NOT NULL, at {ts} NOT NULL, keyword TEXT, PRIMARY KEY (channel, account, address))",
    "CREATE TABLE channel_state (state_key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def _render(statements: tuple[str, ...], extra: Mapping[str, tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    return {
        dialect: tuple(s.format(**types) for s in statements) + extra.get(dialect, ())
        for dialect, types in _TYPES.items()
    }


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "contacts, conversations, messages, outbox, opt-outs, channel state",
        _render(_V1, {"postgres": ("CREATE SEQUENCE conversation_save_seq",)}),
    ),
    Migration(
        2,
        "index conversations by save order (SQLite finds the next save_seq without a scan)",
        _render(("CREATE INDEX conversations_save_seq ON conversations (save_seq)",), {}),
    ),
    Migration(
        3,
        "conversations indexed by contact alone; SQLite counts saves in a counter row (fewer index"
        " writes per save)",
        _render(
            (
                # (contact_id, updated_at) moved an index entry on every save; a contact has
                # few conversations, so contact_id alone finds them as fast.
                "DROP INDEX conversations_contact",
                "CREATE INDEX conversations_contact_id ON conversations (contact_id)",
                # Migration 2's index only served SQLite's max(save_seq) + 1; a counter row
                # replaces it (PostgreSQL has its sequence and never needed the index).
                "DROP INDEX conversations_save_seq",
            ),
            {
                "sqlite": (
                    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
                    "INSERT INTO counters (name, value)"
                    " SELECT 'conversation_save_seq', coalesce(max(save_seq), 0) FROM conversations",
                ),
            },
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
"""The schema version this code writes and expects."""


def migrate(cur: Cursor, dialect: Dialect, migrations: tuple[Migration, ...] = MIGRATIONS) -> int:
    """Bring the schema up to date inside the current transaction; return its version.

    Raises ``StoreError`` when the database was migrated by newer code than this.
    """
    latest = migrations[-1].version
    dialect.lock_migrations(cur)
    cur.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
        " description TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    cur.execute("SELECT max(version) FROM schema_migrations")
    row = cur.fetchone()
    current = int(row[0]) if row and row[0] is not None else 0
    if current > latest:
        raise StoreError(
            f"the database schema is version {current}, newer than this omnilink "
            f"(which knows up to {latest}): upgrade omnilink-core, or restore an older database"
        )
    for migration in migrations:
        if migration.version <= current:
            continue
        for statement in migration.sql[dialect.name]:
            cur.execute(statement)
        cur.execute(
            dialect.sql("INSERT INTO schema_migrations (version, description, applied_at) VALUES (?, ?, ?)"),
            (migration.version, migration.description, datetime.now(UTC).isoformat(timespec="microseconds")),
        )
    return latest
