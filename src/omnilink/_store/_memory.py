"""The in-memory store: plain dicts behind a lock, for tests and throwaway processes.

A transaction runs synchronously under a ``threading.Lock``. Every write records how to undo
itself; when the transaction function raises, the undo log is replayed backwards, so a failed
transaction leaves nothing behind (handles, dedupe keys and indexes included).

Stored models are frozen pydantic objects shared with the caller, not copies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

import anyio.lowlevel

from .._errors import LifecycleError, ModelError, NotFoundError, StoreError
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
from ._base import OutboxRow, OutboxState, StatusRecord, Store, Transaction, stored_json
from ._migrations import LATEST_VERSION

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

_MISSING: Any = object()


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise ModelError(f"{name} must be a timezone-aware datetime (UTC), got naive {value!r}")
    return value


@dataclass
class _ConversationEntry:
    conversation: Conversation
    save_seq: int


@dataclass(frozen=True)
class _OptOut:
    opted_out: bool
    at: datetime
    keyword: str | None


class _Data:
    """Every table of the store, as dicts keyed like the SQL stores' unique keys."""

    def __init__(self) -> None:
        self.seq = 0
        self.contacts: dict[str, Contact] = {}
        self.handles: dict[tuple[str, str], str] = {}
        self.links: dict[str, tuple[int, ContactLink]] = {}
        self.links_by_contact: dict[str, tuple[str, ...]] = {}
        self.conversations: dict[str, _ConversationEntry] = {}
        self.threads: dict[tuple[str, str, str], frozenset[str]] = {}
        self.inbound: dict[tuple[str, str, str], str] = {}
        self.messages: dict[str, tuple[int, Message]] = {}
        self.by_conversation: dict[str, tuple[str, ...]] = {}
        self.by_thread: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self.provider_ids: dict[tuple[str, str, str], tuple[str, ...]] = {}
        self.idempotency: dict[str, str] = {}
        self.statuses: dict[str, tuple[StatusRecord, ...]] = {}
        self.outbox: dict[str, tuple[int, OutboxRow]] = {}
        self.outbox_by_message: dict[str, tuple[str, ...]] = {}
        self.opt_outs: dict[tuple[str, str, str], _OptOut] = {}
        self.state: dict[str, str] = {}


class _MemoryTransaction:
    """One transaction over ``_Data``; writes go through ``_put``/``_pop`` to be undoable."""

    def __init__(self, data: _Data) -> None:
        self.exclusive = True  # the store lock is held for the whole transaction
        self._d = data
        self._undo: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ undo log

    def _put(self, table: dict[K, V], key: K, value: V) -> None:
        old = table.get(key, _MISSING)
        table[key] = value
        if old is _MISSING:

            def remove() -> None:
                del table[key]

            self._undo.append(remove)
        else:
            self._undo.append(lambda: table.__setitem__(key, old))

    def _pop(self, table: dict[K, V], key: K) -> None:
        old = table.pop(key, _MISSING)
        if old is not _MISSING:
            self._undo.append(lambda: table.__setitem__(key, old))

    def _next_seq(self) -> int:
        self._d.seq += 1
        # Sequence numbers are never reused, even after a rollback (like SQL sequences).
        return self._d.seq

    def rollback(self) -> None:
        while self._undo:
            self._undo.pop()()

    # ------------------------------------------------------------------ locking

    def lock_key(self, key: str) -> None:
        """Nothing to do: the whole store is one lock."""

    # ------------------------------------------------------------------ contacts

    def get_contact(self, contact_id: str) -> Contact | None:
        return self._d.contacts.get(contact_id)

    def contact_by_handle(self, handle: Handle) -> Contact | None:
        owner = self._d.handles.get((handle.channel, handle.address))
        return None if owner is None else self._d.contacts.get(owner)

    def insert_contact(self, contact: Contact) -> None:
        stored_json(contact)
        if contact.id in self._d.contacts:
            raise StoreError(f"contact {contact.id!r} already exists")
        self._put(self._d.contacts, contact.id, contact)
        self._index_handles(contact.id, (), contact.handles)

    def update_contact(self, contact: Contact) -> None:
        stored_json(contact)
        old = self._d.contacts.get(contact.id)
        if old is None:
            raise NotFoundError(f"no contact {contact.id!r}")
        self._index_handles(contact.id, old.handles, contact.handles)
        self._put(self._d.contacts, contact.id, contact)

    def _index_handles(self, contact_id: str, old: Sequence[Handle], new: Sequence[Handle]) -> None:
        """Keep the handle index equal to the contacts' ``handles`` lists."""
        new_keys = {(h.channel, h.address) for h in new}
        for h in old:
            key = (h.channel, h.address)
            if key not in new_keys and self._d.handles.get(key) == contact_id:
                self._pop(self._d.handles, key)
        for key in new_keys:
            owner = self._d.handles.get(key)
            if owner is None:
                self._put(self._d.handles, key, contact_id)
            elif owner != contact_id:
                raise StoreError(f"handle {key[0]}:{key[1]} already belongs to contact {owner!r}")

    def claim_handle(self, handle: Handle, contact_id: str) -> str:
        key = (handle.channel, handle.address)
        owner = self._d.handles.get(key)
        if owner is not None:
            return owner
        contact = self._d.contacts.get(contact_id)
        if contact is None:
            raise NotFoundError(f"cannot give handle {key[0]}:{key[1]} to unknown contact {contact_id!r}")
        self._put(self._d.handles, key, contact_id)
        if handle not in contact.handles:
            self._put(
                self._d.contacts,
                contact_id,
                contact.model_copy(update={"handles": (*contact.handles, handle)}),
            )
        return contact_id

    def insert_link(self, link: ContactLink) -> None:
        stored_json(link)
        if link.id in self._d.links:
            raise StoreError(f"link {link.id!r} already exists")
        self._put(self._d.links, link.id, (self._next_seq(), link))
        for contact_id in {link.contact_id, link.other_contact_id}:
            self._put(
                self._d.links_by_contact, contact_id, (*self._d.links_by_contact.get(contact_id, ()), link.id)
            )

    def update_link(self, link: ContactLink) -> None:
        stored_json(link)
        entry = self._d.links.get(link.id)
        if entry is None:
            raise NotFoundError(f"no link {link.id!r}")
        old = entry[1]
        if {old.contact_id, old.other_contact_id} != {link.contact_id, link.other_contact_id}:
            raise StoreError(f"link {link.id!r}: the linked contacts cannot change")
        self._put(self._d.links, link.id, (entry[0], link))

    def get_link(self, link_id: str) -> ContactLink | None:
        entry = self._d.links.get(link_id)
        return None if entry is None else entry[1]

    def links_of(self, contact_id: str) -> list[ContactLink]:
        entries = [self._d.links[i] for i in self._d.links_by_contact.get(contact_id, ())]
        entries.sort(key=lambda e: (e[1].created_at, e[0]))
        return [link for _, link in entries]

    # ------------------------------------------------------------------ conversations

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        entry = self._d.conversations.get(conversation_id)
        return None if entry is None else entry.conversation

    def save_conversation(self, conversation: Conversation, *, threads_changed: bool = True) -> None:
        stored_json(conversation)
        _aware(conversation.updated_at, "Conversation.updated_at")
        old = self._d.conversations.get(conversation.id)
        old_refs = {(r.channel, r.account, r.key) for r in old.conversation.threads} if old else set()
        new_refs = {(r.channel, r.account, r.key) for r in conversation.threads}
        for ref in old_refs - new_refs:
            self._put(self._d.threads, ref, self._d.threads.get(ref, frozenset()) - {conversation.id})
        for ref in new_refs - old_refs:
            self._put(self._d.threads, ref, self._d.threads.get(ref, frozenset()) | {conversation.id})
        self._put(self._d.conversations, conversation.id, _ConversationEntry(conversation, self._next_seq()))

    @staticmethod
    def _newest_first(entries: list[_ConversationEntry]) -> list[Conversation]:
        entries.sort(key=lambda e: (e.conversation.updated_at, e.save_seq), reverse=True)
        return [e.conversation for e in entries]

    def conversation_for_thread(self, ref: ThreadRef) -> Conversation | None:
        ids = self._d.threads.get((ref.channel, ref.account, ref.key), frozenset())
        entries = [
            e
            for e in (self._d.conversations[i] for i in ids)
            if e.conversation.status is not ConversationStatus.CLOSED
        ]
        found = self._newest_first(entries)
        return found[0] if found else None

    def recent_conversations(self, contact_ids: Sequence[str], since: datetime) -> list[Conversation]:
        _aware(since, "since")
        wanted = set(contact_ids)
        return self._newest_first(
            [
                e
                for e in self._d.conversations.values()
                if e.conversation.contact_id in wanted
                and e.conversation.status is not ConversationStatus.CLOSED
                and e.conversation.updated_at >= since
            ]
        )

    def list_conversations(
        self, *, status: ConversationStatus | None = None, limit: int = 100
    ) -> list[Conversation]:
        entries = [
            e for e in self._d.conversations.values() if status is None or e.conversation.status == status
        ]
        return self._newest_first(entries)[: max(limit, 0)]

    def page_conversations(
        self,
        *,
        status: ConversationStatus | None,
        contact_ids: Sequence[str] | None,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[tuple[Conversation, int]]:
        if before is not None:
            _aware(before[0], "before")
        owners = None if contact_ids is None else set(contact_ids)
        entries = [
            e
            for e in self._d.conversations.values()
            if (status is None or e.conversation.status == status)
            and (owners is None or e.conversation.contact_id in owners)
            and (before is None or (e.conversation.updated_at, e.save_seq) < before)
        ]
        entries.sort(key=lambda e: (e.conversation.updated_at, e.save_seq), reverse=True)
        return [(e.conversation, e.save_seq) for e in entries[: max(limit, 0)]]

    # ------------------------------------------------------------------ messages

    def claim_inbound(self, channel: str, account: str, provider_message_id: str, message_id: str) -> bool:
        key = (channel, account, provider_message_id)
        if key in self._d.inbound:
            return False
        self._put(self._d.inbound, key, message_id)
        return True

    def insert_message(self, message: Message) -> None:
        stored_json(message)
        _aware(message.sent_at, "Message.sent_at")
        if message.id in self._d.messages:
            raise StoreError(f"message {message.id!r} already exists")
        self._put(self._d.messages, message.id, (self._next_seq(), message))
        self._index_message(None, message)

    def update_message(self, message: Message) -> None:
        stored_json(message)
        _aware(message.sent_at, "Message.sent_at")
        entry = self._d.messages.get(message.id)
        if entry is None:
            raise NotFoundError(f"no message {message.id!r}")
        self._put(self._d.messages, message.id, (entry[0], message))
        self._index_message(entry[1], message)

    def _index_message(self, old: Message | None, new: Message) -> None:
        if old is None or old.conversation_id != new.conversation_id:
            if old is not None:
                ids = self._d.by_conversation.get(old.conversation_id, ())
                self._put(self._d.by_conversation, old.conversation_id, tuple(i for i in ids if i != new.id))
            ids = self._d.by_conversation.get(new.conversation_id, ())
            self._put(self._d.by_conversation, new.conversation_id, (*ids, new.id))
        new_thread = (new.channel, new.account, new.thread_key)
        old_thread = None if old is None else (old.channel, old.account, old.thread_key)
        if old_thread != new_thread:
            if old_thread is not None:
                ids = self._d.by_thread.get(old_thread, ())
                self._put(self._d.by_thread, old_thread, tuple(i for i in ids if i != new.id))
            self._put(self._d.by_thread, new_thread, (*self._d.by_thread.get(new_thread, ()), new.id))
        # Provider ids are only ever added: once a message went out under an id, it did.
        for provider_id in (new.provider_message_id, *new.provider_ids):
            if provider_id is not None:
                self._index_provider_id(new.id, new.channel, new.account, provider_id)

    def _index_provider_id(self, message_id: str, channel: str, account: str, provider_id: str) -> None:
        key = (channel, account, provider_id)
        ids = self._d.provider_ids.get(key, ())
        if message_id not in ids:
            self._put(self._d.provider_ids, key, (*ids, message_id))

    def get_message(self, message_id: str) -> Message | None:
        entry = self._d.messages.get(message_id)
        return None if entry is None else entry[1]

    def message_by_provider_id(self, channel: str, account: str, provider_id: str) -> Message | None:
        ids = self._d.provider_ids.get((channel, account, provider_id), ())
        if not ids:
            return None
        return min((self._d.messages[i] for i in ids), key=lambda e: e[0])[1]

    def add_provider_id(self, message_id: str, channel: str, account: str, provider_id: str) -> None:
        entry = self._d.messages.get(message_id)
        if entry is None:
            raise NotFoundError(f"no message {message_id!r}")
        message = entry[1]
        self._index_provider_id(message_id, channel, account, provider_id)
        if provider_id not in message.provider_ids:
            updated = message.model_copy(update={"provider_ids": (*message.provider_ids, provider_id)})
            self._put(self._d.messages, message_id, (entry[0], updated))

    def _sorted(self, ids: Sequence[str]) -> list[tuple[int, Message]]:
        entries = [self._d.messages[i] for i in ids]
        entries.sort(key=lambda e: (e[1].sent_at, e[0]))
        return entries

    def conversation_messages(self, conversation_id: str) -> list[Message]:
        return [m for _, m in self._sorted(self._d.by_conversation.get(conversation_id, ()))]

    def thread_messages(self, channel: str, account: str, thread_key: str, limit: int) -> list[Message]:
        if limit <= 0:
            return []
        entries = self._sorted(self._d.by_thread.get((channel, account, thread_key), ()))
        return [m for _, m in entries[-limit:]]

    def outbound_up_to(
        self, channel: str, account: str, thread_key: str, watermark: datetime
    ) -> list[Message]:
        _aware(watermark, "watermark")
        entries = self._sorted(self._d.by_thread.get((channel, account, thread_key), ()))
        return [m for _, m in entries if m.direction is Direction.OUTBOUND and m.sent_at <= watermark]

    def message_for_idempotency_key(self, key: str) -> str | None:
        return self._d.idempotency.get(key)

    def put_idempotency_key(self, key: str, message_id: str) -> bool:
        if key in self._d.idempotency:
            return False
        self._put(self._d.idempotency, key, message_id)
        return True

    def record_status(self, record: StatusRecord) -> None:
        stored_json(record)
        _aware(record.at, "StatusRecord.at")
        self._put(self._d.statuses, record.message_id, (*self._d.statuses.get(record.message_id, ()), record))

    def status_history(self, message_id: str) -> list[StatusRecord]:
        return list(self._d.statuses.get(message_id, ()))

    # ------------------------------------------------------------------ outbox

    def insert_outbox(self, row: OutboxRow) -> None:
        stored_json(row)
        _aware(row.due_at, "OutboxRow.due_at")
        if row.id in self._d.outbox:
            raise StoreError(f"outbox row {row.id!r} already exists")
        self._put(self._d.outbox, row.id, (self._next_seq(), row))
        self._index_outbox(None, row)

    def _index_outbox(self, old: OutboxRow | None, new: OutboxRow) -> None:
        if old is not None and old.message_id != new.message_id:
            ids = self._d.outbox_by_message.get(old.message_id, ())
            self._put(self._d.outbox_by_message, old.message_id, tuple(i for i in ids if i != new.id))
        if old is None or old.message_id != new.message_id:
            ids = self._d.outbox_by_message.get(new.message_id, ())
            self._put(self._d.outbox_by_message, new.message_id, (*ids, new.id))

    def update_outbox(self, row: OutboxRow) -> None:
        stored_json(row)
        _aware(row.due_at, "OutboxRow.due_at")
        entry = self._d.outbox.get(row.id)
        if entry is None:
            raise NotFoundError(f"no outbox row {row.id!r}")
        self._put(self._d.outbox, row.id, (entry[0], row))
        self._index_outbox(entry[1], row)

    def outbox_for_message(self, message_id: str) -> list[OutboxRow]:
        entries = [self._d.outbox[i] for i in self._d.outbox_by_message.get(message_id, ())]
        entries.sort(key=lambda e: (e[1].part_index, e[0]))
        return [row for _, row in entries]

    def claim_outbox(
        self, *, now: datetime, lease_until: datetime, limit: int, exclude_channels: Sequence[str] = ()
    ) -> list[OutboxRow]:
        _aware(now, "now")
        _aware(lease_until, "lease_until")
        excluded = set(exclude_channels)
        due = [e for e in self._d.outbox.values() if e[1].channel not in excluded and _is_due(e[1], now)]
        due.sort(key=lambda e: (e[1].due_at, e[0]))
        claimed: list[OutboxRow] = []
        for seq, row in due[: max(limit, 0)]:
            self._put(
                self._d.outbox,
                row.id,
                (seq, row.model_copy(update={"state": OutboxState.IN_FLIGHT, "lease_until": lease_until})),
            )
            claimed.append(row.model_copy(update={"lease_until": lease_until}))
        return claimed

    def next_outbox_due(self) -> datetime | None:
        times: list[datetime] = []
        for _, row in self._d.outbox.values():
            if row.state is OutboxState.PENDING:
                times.append(row.due_at)
            elif row.state is OutboxState.IN_FLIGHT:
                times.append(row.lease_until or row.due_at)
        return min(times, default=None)

    # ------------------------------------------------------------------ opt-outs

    def set_opt_out(
        self, channel: str, account: str, address: str, opted_out: bool, at: datetime, keyword: str | None
    ) -> None:
        _aware(at, "at")
        self._put(self._d.opt_outs, (channel, account, address), _OptOut(opted_out, at, keyword))

    def is_opted_out(self, channel: str, account: str, address: str) -> bool:
        entry = self._d.opt_outs.get((channel, account, address))
        return entry is not None and entry.opted_out

    # ------------------------------------------------------------------ state

    def get_state(self, key: str) -> str | None:
        return self._d.state.get(key)

    def set_state(self, key: str, value: str) -> None:
        self._put(self._d.state, key, value)

    # ------------------------------------------------------------------ metrics

    def awaiting_reply(self, since_before: datetime) -> list[Conversation]:
        _aware(since_before, "since_before")
        found: list[_ConversationEntry] = []
        for entry in self._d.conversations.values():
            c = entry.conversation
            if c.status not in (ConversationStatus.OPEN, ConversationStatus.PENDING):
                continue
            if c.last_inbound_at is None or c.last_inbound_at >= since_before:
                continue
            if c.last_outbound_at is None or c.last_outbound_at < c.last_inbound_at:
                found.append(entry)
        found.sort(key=lambda e: (e.conversation.last_inbound_at or since_before, e.save_seq))
        return [e.conversation for e in found]

    def count_messages(self) -> int:
        return len(self._d.messages)


def _is_due(row: OutboxRow, now: datetime) -> bool:
    if row.state is OutboxState.PENDING:
        return row.due_at <= now
    if row.state is OutboxState.IN_FLIGHT:
        return row.lease_until is None or row.lease_until <= now
    return False


class MemoryStore(Store):
    """Everything in process memory; lost when the process ends.

    Data survives ``aclose()`` and a later ``open()`` of the same instance, so a test can stop
    one Hub and start another on the same store to play a restart.
    """

    single_writer = True

    def __init__(self) -> None:
        self.schema_version = LATEST_VERSION
        self._data = _Data()
        self._lock = threading.Lock()
        self._open = False

    async def open(self) -> None:
        if self._open:
            raise LifecycleError("MemoryStore is already open")
        self._open = True

    async def aclose(self) -> None:
        self._open = False

    @property
    def is_open(self) -> bool:
        return self._open

    async def run(self, fn: Callable[[Transaction], T]) -> T:
        if not self._open:
            raise LifecycleError("MemoryStore is not open: use `async with store:` or `await store.open()`")
        # Every run is a checkpoint, like the SQL stores' thread hops: a loop of store calls
        # never starves other tasks (or ignores cancellation).
        await anyio.lowlevel.checkpoint()
        return self.run_sync(fn)

    def run_sync(self, fn: Callable[[Transaction], T]) -> T:
        """Run ``fn`` in one transaction from synchronous code (tests, tools)."""
        with self._lock:
            tx = _MemoryTransaction(self._data)
            try:
                return fn(tx)
            except BaseException:
                tx.rollback()
                raise
