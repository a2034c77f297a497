"""The SQL transaction shared by the SQLite and PostgreSQL stores.

``SQLTransaction`` implements every ``Transaction`` method once, as SQL written with ``?``
placeholders; a ``Dialect`` says what differs: the placeholder, how timestamps travel, row
locks (``FOR UPDATE`` / ``SKIP LOCKED``), the advisory lock behind ``lock_key`` and how a
conversation gets its save sequence number. Both databases accept the same
``INSERT ... ON CONFLICT`` upserts, which carry every dedupe decision (never check-then-insert).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from .._errors import ModelError, NotFoundError, StoreError
from .._models import (
    Contact,
    ContactLink,
    Conversation,
    ConversationStatus,
    Direction,
    Handle,
    Message,
    ThreadRef,
)
from ._base import OutboxRow, OutboxState, StatusRecord, stored_json, stored_model


class Cursor(Protocol):
    """What both ``sqlite3.Cursor`` and ``psycopg.Cursor`` offer."""

    @property
    def rowcount(self) -> int: ...
    def execute(self, query: Any, params: Any = ..., /) -> object: ...
    def executemany(self, query: Any, params_seq: Any, /) -> object: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ModelError(f"{name} must be a timezone-aware datetime (UTC), got naive {value!r}")
    return value


@functools.lru_cache(maxsize=1024)
def _sqlite_ts(value: datetime) -> str:
    # Fixed width, always UTC: comparing or sorting the text compares the instants. Cached:
    # one ingest writes the same instants several times (a message's sent_at is its
    # conversation's last_inbound_at; every save of a batch has the same updated_at), and
    # equal instants in any zone hash and compare equal, so they share one text.
    return value.astimezone(UTC).isoformat(timespec="microseconds")


def _sqlite_ts_back(value: Any) -> datetime:
    return datetime.fromisoformat(str(value)).astimezone(UTC)


def _pg_ts(value: datetime) -> datetime:
    return value


def _pg_ts_back(value: Any) -> datetime:
    if not isinstance(value, datetime):
        raise StoreError(f"expected a timestamp from PostgreSQL, got {value!r}")
    return value.astimezone(UTC)


@dataclass(frozen=True)
class Dialect:
    name: Literal["sqlite", "postgres"]
    placeholder: str
    ts_in: Callable[[datetime], object]
    ts_out: Callable[[Any], datetime]
    row_lock: str
    """Appended to a SELECT whose rows are read, modified and written back."""
    skip_locked: str
    """Appended to the outbox claim: take rows nobody else holds."""
    next_save_seq: str
    """SQL expression for the next conversation save sequence number (``?``: a parameter)."""
    save_seq_counter: bool
    """Save numbers come from the ``counters`` row: read at a transaction's first save, counted
    in memory, written back by ``SQLTransaction.finish`` (the transaction holds the only write
    lock, so nobody else moves the counter in between)."""
    lock_key_sql: str | None
    migration_lock_sql: str | None
    _cache: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    def sql(self, text: str) -> str:
        """``text`` with ``?`` placeholders turned into this dialect's."""
        out = self._cache.get(text)
        if out is None:
            out = self._cache[text] = text.replace("?", self.placeholder)
        return out

    def ts(self, value: datetime, name: str = "datetime") -> object:
        return self.ts_in(_aware(value, name))

    def lock_migrations(self, cur: Cursor) -> None:
        if self.migration_lock_sql is not None:
            cur.execute(self.migration_lock_sql)


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    ts_in=_sqlite_ts,
    ts_out=_sqlite_ts_back,
    row_lock="",
    skip_locked="",
    # One counter row (migration 3): the writer holds the database's only write lock, and the
    # row is one page that every save touches, instead of an index entry moved per save.
    next_save_seq="?",
    save_seq_counter=True,
    lock_key_sql=None,
    migration_lock_sql=None,
)

POSTGRES = Dialect(
    name="postgres",
    placeholder="%s",
    ts_in=_pg_ts,
    ts_out=_pg_ts_back,
    row_lock=" FOR UPDATE",
    skip_locked=" FOR UPDATE SKIP LOCKED",
    next_save_seq="nextval('conversation_save_seq')",
    save_seq_counter=False,
    # Advisory locks are database-wide: scope the key by schema so Hubs on different schemas
    # of one database never block each other.
    lock_key_sql="SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':' || %s, 0))",
    # One constant key: concurrent openers migrate one after the other.
    migration_lock_sql="SELECT pg_advisory_xact_lock(7235028631772116)",
)


def _marks(n: int) -> str:
    return ", ".join("?" * n)


class SQLTransaction:
    """Every ``Transaction`` method, over one cursor inside an open database transaction."""

    def __init__(self, cur: Cursor, dialect: Dialect) -> None:
        self._cur = cur
        self._d = dialect
        # Without per-key locks (SQLite) the transaction holds the only write lock.
        self.exclusive = dialect.lock_key_sql is None
        self._save_seq: int | None = None
        self._save_seq_stored: int | None = None
        # Dedupe claims made in this transaction: (channel, account, provider id) -> message id.
        self._claimed: dict[tuple[str, str, str], str] = {}

    def finish(self) -> None:
        """Write back what the transaction counted; the store calls this just before COMMIT."""
        if self._save_seq is not None and self._save_seq != self._save_seq_stored:
            self._x("UPDATE counters SET value = ? WHERE name = 'conversation_save_seq'", (self._save_seq,))
            self._save_seq_stored = self._save_seq

    def _next_save_seq(self) -> int:
        if self._save_seq is None:
            row = self._one("SELECT value FROM counters WHERE name = 'conversation_save_seq'")
            if row is None:
                raise StoreError("the conversation save counter is missing (schema not migrated?)")
            self._save_seq = self._save_seq_stored = int(row[0])
        self._save_seq += 1
        return self._save_seq

    # ------------------------------------------------------------------ helpers

    def _x(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(self._d.sql(sql), params)
        return self._cur.rowcount

    def _one(self, sql: str, params: Sequence[Any] = ()) -> Any:
        self._cur.execute(self._d.sql(sql), params)
        return self._cur.fetchone()

    def _all(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        self._cur.execute(self._d.sql(sql), params)
        return self._cur.fetchall()

    def _ts(self, value: datetime | None, name: str) -> object:
        return None if value is None else self._d.ts(value, name)

    # ------------------------------------------------------------------ locking

    def lock_key(self, key: str) -> None:
        if self._d.lock_key_sql is not None:
            self._cur.execute(self._d.lock_key_sql, (key,))

    # ------------------------------------------------------------------ contacts

    def get_contact(self, contact_id: str) -> Contact | None:
        row = self._one("SELECT data FROM contacts WHERE id = ?", (contact_id,))
        return None if row is None else stored_model(Contact, row[0])

    def _get_contact_for_update(self, contact_id: str) -> Contact | None:
        row = self._one("SELECT data FROM contacts WHERE id = ?" + self._d.row_lock, (contact_id,))
        return None if row is None else stored_model(Contact, row[0])

    def contact_by_handle(self, handle: Handle) -> Contact | None:
        row = self._one(
            "SELECT c.data FROM handles h JOIN contacts c ON c.id = h.contact_id"
            " WHERE h.channel = ? AND h.address = ?",
            (handle.channel, handle.address),
        )
        return None if row is None else stored_model(Contact, row[0])

    def insert_contact(self, contact: Contact) -> None:
        self._x("INSERT INTO contacts (id, data) VALUES (?, ?)", (contact.id, stored_json(contact)))
        self._index_handles(contact.id, (), contact.handles)

    def update_contact(self, contact: Contact) -> None:
        old = self._get_contact_for_update(contact.id)
        if old is None:
            raise NotFoundError(f"no contact {contact.id!r}")
        self._index_handles(contact.id, old.handles, contact.handles)
        self._x("UPDATE contacts SET data = ? WHERE id = ?", (stored_json(contact), contact.id))

    def _index_handles(self, contact_id: str, old: Sequence[Handle], new: Sequence[Handle]) -> None:
        """Keep the handle table equal to the contacts' ``handles`` lists."""
        new_keys = {(h.channel, h.address) for h in new}
        for h in old:
            if (h.channel, h.address) not in new_keys:
                self._x(
                    "DELETE FROM handles WHERE channel = ? AND address = ? AND contact_id = ?",
                    (h.channel, h.address, contact_id),
                )
        for channel, address in sorted(new_keys):
            inserted = self._x(
                "INSERT INTO handles (channel, address, contact_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (channel, address, contact_id),
            )
            if not inserted:
                owner = self._handle_owner(channel, address)
                if owner != contact_id:
                    raise StoreError(f"handle {channel}:{address} already belongs to contact {owner!r}")

    def _handle_owner(self, channel: str, address: str) -> str | None:
        row = self._one(
            "SELECT contact_id FROM handles WHERE channel = ? AND address = ?", (channel, address)
        )
        return None if row is None else str(row[0])

    def claim_handle(self, handle: Handle, contact_id: str) -> str:
        inserted = self._x(
            "INSERT INTO handles (channel, address, contact_id) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (handle.channel, handle.address, contact_id),
        )
        if not inserted:
            owner = self._handle_owner(handle.channel, handle.address)
            if owner is None:  # pragma: no cover - a unique key conflict implies a row
                raise StoreError(f"handle {handle.channel}:{handle.address} vanished while claiming it")
            return owner
        contact = self._get_contact_for_update(contact_id)
        if contact is None:
            raise NotFoundError(
                f"cannot give handle {handle.channel}:{handle.address} to unknown contact {contact_id!r}"
            )
        if handle not in contact.handles:
            updated = contact.model_copy(update={"handles": (*contact.handles, handle)})
            self._x("UPDATE contacts SET data = ? WHERE id = ?", (stored_json(updated), contact_id))
        return contact_id

    def insert_link(self, link: ContactLink) -> None:
        self._x(
            "INSERT INTO contact_links (id, contact_id, other_contact_id, created_at, data)"
            " VALUES (?, ?, ?, ?, ?)",
            (
                link.id,
                link.contact_id,
                link.other_contact_id,
                self._d.ts(link.created_at, "ContactLink.created_at"),
                stored_json(link),
            ),
        )

    def update_link(self, link: ContactLink) -> None:
        updated = self._x(
            "UPDATE contact_links SET contact_id = ?, other_contact_id = ?, created_at = ?, data = ?"
            " WHERE id = ?",
            (
                link.contact_id,
                link.other_contact_id,
                self._d.ts(link.created_at, "ContactLink.created_at"),
                stored_json(link),
                link.id,
            ),
        )
        if not updated:
            raise NotFoundError(f"no link {link.id!r}")

    def get_link(self, link_id: str) -> ContactLink | None:
        row = self._one("SELECT data FROM contact_links WHERE id = ?", (link_id,))
        return None if row is None else stored_model(ContactLink, row[0])

    def links_of(self, contact_id: str) -> list[ContactLink]:
        rows = self._all(
            "SELECT data FROM contact_links WHERE contact_id = ? OR other_contact_id = ?"
            " ORDER BY created_at, seq",
            (contact_id, contact_id),
        )
        return [stored_model(ContactLink, r[0]) for r in rows]

    # ------------------------------------------------------------------ conversations

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        row = self._one("SELECT data FROM conversations WHERE id = ?", (conversation_id,))
        return None if row is None else stored_model(Conversation, row[0])

    def save_conversation(self, conversation: Conversation, *, threads_changed: bool = True) -> None:
        c = conversation
        seq: tuple[Any, ...] = (self._next_save_seq(),) if self._d.save_seq_counter else ()
        # A conversation's contact never changes: leaving contact_id out of the update spares
        # the index on it a write per save.
        self._x(
            "INSERT INTO conversations (id, contact_id, status, updated_at, last_inbound_at,"
            f" last_outbound_at, save_seq, data) VALUES (?, ?, ?, ?, ?, ?, {self._d.next_save_seq}, ?)"
            " ON CONFLICT (id) DO UPDATE SET status = excluded.status,"
            " updated_at = excluded.updated_at, last_inbound_at = excluded.last_inbound_at,"
            " last_outbound_at = excluded.last_outbound_at, save_seq = excluded.save_seq,"
            " data = excluded.data",
            (
                c.id,
                c.contact_id,
                c.status.value,
                self._d.ts(c.updated_at, "Conversation.updated_at"),
                self._ts(c.last_inbound_at, "Conversation.last_inbound_at"),
                self._ts(c.last_outbound_at, "Conversation.last_outbound_at"),
                *seq,
                stored_json(c),
            ),
        )
        if not threads_changed:
            return
        self._x("DELETE FROM conversation_threads WHERE conversation_id = ?", (c.id,))
        refs = sorted({(r.channel, r.account, r.key) for r in c.threads})
        if refs:
            self._cur.executemany(
                self._d.sql(
                    "INSERT INTO conversation_threads (channel, account, thread_key, conversation_id)"
                    " VALUES (?, ?, ?, ?)"
                ),
                [(*ref, c.id) for ref in refs],
            )

    def conversation_for_thread(self, ref: ThreadRef) -> Conversation | None:
        row = self._one(
            "SELECT c.data FROM conversation_threads t JOIN conversations c ON c.id = t.conversation_id"
            " WHERE t.channel = ? AND t.account = ? AND t.thread_key = ? AND c.status <> ?"
            " ORDER BY c.updated_at DESC, c.save_seq DESC LIMIT 1",
            (ref.channel, ref.account, ref.key, ConversationStatus.CLOSED.value),
        )
        return None if row is None else stored_model(Conversation, row[0])

    def recent_conversations(self, contact_ids: Sequence[str], since: datetime) -> list[Conversation]:
        ids = list(dict.fromkeys(contact_ids))
        if not ids:
            return []
        rows = self._all(
            f"SELECT data FROM conversations WHERE contact_id IN ({_marks(len(ids))})"
            " AND status <> ? AND updated_at >= ? ORDER BY updated_at DESC, save_seq DESC",
            (*ids, ConversationStatus.CLOSED.value, self._d.ts(since, "since")),
        )
        return [stored_model(Conversation, r[0]) for r in rows]

    def list_conversations(
        self, *, status: ConversationStatus | None = None, limit: int = 100
    ) -> list[Conversation]:
        limit = max(limit, 0)
        if status is None:
            rows = self._all(
                "SELECT data FROM conversations ORDER BY updated_at DESC, save_seq DESC LIMIT ?", (limit,)
            )
        else:
            rows = self._all(
                "SELECT data FROM conversations WHERE status = ?"
                " ORDER BY updated_at DESC, save_seq DESC LIMIT ?",
                (ConversationStatus(status).value, limit),
            )
        return [stored_model(Conversation, r[0]) for r in rows]

    def page_conversations(
        self,
        *,
        status: ConversationStatus | None,
        contact_ids: Sequence[str] | None,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[tuple[Conversation, int]]:
        if limit <= 0 or (contact_ids is not None and not contact_ids):
            return []
        where: list[str] = []
        params: list[Any] = []
        if status is not None:
            where.append("status = ?")
            params.append(ConversationStatus(status).value)
        if contact_ids is not None:
            ids = list(dict.fromkeys(contact_ids))
            where.append(f"contact_id IN ({_marks(len(ids))})")
            params.extend(ids)
        if before is not None:
            at = self._d.ts(before[0], "before")
            where.append("(updated_at, save_seq) < (?, ?)")  # a row comparison: one index range
            params.extend((at, int(before[1])))
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self._all(
            f"SELECT data, save_seq FROM conversations{clause}"
            " ORDER BY updated_at DESC, save_seq DESC LIMIT ?",
            (*params, limit),
        )
        return [(stored_model(Conversation, r[0]), int(r[1])) for r in rows]

    # ------------------------------------------------------------------ messages

    def claim_inbound(self, channel: str, account: str, provider_message_id: str, message_id: str) -> bool:
        claimed = self._x(
            "INSERT INTO inbound_claims (channel, account, provider_message_id, message_id)"
            " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (channel, account, provider_message_id, message_id),
        )
        if claimed:
            self._claimed[(channel, account, provider_message_id)] = message_id
        return bool(claimed)

    def _message_columns(self, m: Message) -> tuple[Any, ...]:
        return (
            m.conversation_id,
            m.direction.value,
            m.channel,
            m.account,
            m.thread_key,
            self._d.ts(m.sent_at, "Message.sent_at"),
            stored_json(m),
            m.id,
        )

    def insert_message(self, message: Message) -> None:
        self._x(
            "INSERT INTO messages (conversation_id, direction, channel, account, thread_key, sent_at,"
            " data, id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            self._message_columns(message),
        )
        self._index_provider_ids(message)

    def update_message(self, message: Message) -> None:
        updated = self._x(
            "UPDATE messages SET conversation_id = ?, direction = ?, channel = ?, account = ?,"
            " thread_key = ?, sent_at = ?, data = ? WHERE id = ?",
            self._message_columns(message),
        )
        if not updated:
            raise NotFoundError(f"no message {message.id!r}")
        self._index_provider_ids(message)

    def _index_provider_ids(self, m: Message) -> None:
        # Provider ids are only ever added: once a message went out under an id, it did.
        ids = dict.fromkeys(p for p in (m.provider_message_id, *m.provider_ids) if p is not None)
        for provider_id in ids:
            if self._claimed.get((m.channel, m.account, provider_id)) == m.id:
                # The dedupe claim already maps this id to the message (message_by_provider_id
                # reads both tables): a second row would only cost another index write.
                continue
            self._x(
                "INSERT INTO message_provider_ids (channel, account, provider_id, message_id)"
                " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (m.channel, m.account, provider_id, m.id),
            )

    def get_message(self, message_id: str) -> Message | None:
        row = self._one("SELECT data FROM messages WHERE id = ?", (message_id,))
        return None if row is None else stored_model(Message, row[0])

    def message_by_provider_id(self, channel: str, account: str, provider_id: str) -> Message | None:
        # An inbound message's own id is found by its dedupe claim; ids a message gained
        # otherwise (sends, echoes, updates) by message_provider_ids.
        row = self._one(
            "SELECT data FROM messages WHERE id IN ("
            "SELECT message_id FROM message_provider_ids"
            " WHERE channel = ? AND account = ? AND provider_id = ?"
            " UNION ALL SELECT message_id FROM inbound_claims"
            " WHERE channel = ? AND account = ? AND provider_message_id = ?"
            ") ORDER BY seq LIMIT 1",
            (channel, account, provider_id, channel, account, provider_id),
        )
        return None if row is None else stored_model(Message, row[0])

    def add_provider_id(self, message_id: str, channel: str, account: str, provider_id: str) -> None:
        row = self._one("SELECT data FROM messages WHERE id = ?" + self._d.row_lock, (message_id,))
        if row is None:
            raise NotFoundError(f"no message {message_id!r}")
        message = stored_model(Message, row[0])
        self._x(
            "INSERT INTO message_provider_ids (channel, account, provider_id, message_id)"
            " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (channel, account, provider_id, message_id),
        )
        if provider_id not in message.provider_ids:
            updated = message.model_copy(update={"provider_ids": (*message.provider_ids, provider_id)})
            self._x("UPDATE messages SET data = ? WHERE id = ?", (stored_json(updated), message_id))

    def conversation_messages(self, conversation_id: str) -> list[Message]:
        rows = self._all(
            "SELECT data FROM messages WHERE conversation_id = ? ORDER BY sent_at, seq", (conversation_id,)
        )
        return [stored_model(Message, r[0]) for r in rows]

    def thread_messages(self, channel: str, account: str, thread_key: str, limit: int) -> list[Message]:
        if limit <= 0:
            return []
        rows = self._all(
            "SELECT data FROM (SELECT data, sent_at, seq FROM messages"
            " WHERE channel = ? AND account = ? AND thread_key = ? ORDER BY sent_at DESC, seq DESC LIMIT ?)"
            " AS latest ORDER BY sent_at, seq",
            (channel, account, thread_key, limit),
        )
        return [stored_model(Message, r[0]) for r in rows]

    def outbound_up_to(
        self, channel: str, account: str, thread_key: str, watermark: datetime
    ) -> list[Message]:
        rows = self._all(
            "SELECT data FROM messages WHERE channel = ? AND account = ? AND thread_key = ?"
            " AND direction = ? AND sent_at <= ? ORDER BY sent_at, seq",
            (channel, account, thread_key, Direction.OUTBOUND.value, self._d.ts(watermark, "watermark")),
        )
        return [stored_model(Message, r[0]) for r in rows]

    def message_for_idempotency_key(self, key: str) -> str | None:
        row = self._one("SELECT message_id FROM idempotency_keys WHERE idempotency_key = ?", (key,))
        return None if row is None else str(row[0])

    def put_idempotency_key(self, key: str, message_id: str) -> bool:
        return bool(
            self._x(
                "INSERT INTO idempotency_keys (idempotency_key, message_id) VALUES (?, ?)"
                " ON CONFLICT DO NOTHING",
                (key, message_id),
            )
        )

    def record_status(self, record: StatusRecord) -> None:
        _aware(record.at, "StatusRecord.at")
        self._x(
            "INSERT INTO status_records (message_id, data) VALUES (?, ?)",
            (record.message_id, stored_json(record)),
        )

    def status_history(self, message_id: str) -> list[StatusRecord]:
        rows = self._all("SELECT data FROM status_records WHERE message_id = ? ORDER BY seq", (message_id,))
        return [stored_model(StatusRecord, r[0]) for r in rows]

    # ------------------------------------------------------------------ outbox

    def _outbox_columns(self, row: OutboxRow) -> tuple[Any, ...]:
        return (
            row.message_id,
            row.part_index,
            row.channel,
            row.state.value,
            self._d.ts(row.due_at, "OutboxRow.due_at"),
            self._ts(row.lease_until, "OutboxRow.lease_until"),
            stored_json(row),
            row.id,
        )

    def insert_outbox(self, row: OutboxRow) -> None:
        self._x(
            "INSERT INTO outbox (message_id, part_index, channel, state, due_at, lease_until, data, id)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            self._outbox_columns(row),
        )

    def update_outbox(self, row: OutboxRow) -> None:
        updated = self._x(
            "UPDATE outbox SET message_id = ?, part_index = ?, channel = ?, state = ?, due_at = ?,"
            " lease_until = ?, data = ? WHERE id = ?",
            self._outbox_columns(row),
        )
        if not updated:
            raise NotFoundError(f"no outbox row {row.id!r}")

    def outbox_for_message(self, message_id: str) -> list[OutboxRow]:
        rows = self._all(
            "SELECT data FROM outbox WHERE message_id = ? ORDER BY part_index, seq", (message_id,)
        )
        return [stored_model(OutboxRow, r[0]) for r in rows]

    def claim_outbox(
        self, *, now: datetime, lease_until: datetime, limit: int, exclude_channels: Sequence[str] = ()
    ) -> list[OutboxRow]:
        if limit <= 0:
            return []
        at = self._d.ts(now, "now")
        lease = self._d.ts(lease_until, "lease_until")
        excluded = list(dict.fromkeys(exclude_channels))
        channel_filter = f" AND channel NOT IN ({_marks(len(excluded))})" if excluded else ""
        rows = self._all(
            "SELECT data FROM outbox WHERE ((state = ? AND due_at <= ?)"
            " OR (state = ? AND (lease_until IS NULL OR lease_until <= ?)))"
            f"{channel_filter} ORDER BY due_at, seq LIMIT ?{self._d.skip_locked}",
            (OutboxState.PENDING.value, at, OutboxState.IN_FLIGHT.value, at, *excluded, limit),
        )
        claimed = [
            stored_model(OutboxRow, r[0]).model_copy(update={"lease_until": lease_until}) for r in rows
        ]
        if claimed:
            self._cur.executemany(
                self._d.sql("UPDATE outbox SET state = ?, lease_until = ?, data = ? WHERE id = ?"),
                [
                    (
                        OutboxState.IN_FLIGHT.value,
                        lease,
                        stored_json(row.model_copy(update={"state": OutboxState.IN_FLIGHT})),
                        row.id,
                    )
                    for row in claimed
                ],
            )
        return claimed

    def next_outbox_due(self) -> datetime | None:
        # One statement, so one snapshot: under READ COMMITTED two queries could miss a row
        # that moved from in_flight to pending between them.
        row = self._one(
            "SELECT min(t) FROM (SELECT min(due_at) AS t FROM outbox WHERE state = ?"
            " UNION ALL SELECT min(coalesce(lease_until, due_at)) AS t FROM outbox WHERE state = ?) AS due",
            (OutboxState.PENDING.value, OutboxState.IN_FLIGHT.value),
        )
        return None if row is None or row[0] is None else self._d.ts_out(row[0])

    # ------------------------------------------------------------------ opt-outs

    def set_opt_out(
        self, channel: str, account: str, address: str, opted_out: bool, at: datetime, keyword: str | None
    ) -> None:
        self._x(
            "INSERT INTO opt_outs (channel, account, address, opted_out, at, keyword)"
            " VALUES (?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (channel, account, address) DO UPDATE SET opted_out = excluded.opted_out,"
            " at = excluded.at, keyword = excluded.keyword",
            (channel, account, address, bool(opted_out), self._d.ts(at, "at"), keyword),
        )

    def is_opted_out(self, channel: str, account: str, address: str) -> bool:
        row = self._one(
            "SELECT opted_out FROM opt_outs WHERE channel = ? AND account = ? AND address = ?",
            (channel, account, address),
        )
        return row is not None and bool(row[0])

    # ------------------------------------------------------------------ state

    def get_state(self, key: str) -> str | None:
        row = self._one("SELECT value FROM channel_state WHERE state_key = ?", (key,))
        return None if row is None else str(row[0])

    def set_state(self, key: str, value: str) -> None:
        self._x(
            "INSERT INTO channel_state (state_key, value) VALUES (?, ?)"
            " ON CONFLICT (state_key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # ------------------------------------------------------------------ metrics

    def awaiting_reply(self, since_before: datetime) -> list[Conversation]:
        rows = self._all(
            "SELECT data FROM conversations WHERE status IN (?, ?) AND last_inbound_at IS NOT NULL"
            " AND last_inbound_at < ? AND (last_outbound_at IS NULL OR last_outbound_at < last_inbound_at)"
            " ORDER BY last_inbound_at, save_seq",
            (
                ConversationStatus.OPEN.value,
                ConversationStatus.PENDING.value,
                self._d.ts(since_before, "since_before"),
            ),
        )
        return [stored_model(Conversation, r[0]) for r in rows]

    def count_messages(self) -> int:
        row = self._one("SELECT count(*) FROM messages")
        return int(row[0])
