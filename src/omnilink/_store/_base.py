"""The storage contract: a Store runs synchronous transactions over a Transaction interface.

The receive pipeline, the dispatcher and the queries are written once, as plain functions of
a ``Transaction``; each store decides how to run them (under a lock in memory, on a worker
thread for SQLite and PostgreSQL). That keeps the three stores behaviourally identical and
independent of the async backend (asyncio or trio).

Uniqueness is enforced by the store itself (unique keys), never by check-then-insert:
``claim_inbound`` and ``claim_handle`` are the dedupe points.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

from anyio.abc import TaskStatus
from pydantic import BaseModel, ConfigDict
from pydantic_core import PydanticSerializationError

from .._errors import ModelError
from .._models import (
    Contact,
    ContactLink,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Handle,
    Message,
    ThreadRef,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)


def stored_model(model: type[M], data: str | bytes) -> M:
    """A model read back from a stored row; fields this code does not know are ignored.

    Rows written by newer code (a rolling upgrade: new and old processes on one database)
    may carry fields added since; old code reads them instead of failing. What it rewrites
    loses those fields, so a new field must be optional, and worth writing only once every
    process knows it (docs/decisions.md).
    """
    return model.model_validate_json(data, extra="ignore")


def stored_json(model: BaseModel) -> str:
    """The JSON a store keeps for ``model``; ``ModelError`` when it has none (a lone surrogate).

    Every store checks this on every write, the memory store too, so what one store refuses
    every store refuses, inside the transaction (which then rolls back).
    """
    try:
        # Unset optional fields (None) are left out: rows are a third smaller, and a field a
        # release adds stays out of every row that does not use it, so older processes read
        # those rows as they are. Defaults fill them back in on reading.
        return model.model_dump_json(exclude_none=True)
    except PydanticSerializationError as exc:
        raise ModelError(f"the {type(model).__name__} cannot be stored: {exc}") from exc


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    """Waiting for its ``due_at``."""
    IN_FLIGHT = "in_flight"
    """Claimed by a dispatcher until ``lease_until``; past that, its outcome is unknown."""
    DONE = "done"
    FAILED = "failed"
    UNKNOWN = "unknown"
    """A crash interrupted the send and the provider allows no lookup: not resent."""


class OutboxRow(BaseModel):
    """One provider message waiting to be sent (one planned piece of an outbound Message)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    message_id: str
    part_index: int
    channel: str
    state: OutboxState = OutboxState.PENDING
    attempts: int = 0
    due_at: datetime
    lease_until: datetime | None = None
    last_error: str | None = None
    provider_message_id: str | None = None
    created_at: datetime


class StatusRecord(BaseModel):
    """One delivery update as it arrived, applied or not."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message_id: str
    status: DeliveryStatus
    at: datetime
    applied: bool
    """False when the update would have moved the status backwards (stale, out of order)."""
    error: str | None = None


class Transaction(Protocol):
    """Synchronous operations inside one store transaction.

    Every method either completes inside the transaction or raises; the store rolls back the
    whole transaction on any exception, so nothing is half-written.
    """

    exclusive: bool
    """True when the transaction excludes every other writer for its whole length (memory,
    SQLite): what it read cannot change under it, so nothing needs re-reading after a lock."""

    # ---- locking (PostgreSQL serialises per key; single-writer stores do nothing)
    def lock_key(self, key: str) -> None:
        """Hold an exclusive lock on ``key`` until the transaction ends."""

    # ---- contacts
    def get_contact(self, contact_id: str) -> Contact | None: ...
    def contact_by_handle(self, handle: Handle) -> Contact | None: ...
    def insert_contact(self, contact: Contact) -> None:
        """Insert a contact with no handles (handles are added with ``claim_handle``)."""

    def update_contact(self, contact: Contact) -> None:
        """Replace the stored contact (display name, handles list)."""

    def claim_handle(self, handle: Handle, contact_id: str) -> str:
        """Give ``handle`` to ``contact_id`` unless it already belongs to a contact.

        Returns the id of the contact that owns the handle afterwards (unique key, no race).
        Also appends the handle to that contact's ``handles`` when it is newly claimed.
        """

    def insert_link(self, link: ContactLink) -> None: ...
    def update_link(self, link: ContactLink) -> None: ...
    def get_link(self, link_id: str) -> ContactLink | None: ...
    def links_of(self, contact_id: str) -> list[ContactLink]:
        """Every link touching ``contact_id`` (either side), undone ones included, oldest first."""

    # ---- conversations
    def get_conversation(self, conversation_id: str) -> Conversation | None: ...
    def save_conversation(self, conversation: Conversation, *, threads_changed: bool = True) -> None:
        """Insert or replace; also indexes every ThreadRef in ``conversation.threads``.

        ``threads_changed=False`` promises the threads are those last saved (an update that
        only moves timestamps), so the index need not be rewritten."""

    def conversation_for_thread(self, ref: ThreadRef) -> Conversation | None:
        """The most recently updated conversation holding ``ref`` whose status is not closed."""

    def recent_conversations(self, contact_ids: Sequence[str], since: datetime) -> list[Conversation]:
        """Conversations of these contacts, not closed, updated at or after ``since``, newest first."""

    def list_conversations(
        self, *, status: ConversationStatus | None = None, limit: int = 100
    ) -> list[Conversation]:
        """Newest-updated first."""

    def page_conversations(
        self,
        *,
        status: ConversationStatus | None,
        contact_ids: Sequence[str] | None,
        before: tuple[datetime, int] | None,
        limit: int,
    ) -> list[tuple[Conversation, int]]:
        """Newest-updated first, with each one's save number, strictly after the position
        ``before`` (an ``(updated_at, save number)`` pair from an earlier page) when given; only
        these contacts' conversations when ``contact_ids`` is given."""

    # ---- messages
    def claim_inbound(self, channel: str, account: str, provider_message_id: str, message_id: str) -> bool:
        """Record the dedupe key of an inbound item; False if it was already recorded."""

    def insert_message(self, message: Message) -> None: ...
    def update_message(self, message: Message) -> None: ...
    def get_message(self, message_id: str) -> Message | None: ...
    def message_by_provider_id(self, channel: str, account: str, provider_id: str) -> Message | None:
        """Match ``provider_message_id`` or any of ``provider_ids`` (in, or outbound)."""

    def add_provider_id(self, message_id: str, channel: str, account: str, provider_id: str) -> None:
        """Index one more provider id for a message (pieces of a split send)."""

    def conversation_messages(self, conversation_id: str) -> list[Message]:
        """Oldest first (by sent_at, then insertion order)."""

    def thread_messages(self, channel: str, account: str, thread_key: str, limit: int) -> list[Message]:
        """The latest ``limit`` messages of one thread, oldest first."""

    def outbound_up_to(
        self, channel: str, account: str, thread_key: str, watermark: datetime
    ) -> list[Message]:
        """Outbound messages of a thread with ``sent_at`` at or before ``watermark``."""

    def message_for_idempotency_key(self, key: str) -> str | None: ...
    def put_idempotency_key(self, key: str, message_id: str) -> bool:
        """False when the key is already taken (unique key)."""

    def record_status(self, record: StatusRecord) -> None: ...
    def status_history(self, message_id: str) -> list[StatusRecord]: ...

    # ---- outbox
    def insert_outbox(self, row: OutboxRow) -> None: ...
    def update_outbox(self, row: OutboxRow) -> None: ...
    def outbox_for_message(self, message_id: str) -> list[OutboxRow]: ...
    def claim_outbox(
        self, *, now: datetime, lease_until: datetime, limit: int, exclude_channels: Sequence[str] = ()
    ) -> list[OutboxRow]:
        """Atomically take up to ``limit`` rows that are due: PENDING with ``due_at <= now``,
        or IN_FLIGHT whose lease expired (a crashed dispatcher's). Each returned row is set
        IN_FLIGHT with ``lease_until`` and keeps its previous state visible to the caller as the
        returned row's ``state``. Safe across processes: no row is handed out twice."""

    def next_outbox_due(self) -> datetime | None:
        """The earliest ``due_at`` of PENDING rows, or lease end of IN_FLIGHT ones."""

    # ---- opt-outs
    def set_opt_out(
        self, channel: str, account: str, address: str, opted_out: bool, at: datetime, keyword: str | None
    ) -> None: ...
    def is_opted_out(self, channel: str, account: str, address: str) -> bool: ...

    # ---- per-channel durable state (cursors)
    def get_state(self, key: str) -> str | None: ...
    def set_state(self, key: str, value: str) -> None: ...

    # ---- metrics
    def awaiting_reply(self, since_before: datetime) -> list[Conversation]:
        """Open/pending conversations whose last inbound is before ``since_before`` and newer
        than their last outbound (or with no outbound)."""

    def count_messages(self) -> int: ...


class EventFeed(Protocol):
    """Events between the processes of one store (``Store.event_feed``)."""

    async def send(self, payloads: Sequence[str]) -> None:
        """Hand ``payloads`` to every listening process, in order."""

    async def listen(self, deliver: Callable[[str], None], *, task_status: TaskStatus[None]) -> None:
        """Call ``deliver`` (on the event loop) with each payload any process sends, until
        cancelled; report ``started`` once listening. Raises when the feed breaks."""

    async def aclose(self) -> None: ...


class Store(abc.ABC):
    """A place to keep contacts, conversations, messages and the outbox.

    Lifecycle: ``async with store:`` (or ``open``/``aclose``) once; the Hub does it for you
    when it is handed an unopened store.
    """

    schema_version: int
    """The version of the schema this store has migrated to."""
    single_writer: bool = False
    """True when the store runs one transaction at a time (memory, SQLite). The Hub then
    records the results of concurrent sends in shared transactions (group commit): one
    durable commit for many sends instead of one each."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and run pending migrations."""

    @abc.abstractmethod
    async def aclose(self) -> None: ...

    @property
    @abc.abstractmethod
    def is_open(self) -> bool: ...

    @abc.abstractmethod
    async def run(self, fn: Callable[[Transaction], T]) -> T:
        """Run ``fn`` inside one transaction; commit when it returns, roll back when it raises."""

    def event_feed(self) -> EventFeed | None:
        """A channel for sharing events with every other process on this store, or None when
        the store has no other processes to share with (see ``HubSettings.share_events``)."""
        return None

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
