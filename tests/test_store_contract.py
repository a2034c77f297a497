"""One behavioural suite for every store: in-memory, SQLite and PostgreSQL.

PostgreSQL tests read their server from ``OMNILINK_TEST_POSTGRES_DSN`` (default
``postgresql://postgres@127.0.0.1:5432/test``); each test gets a fresh schema. Without a
reachable server they are skipped, unless ``CI`` is set: then they fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omnilink import LifecycleError, ModelError, NotFoundError, StoreError
from omnilink._models import (
    Author,
    AuthorKind,
    Contact,
    ContactLink,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Handle,
    LinkStrength,
    Message,
    TextPart,
    ThreadRef,
)
from omnilink._store import (
    MemoryStore,
    OutboxRow,
    OutboxState,
    PostgresStore,
    SQLiteStore,
    StatusRecord,
    Store,
    Transaction,
)
from omnilink._store._migrations import LATEST_VERSION

from .conftest import kill_backends

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
DEFAULT_PG_DSN = "postgresql://postgres@127.0.0.1:5432/test"


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def pg_dsn(omnilink_postgres_dsn: str) -> str:
    """A DSN whose search_path is a fresh schema, dropped afterwards (skipped without a
    server unless CI is set)."""
    return omnilink_postgres_dsn


STORE_KINDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(params=STORE_KINDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    """Makes (unopened) stores over one and the same database, so a test can reopen it."""
    kind = request.param
    if kind == "memory":
        shared = MemoryStore()
        return lambda: shared
    if kind == "sqlite":
        path = tmp_path / "omnilink.sqlite3"
        return lambda: SQLiteStore(path)
    dsn = request.getfixturevalue("pg_dsn")
    return lambda: PostgresStore(dsn, max_size=4)


@pytest.fixture
async def store(make_store: Callable[[], Store]) -> AsyncIterator[Store]:
    async with make_store() as opened:
        yield opened


# --------------------------------------------------------------------------- builders


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def contact(**kw: Any) -> Contact:
    return Contact(created_at=T0, **kw)


def conversation(contact_id: str, *, updated: float = 0, **kw: Any) -> Conversation:
    return Conversation(contact_id=contact_id, created_at=T0, updated_at=at(updated), **kw)


def message(
    conv: Conversation,
    *,
    sent: float = 0,
    direction: Direction = Direction.INBOUND,
    channel: str = "sms",
    account: str = "+15550001111",
    thread_key: str = "+15551234567",
    text: str = "hi",
    **kw: Any,
) -> Message:
    return Message(
        conversation_id=conv.id,
        contact_id=conv.contact_id,
        direction=direction,
        channel=channel,
        account=account,
        thread_key=thread_key,
        author=Author(kind=AuthorKind.CONTACT if direction is Direction.INBOUND else AuthorKind.AGENT),
        parts=(TextPart(text=text),),
        status=DeliveryStatus.RECEIVED if direction is Direction.INBOUND else DeliveryStatus.QUEUED,
        sent_at=at(sent),
        **kw,
    )


def outbox_row(message_id: str, *, due: float = 0, channel: str = "sms", part_index: int = 0) -> OutboxRow:
    return OutboxRow(
        id=f"obx_{uuid.uuid4().hex}",
        message_id=message_id,
        part_index=part_index,
        channel=channel,
        due_at=at(due),
        created_at=T0,
    )


class Boom(Exception):
    """Raised inside a transaction to make it roll back."""


async def seeded(store: Store) -> tuple[Contact, Conversation]:
    """A contact and one conversation on it."""
    c = contact()
    conv = conversation(c.id)

    def fn(tx: Transaction) -> None:
        tx.insert_contact(c)
        tx.save_conversation(conv)

    await store.run(fn)
    return c, conv


# --------------------------------------------------------------------------- lifecycle & migrations


@pytest.mark.anyio
async def test_open_sets_schema_version_and_run_returns_value(store: Store) -> None:
    assert store.is_open
    assert store.schema_version == LATEST_VERSION
    assert await store.run(lambda tx: tx.count_messages()) == 0


@pytest.mark.anyio
async def test_run_on_closed_store_raises_lifecycle_error(make_store: Callable[[], Store]) -> None:
    store = make_store()
    assert not store.is_open
    with pytest.raises(LifecycleError):
        await store.run(lambda tx: tx.count_messages())


@pytest.mark.anyio
async def test_reopening_keeps_data_and_migrations_are_idempotent(make_store: Callable[[], Store]) -> None:
    async with make_store() as store:
        await store.run(lambda tx: tx.set_state("cursor", "42"))
    async with make_store() as store:
        assert store.schema_version == LATEST_VERSION
        assert await store.run(lambda tx: tx.get_state("cursor")) == "42"
    async with make_store() as store:
        assert store.schema_version == LATEST_VERSION


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_database_from_newer_code_raises_store_error(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    def make() -> Store:
        if kind == "sqlite":
            return SQLiteStore(tmp_path / "db.sqlite3")
        return PostgresStore(request.getfixturevalue("pg_dsn"), max_size=1)

    async with make():
        pass
    if kind == "sqlite":
        import sqlite3

        with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
            conn.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (999, 'future', 'x')"
            )
        conn.close()
    else:
        import psycopg

        with psycopg.connect(request.getfixturevalue("pg_dsn")) as pg:
            pg.execute(
                "INSERT INTO schema_migrations (version, description, applied_at) VALUES (999, 'future', 'x')"
            )
    store = make()
    with pytest.raises(StoreError, match="999"):
        await store.open()
    assert not store.is_open


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def test_rows_written_by_newer_code_are_read_ignoring_fields_this_code_does_not_know(
    kind: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    store: Store
    if kind == "sqlite":
        store = SQLiteStore(tmp_path / "db.sqlite3")
    else:
        store = PostgresStore(request.getfixturevalue("pg_dsn"), max_size=1)
    async with store:
        owner, conv = await seeded(store)
        msg = message(conv, provider_message_id="SM9")
        await store.run(lambda tx: tx.insert_message(msg))

        def future(model: Any) -> str:
            data = json.loads(model.model_dump_json())
            data["added_in_a_later_release"] = {"nested": True}
            if "parts" in data:
                data["parts"][0]["emphasis"] = "strong"
            return json.dumps(data)

        def rewrite(tx: Transaction) -> None:
            cur = tx._cur  # type: ignore[attr-defined]  # the SQL store's cursor
            mark = "?" if kind == "sqlite" else "%s"
            for table, model in (("contacts", owner), ("conversations", conv), ("messages", msg)):
                cur.execute(f"UPDATE {table} SET data = {mark} WHERE id = {mark}", (future(model), model.id))

        def stored_keys(tx: Transaction) -> set[str]:
            cur = tx._cur  # type: ignore[attr-defined]  # the SQL store's cursor
            cur.execute(
                f"SELECT data FROM messages WHERE id = {'?' if kind == 'sqlite' else '%s'}", (msg.id,)
            )
            return set(json.loads(cur.fetchone()[0]))

        # Optional fields left unset are not written: a row without a field added later reads
        # the same in the release that added it and in the one before.
        keys = await store.run(stored_keys)
        assert "deleted_at" not in keys
        assert "reply_to_id" not in keys
        assert {"id", "parts", "status"} <= keys
        await store.run(rewrite)
        assert await store.run(lambda tx: tx.get_contact(owner.id)) == owner
        assert await store.run(lambda tx: tx.get_conversation(conv.id)) == conv
        assert await store.run(lambda tx: tx.get_message(msg.id)) == msg
        assert await store.run(lambda tx: tx.message_by_provider_id("sms", msg.account, "SM9")) == msg
        assert Message.model_json_schema()["additionalProperties"] is False  # input stays strict


@pytest.mark.anyio
async def test_sqlite_store_in_missing_directory_raises_store_error(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "missing" / "db.sqlite3")
    with pytest.raises(StoreError, match="cannot open"):
        await store.open()
    assert not store.is_open


@pytest.mark.anyio
async def test_sqlite_store_uses_wal_and_the_chosen_synchronous_level(tmp_path: Path) -> None:
    import sqlite3

    store = SQLiteStore(tmp_path / "db.sqlite3", synchronous="NORMAL")
    async with store:
        assert store.synchronous == "NORMAL"
    with sqlite3.connect(tmp_path / "db.sqlite3") as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


# --------------------------------------------------------------------------- rollback


@pytest.mark.anyio
async def test_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    owner, conv = await seeded(store)
    intruder = contact()
    handle = Handle(channel="sms", address="+15551234567")
    msg = message(conv, provider_message_id="SM1")

    def fn(tx: Transaction) -> None:
        tx.insert_contact(intruder)
        assert tx.claim_handle(handle, owner.id) == owner.id
        assert tx.claim_inbound("sms", "+15550001111", "SM1", msg.id)
        tx.insert_message(msg)
        tx.add_provider_id(msg.id, "sms", "+15550001111", "SM1-b")
        tx.save_conversation(
            conv.model_copy(update={"threads": (ThreadRef(channel="sms", account="a", key="k"),)})
        )
        tx.put_idempotency_key("idem", msg.id)
        tx.record_status(StatusRecord(message_id=msg.id, status=DeliveryStatus.SENT, at=T0, applied=True))
        tx.insert_outbox(outbox_row(msg.id))
        tx.set_opt_out("sms", "+15550001111", "+15551234567", True, T0, "STOP")
        tx.set_state("cursor", "1")
        tx.insert_link(
            ContactLink(
                contact_id=owner.id,
                other_contact_id=intruder.id,
                reason="test",
                strength=LinkStrength.WEAK,
                applied=False,
            )
        )
        raise Boom

    with pytest.raises(Boom):
        await store.run(fn)

    def check(tx: Transaction) -> None:
        assert tx.get_contact(intruder.id) is None
        assert tx.contact_by_handle(handle) is None
        assert tx.get_contact(owner.id) == owner
        assert tx.claim_inbound("sms", "+15550001111", "SM1", "other") is True
        assert tx.get_message(msg.id) is None
        assert tx.message_by_provider_id("sms", "+15550001111", "SM1-b") is None
        assert tx.count_messages() == 0
        assert tx.conversation_for_thread(ThreadRef(channel="sms", account="a", key="k")) is None
        assert tx.get_conversation(conv.id) == conv
        assert tx.message_for_idempotency_key("idem") is None
        assert tx.status_history(msg.id) == []
        assert tx.outbox_for_message(msg.id) == []
        assert tx.next_outbox_due() is None
        assert not tx.is_opted_out("sms", "+15550001111", "+15551234567")
        assert tx.get_state("cursor") is None
        assert tx.links_of(owner.id) == []

    await store.run(check)


@pytest.mark.anyio
@pytest.mark.parametrize("what", ["contact", "conversation", "message", "status", "outbox"])
async def test_every_store_refuses_a_model_without_json_and_rolls_back(store: Store, what: str) -> None:
    _, conv = await seeded(store)
    bad = "lone \ud800 surrogate"
    msg = message(conv)

    def fn(tx: Transaction) -> None:
        tx.insert_message(msg)
        if what == "contact":
            tx.insert_contact(contact(display_name=bad))
        elif what == "conversation":
            tx.save_conversation(conv.model_copy(update={"subject": bad}))
        elif what == "message":
            tx.insert_message(message(conv, text=bad))
        elif what == "status":
            tx.record_status(
                StatusRecord(message_id=msg.id, status=DeliveryStatus.FAILED, at=T0, applied=True, error=bad)
            )
        else:
            tx.insert_outbox(outbox_row(msg.id).model_copy(update={"channel": bad}))

    with pytest.raises(ModelError, match="cannot be stored"):
        await store.run(fn)
    assert await store.run(lambda tx: tx.count_messages()) == 0
    assert await store.run(lambda tx: tx.get_conversation(conv.id)) == conv


@pytest.mark.anyio
async def test_rollback_restores_overwritten_values(store: Store) -> None:
    await store.run(lambda tx: tx.set_state("cursor", "1"))

    def fn(tx: Transaction) -> None:
        tx.set_state("cursor", "2")
        assert tx.get_state("cursor") == "2"
        raise Boom

    with pytest.raises(Boom):
        await store.run(fn)
    assert await store.run(lambda tx: tx.get_state("cursor")) == "1"


@pytest.mark.anyio
async def test_duplicate_insert_raises_store_error_and_rolls_back(store: Store) -> None:
    c = contact()
    await store.run(lambda tx: tx.insert_contact(c))

    def fn(tx: Transaction) -> None:
        tx.set_state("k", "v")
        tx.insert_contact(c)

    with pytest.raises(StoreError):
        await store.run(fn)
    assert await store.run(lambda tx: tx.get_state("k")) is None


@pytest.mark.anyio
async def test_lock_key_serialises_read_modify_write(store: Store) -> None:
    await store.run(lambda tx: tx.set_state("counter", "0"))

    def increment(tx: Transaction) -> None:
        tx.lock_key("counter")
        tx.set_state("counter", str(int(tx.get_state("counter") or "0") + 1))

    async def worker() -> None:
        for _ in range(10):
            await store.run(increment)

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(worker)
    assert await store.run(lambda tx: tx.get_state("counter")) == "40"


# --------------------------------------------------------------------------- contacts


@pytest.mark.anyio
async def test_claim_handle_gives_handle_to_first_claimer_only(store: Store) -> None:
    a, b = contact(display_name="A"), contact(display_name="B")
    handle = Handle(channel="email", address="a@example.com")

    def fn(tx: Transaction) -> tuple[str, str]:
        tx.insert_contact(a)
        tx.insert_contact(b)
        return tx.claim_handle(handle, a.id), tx.claim_handle(handle, b.id)

    assert await store.run(fn) == (a.id, a.id)

    def check(tx: Transaction) -> None:
        found = tx.contact_by_handle(handle)
        assert found is not None
        assert found.id == a.id
        assert found.handles == (handle,)
        stored_b = tx.get_contact(b.id)
        assert stored_b is not None
        assert stored_b.handles == ()
        # Claiming again for the owner is a no-op, not a duplicate.
        assert tx.claim_handle(handle, a.id) == a.id
        again = tx.get_contact(a.id)
        assert again is not None
        assert again.handles == (handle,)

    await store.run(check)


@pytest.mark.anyio
async def test_claim_handle_races_return_one_owner(store: Store) -> None:
    contacts = [contact() for _ in range(6)]
    handle = Handle(channel="sms", address="+15550009999")

    def insert(tx: Transaction) -> None:
        for c in contacts:
            tx.insert_contact(c)

    await store.run(insert)
    owners: list[str] = []

    async def claim(contact_id: str) -> None:
        owners.append(await store.run(lambda tx: tx.claim_handle(handle, contact_id)))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for c in contacts:
                tg.start_soon(claim, c.id)
    assert len(owners) == len(contacts)
    assert len(set(owners)) == 1
    winner = owners[0]
    holders = await store.run(lambda tx: [tx.get_contact(c.id) for c in contacts])
    assert [c.id for c in holders if c is not None and handle in c.handles] == [winner]


@pytest.mark.anyio
async def test_claim_handle_for_unknown_contact_raises_not_found(store: Store) -> None:
    with pytest.raises(NotFoundError):
        await store.run(lambda tx: tx.claim_handle(Handle(channel="sms", address="+1"), "con_missing"))
    assert await store.run(lambda tx: tx.contact_by_handle(Handle(channel="sms", address="+1"))) is None


@pytest.mark.anyio
async def test_update_contact_moves_handles_between_contacts(store: Store) -> None:
    h1, h2 = Handle(channel="sms", address="+1"), Handle(channel="email", address="x@example.com")
    a, b = contact(handles=(h1,)), contact(handles=(h2,))

    def fn(tx: Transaction) -> None:
        tx.insert_contact(a)
        tx.insert_contact(b)
        # A handle that belongs to someone else cannot be taken by an update.
        with pytest.raises(StoreError):
            tx.update_contact(a.model_copy(update={"handles": (h1, h2)}))

    await store.run(fn)

    def merge(tx: Transaction) -> None:
        tx.update_contact(b.model_copy(update={"handles": (), "display_name": "merged away"}))
        tx.update_contact(a.model_copy(update={"handles": (h1, h2)}))

    await store.run(merge)

    def check(tx: Transaction) -> None:
        owner = tx.contact_by_handle(h2)
        assert owner is not None
        assert owner.id == a.id
        stored_b = tx.get_contact(b.id)
        assert stored_b is not None
        assert stored_b.display_name == "merged away"

    await store.run(check)


@pytest.mark.anyio
async def test_update_of_missing_rows_raises_not_found(store: Store) -> None:
    _, conv = await seeded(store)
    msg = message(conv)
    for fn in (
        lambda tx: tx.update_contact(contact()),
        lambda tx: tx.update_message(msg),
        lambda tx: tx.add_provider_id(msg.id, "sms", "a", "p"),
        lambda tx: tx.update_outbox(outbox_row(msg.id)),
        lambda tx: tx.update_link(
            ContactLink(
                contact_id="a", other_contact_id="b", reason="r", strength=LinkStrength.WEAK, applied=False
            )
        ),
    ):
        with pytest.raises(NotFoundError):
            await store.run(fn)


@pytest.mark.anyio
async def test_links_of_lists_both_sides_oldest_first_with_undone(store: Store) -> None:
    a, b, c = contact(), contact(), contact()
    first = ContactLink(
        contact_id=a.id,
        other_contact_id=b.id,
        reason="x",
        strength=LinkStrength.STRONG,
        applied=True,
        created_at=at(1),
    )
    second = ContactLink(
        contact_id=c.id,
        other_contact_id=a.id,
        reason="y",
        strength=LinkStrength.WEAK,
        applied=False,
        created_at=at(2),
    )

    def fn(tx: Transaction) -> None:
        for x in (a, b, c):
            tx.insert_contact(x)
        tx.insert_link(second)
        tx.insert_link(first)
        tx.update_link(first.model_copy(update={"undone_at": at(3)}))

    await store.run(fn)

    def check(tx: Transaction) -> None:
        links = tx.links_of(a.id)
        assert [link.id for link in links] == [first.id, second.id]
        assert links[0].undone_at == at(3)
        assert [link.id for link in tx.links_of(b.id)] == [first.id]
        assert tx.get_link(second.id) == second
        assert tx.get_link("lnk_missing") is None

    await store.run(check)


# --------------------------------------------------------------------------- conversations


@pytest.mark.anyio
async def test_conversation_for_thread_ignores_closed_and_prefers_newest(store: Store) -> None:
    c = contact()
    ref = ThreadRef(channel="sms", account="+15550001111", key="+15551234567")
    older = conversation(c.id, updated=1, threads=(ref,))
    newer = conversation(c.id, updated=2, threads=(ref,))
    closed = conversation(c.id, updated=3, threads=(ref,), status=ConversationStatus.CLOSED)

    def fn(tx: Transaction) -> None:
        tx.insert_contact(c)
        for conv in (newer, older, closed):
            tx.save_conversation(conv)

    await store.run(fn)
    found = await store.run(lambda tx: tx.conversation_for_thread(ref))
    assert found == newer

    await store.run(
        lambda tx: tx.save_conversation(newer.model_copy(update={"status": ConversationStatus.CLOSED}))
    )
    assert await store.run(lambda tx: tx.conversation_for_thread(ref)) == older
    other = ThreadRef(channel="sms", account="+15550001111", key="+19999999999")
    assert await store.run(lambda tx: tx.conversation_for_thread(other)) is None


@pytest.mark.anyio
async def test_save_conversation_indexes_every_thread_and_drops_removed_ones(store: Store) -> None:
    c = contact()
    sms = ThreadRef(channel="sms", account="+1", key="+2")
    mail = ThreadRef(channel="email", account="help@x", key="<m1@x>")
    conv = conversation(c.id, threads=(sms, mail))

    def fn(tx: Transaction) -> None:
        tx.insert_contact(c)
        tx.save_conversation(conv)

    await store.run(fn)
    assert await store.run(lambda tx: tx.conversation_for_thread(mail)) == conv
    assert await store.run(lambda tx: tx.conversation_for_thread(sms)) == conv
    moved = conv.model_copy(update={"threads": (mail,), "updated_at": at(5)})
    await store.run(lambda tx: tx.save_conversation(moved))
    assert await store.run(lambda tx: tx.conversation_for_thread(sms)) is None
    assert await store.run(lambda tx: tx.get_conversation(conv.id)) == moved


@pytest.mark.anyio
async def test_recent_conversations_filters_and_orders_newest_first(store: Store) -> None:
    a, b, other = contact(), contact(), contact()
    old = conversation(a.id, updated=-60)
    mid = conversation(a.id, updated=10)
    new = conversation(b.id, updated=20)
    closed = conversation(a.id, updated=30, status=ConversationStatus.CLOSED)
    resolved = conversation(b.id, updated=5, status=ConversationStatus.RESOLVED)
    foreign = conversation(other.id, updated=40)

    def fn(tx: Transaction) -> None:
        for x in (a, b, other):
            tx.insert_contact(x)
        for conv in (old, mid, new, closed, resolved, foreign):
            tx.save_conversation(conv)

    await store.run(fn)
    found = await store.run(lambda tx: tx.recent_conversations([a.id, b.id], at(0)))
    assert [x.id for x in found] == [new.id, mid.id, resolved.id]
    edge = await store.run(lambda tx: tx.recent_conversations([a.id], at(10)))
    assert [x.id for x in edge] == [mid.id]
    assert await store.run(lambda tx: tx.recent_conversations([], at(0))) == []


@pytest.mark.anyio
async def test_list_conversations_by_status_newest_first_with_limit(store: Store) -> None:
    c = contact()
    convs = [
        conversation(c.id, updated=i, status=ConversationStatus.OPEN if i % 2 else "pending")
        for i in range(6)
    ]

    def fn(tx: Transaction) -> None:
        tx.insert_contact(c)
        for conv in convs:
            tx.save_conversation(conv)

    await store.run(fn)
    every = await store.run(lambda tx: tx.list_conversations())
    assert [x.id for x in every] == [x.id for x in reversed(convs)]
    open_ = await store.run(lambda tx: tx.list_conversations(status=ConversationStatus.OPEN, limit=2))
    assert [x.id for x in open_] == [convs[5].id, convs[3].id]


@pytest.mark.anyio
async def test_page_conversations_walks_every_one_once_in_order_with_filters(store: Store) -> None:
    a, b = contact(), contact()
    # Ties on updated_at on purpose: the save number orders them, and pages must not split
    # or repeat a tie.
    convs = [conversation(a.id if i % 3 else b.id, updated=i // 4) for i in range(23)]
    convs.append(conversation(a.id, updated=9, status=ConversationStatus.CLOSED))

    def fn(tx: Transaction) -> None:
        tx.insert_contact(a)
        tx.insert_contact(b)
        for conv in convs:
            tx.save_conversation(conv)

    await store.run(fn)
    everything = await store.run(lambda tx: tx.list_conversations(limit=100))

    async def walk(**kw: Any) -> list[Conversation]:
        seen: list[Conversation] = []
        before = None
        while True:
            page = await store.run(
                lambda tx, before=before: tx.page_conversations(before=before, limit=5, **kw)
            )
            seen.extend(c for c, _ in page)
            if len(page) < 5:
                return seen
            last, seq = page[-1]
            before = (last.updated_at, seq)

    assert await walk(status=None, contact_ids=None) == everything
    assert [c.id for c in await walk(status=ConversationStatus.OPEN, contact_ids=[b.id])] == [
        c.id for c in everything if c.contact_id == b.id and c.status is ConversationStatus.OPEN
    ]
    assert await walk(status=None, contact_ids=[]) == []
    assert (
        await store.run(lambda tx: tx.page_conversations(status=None, contact_ids=None, before=None, limit=0))
        == []
    )


@pytest.mark.anyio
async def test_equal_update_times_order_by_last_save(store: Store) -> None:
    c = contact()
    ref = ThreadRef(channel="chat", account="site", key="session")
    first, second = conversation(c.id, threads=(ref,)), conversation(c.id, threads=(ref,))

    def fn(tx: Transaction) -> None:
        tx.insert_contact(c)
        tx.save_conversation(first)
        tx.save_conversation(second)

    await store.run(fn)
    assert await store.run(lambda tx: tx.conversation_for_thread(ref)) == second
    await store.run(lambda tx: tx.save_conversation(first))
    assert await store.run(lambda tx: tx.conversation_for_thread(ref)) == first


# --------------------------------------------------------------------------- messages


@pytest.mark.anyio
async def test_claim_inbound_dedupes_second_claim(store: Store) -> None:
    def fn(tx: Transaction) -> list[bool]:
        return [
            tx.claim_inbound("sms", "+1", "SM1", "msg_a"),
            tx.claim_inbound("sms", "+1", "SM1", "msg_b"),
            tx.claim_inbound("sms", "+2", "SM1", "msg_c"),
            tx.claim_inbound("mms", "+1", "SM1", "msg_d"),
        ]

    assert await store.run(fn) == [True, False, True, True]
    assert await store.run(lambda tx: tx.claim_inbound("sms", "+1", "SM1", "msg_e")) is False


@pytest.mark.anyio
async def test_message_round_trips_and_updates(store: Store) -> None:
    _, conv = await seeded(store)
    msg = message(conv, raw={"nested": {"x": [1, 2]}}, send_options={"k": "v"})
    await store.run(lambda tx: tx.insert_message(msg))
    assert await store.run(lambda tx: tx.get_message(msg.id)) == msg
    delivered = msg.model_copy(update={"status": DeliveryStatus.DELIVERED, "status_updated_at": at(1)})
    await store.run(lambda tx: tx.update_message(delivered))
    assert await store.run(lambda tx: tx.get_message(msg.id)) == delivered
    assert await store.run(lambda tx: tx.count_messages()) == 1
    assert await store.run(lambda tx: tx.get_message("msg_missing")) is None


@pytest.mark.anyio
async def test_message_by_provider_id_matches_every_indexed_id(store: Store) -> None:
    _, conv = await seeded(store)
    out = message(conv, direction=Direction.OUTBOUND, provider_message_id="P1", provider_ids=("P1", "P2"))
    other_account = message(conv, account="+15550002222", provider_message_id="P1")

    def fn(tx: Transaction) -> None:
        tx.insert_message(out)
        tx.insert_message(other_account)
        tx.add_provider_id(out.id, "sms", out.account, "P3")

    await store.run(fn)

    def check(tx: Transaction) -> None:
        for pid in ("P1", "P2", "P3"):
            found = tx.message_by_provider_id("sms", out.account, pid)
            assert found is not None
            assert found.id == out.id
        found = tx.message_by_provider_id("sms", "+15550002222", "P1")
        assert found is not None
        assert found.id == other_account.id
        assert tx.message_by_provider_id("sms", out.account, "P4") is None
        assert tx.message_by_provider_id("email", out.account, "P1") is None
        stored = tx.get_message(out.id)
        assert stored is not None
        assert stored.provider_ids == ("P1", "P2", "P3")

    await store.run(check)
    # An update with a later provider id indexes it too.
    await store.run(
        lambda tx: tx.update_message(out.model_copy(update={"provider_ids": ("P1", "P2", "P3", "P9")}))
    )
    found = await store.run(lambda tx: tx.message_by_provider_id("sms", out.account, "P9"))
    assert found is not None
    assert found.id == out.id


@pytest.mark.anyio
async def test_a_claimed_inbound_message_is_found_by_its_provider_id(store: Store) -> None:
    # SQL stores find an inbound message's own id through its dedupe claim (no second row).
    _, conv = await seeded(store)
    inbound = message(conv, provider_message_id="SM7")
    later = message(conv, direction=Direction.OUTBOUND, provider_message_id="X1")

    def fn(tx: Transaction) -> None:
        assert tx.claim_inbound("sms", inbound.account, "SM7", inbound.id)
        tx.insert_message(inbound)
        assert tx.claim_inbound("sms", inbound.account, "SM8", "deleted")  # a claim with no message
        tx.insert_message(later)

    await store.run(fn)
    found = await store.run(lambda tx: tx.message_by_provider_id("sms", inbound.account, "SM7"))
    assert found == inbound
    assert await store.run(lambda tx: tx.message_by_provider_id("sms", inbound.account, "SM8")) is None
    assert await store.run(lambda tx: tx.message_by_provider_id("sms", "+15550009999", "SM7")) is None
    # A later message that gains the same provider id does not hide the first one.
    await store.run(lambda tx: tx.add_provider_id(later.id, "sms", later.account, "SM7"))
    found = await store.run(lambda tx: tx.message_by_provider_id("sms", inbound.account, "SM7"))
    assert found is not None
    assert found.id == inbound.id


@pytest.mark.anyio
async def test_conversation_messages_oldest_first_with_insertion_ties(store: Store) -> None:
    _, conv = await seeded(store)
    late = message(conv, sent=5, text="late")
    tie_a = message(conv, sent=1, text="a")
    tie_b = message(conv, sent=1, text="b")
    early = message(conv, sent=-1, text="early")

    def fn(tx: Transaction) -> None:
        for m in (late, tie_a, tie_b, early):
            tx.insert_message(m)

    await store.run(fn)
    found = await store.run(lambda tx: tx.conversation_messages(conv.id))
    assert [m.text for m in found] == ["early", "a", "b", "late"]


@pytest.mark.anyio
async def test_thread_messages_returns_latest_limit_oldest_first(store: Store) -> None:
    _, conv = await seeded(store)
    msgs = [message(conv, sent=i, text=str(i)) for i in (3, 0, 4, 1, 2)]
    elsewhere = message(conv, sent=9, thread_key="+19999999999", text="other thread")

    def fn(tx: Transaction) -> None:
        for m in [*msgs, elsewhere]:
            tx.insert_message(m)

    await store.run(fn)
    latest = await store.run(lambda tx: tx.thread_messages("sms", "+15550001111", "+15551234567", 3))
    assert [m.text for m in latest] == ["2", "3", "4"]
    every = await store.run(lambda tx: tx.thread_messages("sms", "+15550001111", "+15551234567", 100))
    assert [m.text for m in every] == ["0", "1", "2", "3", "4"]
    assert await store.run(lambda tx: tx.thread_messages("sms", "+15550001111", "+15551234567", 0)) == []


@pytest.mark.anyio
async def test_outbound_up_to_returns_outbound_at_or_before_watermark(store: Store) -> None:
    _, conv = await seeded(store)
    out1 = message(conv, sent=1, direction=Direction.OUTBOUND, text="o1")
    out2 = message(conv, sent=2, direction=Direction.OUTBOUND, text="o2")
    out3 = message(conv, sent=3, direction=Direction.OUTBOUND, text="o3")
    inbound = message(conv, sent=1.5, text="in")

    def fn(tx: Transaction) -> None:
        for m in (out3, inbound, out2, out1):
            tx.insert_message(m)

    await store.run(fn)
    found = await store.run(lambda tx: tx.outbound_up_to("sms", "+15550001111", "+15551234567", at(2)))
    assert [m.text for m in found] == ["o1", "o2"]
    # Other time zones are the same instants.
    plus2 = at(2).astimezone(tz=__import__("datetime").timezone(timedelta(hours=2)))
    found = await store.run(lambda tx: tx.outbound_up_to("sms", "+15550001111", "+15551234567", plus2))
    assert [m.text for m in found] == ["o1", "o2"]


@pytest.mark.anyio
async def test_idempotency_key_is_unique(store: Store) -> None:
    def fn(tx: Transaction) -> tuple[bool, bool, str | None, str | None]:
        return (
            tx.put_idempotency_key("req-1", "msg_a"),
            tx.put_idempotency_key("req-1", "msg_b"),
            tx.message_for_idempotency_key("req-1"),
            tx.message_for_idempotency_key("req-2"),
        )

    assert await store.run(fn) == (True, False, "msg_a", None)


@pytest.mark.anyio
async def test_status_history_keeps_arrival_order_applied_or_not(store: Store) -> None:
    records = [
        StatusRecord(message_id="msg_1", status=DeliveryStatus.DELIVERED, at=at(2), applied=True),
        StatusRecord(message_id="msg_1", status=DeliveryStatus.SENT, at=at(1), applied=False),
        StatusRecord(message_id="msg_1", status=DeliveryStatus.FAILED, at=at(3), applied=False, error="late"),
        StatusRecord(message_id="msg_2", status=DeliveryStatus.SENT, at=at(1), applied=True),
    ]

    def fn(tx: Transaction) -> None:
        for r in records:
            tx.record_status(r)

    await store.run(fn)
    assert await store.run(lambda tx: tx.status_history("msg_1")) == records[:3]
    assert await store.run(lambda tx: tx.status_history("msg_3")) == []


# --------------------------------------------------------------------------- outbox


@pytest.mark.anyio
async def test_claim_outbox_takes_due_rows_only(store: Store) -> None:
    due = outbox_row("msg_1", due=0)
    later = outbox_row("msg_2", due=10)
    done = outbox_row("msg_3", due=-5).model_copy(update={"state": OutboxState.DONE})

    def fn(tx: Transaction) -> None:
        for r in (later, due, done):
            tx.insert_outbox(r)

    await store.run(fn)
    assert await store.run(lambda tx: tx.next_outbox_due()) == at(0)
    claimed = await store.run(lambda tx: tx.claim_outbox(now=at(1), lease_until=at(2), limit=10))
    assert [r.id for r in claimed] == [due.id]
    assert claimed[0].state is OutboxState.PENDING
    assert claimed[0].lease_until == at(2)
    # Nobody else gets it while the lease holds.
    assert await store.run(lambda tx: tx.claim_outbox(now=at(1.5), lease_until=at(3), limit=10)) == []
    stored = await store.run(lambda tx: tx.outbox_for_message("msg_1"))
    assert stored[0].state is OutboxState.IN_FLIGHT
    assert stored[0].lease_until == at(2)
    assert await store.run(lambda tx: tx.next_outbox_due()) == at(2)


@pytest.mark.anyio
async def test_expired_lease_is_reclaimed_showing_in_flight(store: Store) -> None:
    row = outbox_row("msg_1")
    await store.run(lambda tx: tx.insert_outbox(row))
    await store.run(lambda tx: tx.claim_outbox(now=at(0), lease_until=at(1), limit=1))
    again = await store.run(lambda tx: tx.claim_outbox(now=at(1), lease_until=at(5), limit=1))
    assert [r.id for r in again] == [row.id]
    assert again[0].state is OutboxState.IN_FLIGHT
    assert again[0].lease_until == at(5)
    finished = again[0].model_copy(
        update={"state": OutboxState.DONE, "provider_message_id": "P1", "attempts": 1}
    )
    await store.run(lambda tx: tx.update_outbox(finished))
    assert await store.run(lambda tx: tx.claim_outbox(now=at(100), lease_until=at(101), limit=1)) == []
    assert await store.run(lambda tx: tx.outbox_for_message("msg_1")) == [finished]
    assert await store.run(lambda tx: tx.next_outbox_due()) is None


@pytest.mark.anyio
async def test_claim_outbox_respects_limit_order_and_excluded_channels(store: Store) -> None:
    rows = [outbox_row("msg_1", due=-i, channel="email" if i % 2 else "sms", part_index=i) for i in range(6)]

    def fn(tx: Transaction) -> None:
        for r in rows:
            tx.insert_outbox(r)

    await store.run(fn)
    first = await store.run(
        lambda tx: tx.claim_outbox(now=at(0), lease_until=at(1), limit=2, exclude_channels=["email"])
    )
    assert [r.id for r in first] == [rows[4].id, rows[2].id]
    rest = await store.run(lambda tx: tx.claim_outbox(now=at(0), lease_until=at(1), limit=10))
    assert [r.id for r in rest] == [rows[5].id, rows[3].id, rows[1].id, rows[0].id]
    assert [r.part_index for r in await store.run(lambda tx: tx.outbox_for_message("msg_1"))] == list(
        range(6)
    )
    assert await store.run(lambda tx: tx.claim_outbox(now=at(0), lease_until=at(1), limit=0)) == []


@pytest.mark.anyio
async def test_concurrent_outbox_claims_never_share_a_row(store: Store) -> None:
    rows = [outbox_row(f"msg_{i}") for i in range(40)]

    def fn(tx: Transaction) -> None:
        for r in rows:
            tx.insert_outbox(r)

    await store.run(fn)
    taken: list[str] = []

    async def worker() -> None:
        while True:
            got = await store.run(lambda tx: tx.claim_outbox(now=at(0), lease_until=at(1), limit=3))
            if not got:
                return
            taken.extend(r.id for r in got)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(4):
                tg.start_soon(worker)
    assert sorted(taken) == sorted(r.id for r in rows)


@pytest.mark.anyio
async def test_next_outbox_due_never_misses_a_row_changing_state(store: Store) -> None:
    row = outbox_row("msg_1")
    await store.run(lambda tx: tx.insert_outbox(row))
    leased = row.model_copy(update={"state": OutboxState.IN_FLIGHT, "lease_until": at(1)})
    flipping = True
    seen: list[datetime | None] = []

    async def flip() -> None:
        nonlocal flipping
        for i in range(100):

            def update(tx: Transaction, current: OutboxRow = leased if i % 2 == 0 else row) -> None:
                tx.update_outbox(current)

            await store.run(update)
        flipping = False

    async def poll() -> None:
        while flipping:
            seen.append(await store.run(lambda tx: tx.next_outbox_due()))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            tg.start_soon(flip)
            tg.start_soon(poll)
    assert None not in seen
    # A row in flight without a lease counts from its due time.
    await store.run(lambda tx: tx.update_outbox(leased.model_copy(update={"lease_until": None})))
    assert await store.run(lambda tx: tx.next_outbox_due()) == at(0)


# --------------------------------------------------------------------------- opt-outs, state, metrics


@pytest.mark.anyio
async def test_opt_out_and_back_in(store: Store) -> None:
    key = ("sms", "+15550001111", "+15551234567")
    assert await store.run(lambda tx: tx.is_opted_out(*key)) is False
    await store.run(lambda tx: tx.set_opt_out(*key, True, at(0), "STOP"))
    assert await store.run(lambda tx: tx.is_opted_out(*key)) is True
    assert await store.run(lambda tx: tx.is_opted_out("sms", "+15550002222", key[2])) is False
    await store.run(lambda tx: tx.set_opt_out(*key, False, at(1), "START"))
    assert await store.run(lambda tx: tx.is_opted_out(*key)) is False


@pytest.mark.anyio
async def test_channel_state_is_a_durable_key_value(store: Store) -> None:
    assert await store.run(lambda tx: tx.get_state("imap:uid")) is None
    await store.run(lambda tx: tx.set_state("imap:uid", "10"))
    await store.run(lambda tx: tx.set_state("imap:uid", "11"))
    assert await store.run(lambda tx: tx.get_state("imap:uid")) == "11"


@pytest.mark.anyio
async def test_awaiting_reply_lists_unanswered_open_conversations(store: Store) -> None:
    c = contact()
    waiting = conversation(c.id, last_inbound_at=at(0))
    waiting_older = conversation(c.id, last_inbound_at=at(-10), last_outbound_at=at(-20))
    answered = conversation(c.id, last_inbound_at=at(0), last_outbound_at=at(1))
    too_recent = conversation(c.id, last_inbound_at=at(30))
    resolved = conversation(c.id, last_inbound_at=at(0), status=ConversationStatus.RESOLVED)
    pending = conversation(c.id, last_inbound_at=at(1), status=ConversationStatus.PENDING)
    silent = conversation(c.id)

    def fn(tx: Transaction) -> None:
        tx.insert_contact(c)
        for conv in (waiting, waiting_older, answered, too_recent, resolved, pending, silent):
            tx.save_conversation(conv)

    await store.run(fn)
    found = await store.run(lambda tx: tx.awaiting_reply(at(10)))
    assert [x.id for x in found] == [waiting_older.id, waiting.id, pending.id]


# --------------------------------------------------------------------------- properties


# Each example runs real transactions (PostgreSQL too): fewer examples than the profile's default.
@settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture],
    max_examples=min(30, settings().max_examples),
)
@given(
    batches=st.lists(
        st.tuples(st.lists(st.integers(0, 5), min_size=1, max_size=6), st.booleans()),
        min_size=1,
        max_size=8,
    )
)
@pytest.mark.anyio
async def test_interleaved_claims_give_exactly_one_winner_per_key(
    store: Store, batches: list[tuple[list[int], bool]]
) -> None:
    prefix = uuid.uuid4().hex
    wins: dict[int, int] = {}

    async def transaction(keys: list[int], fail: bool) -> None:
        def fn(tx: Transaction) -> list[int]:
            won = [k for k in keys if tx.claim_inbound("sms", "+1", f"{prefix}-{k}", "msg")]
            if fail:
                raise Boom
            return won

        try:
            won = await store.run(fn)
        except Boom:
            return
        for k in won:
            wins[k] = wins.get(k, 0) + 1

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            for keys, fail in batches:
                tg.start_soon(transaction, keys, fail)
    committed = {k for keys, fail in batches if not fail for k in keys}
    assert wins == dict.fromkeys(committed, 1)
    # Keys claimed only by failed transactions are still free.
    attempted = {k for keys, _ in batches for k in keys}
    free = sorted(attempted - committed)

    def claim_free(tx: Transaction) -> list[bool]:
        return [tx.claim_inbound("sms", "+1", f"{prefix}-{k}", "msg") for k in free]

    assert all(await store.run(claim_free))


# --------------------------------------------------------------------------- PostgreSQL across processes

_WORKER = textwrap.dedent(
    """
    import json, sys
    from datetime import UTC, datetime, timedelta
    from pathlib import Path

    import anyio

    from omnilink._store import PostgresStore

    dsn, name, other, sync_dir, inbound_keys = sys.argv[1:6]
    sync = Path(sync_dir)

    async def wait_for(path):
        with anyio.fail_after(60):
            while not path.exists():
                await anyio.sleep(0.001)

    async def main():
        outbox, inbound = [], []
        async with PostgresStore(dsn, max_size=2) as store:
            now = datetime.now(UTC)

            def claim(tx):
                return tx.claim_outbox(now=now, lease_until=now + timedelta(hours=1), limit=3)

            (sync / f"{name}.ready").touch()
            await wait_for(sync / f"{other}.ready")
            # Each takes one batch, then waits for the other's first batch: both surely take part.
            outbox.extend(r.id for r in await store.run(claim))
            (sync / f"{name}.first").touch()
            await wait_for(sync / f"{other}.first")
            while rows := await store.run(claim):
                outbox.extend(r.id for r in rows)
            (sync / f"{name}.inbound").touch()
            await wait_for(sync / f"{other}.inbound")
            for i in range(int(inbound_keys)):
                if await store.run(lambda tx: tx.claim_inbound("sms", "+1", f"p{i}", name)):
                    inbound.append(i)
        print(json.dumps({"outbox": outbox, "inbound": inbound}))

    anyio.run(main)
    """
)


@pytest.mark.postgres
def test_two_processes_never_claim_the_same_outbox_row_or_inbound_key(pg_dsn: str, tmp_path: Path) -> None:
    rows = [outbox_row(f"msg_{i}", due=-60 * 24 * 365) for i in range(150)]

    async def seed() -> None:
        async with PostgresStore(pg_dsn, max_size=1) as store:

            def fn(tx: Transaction) -> None:
                for r in rows:
                    tx.insert_outbox(r)

            await store.run(fn)

    anyio.run(seed)
    inbound_keys = 150
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, pg_dsn, name, other, str(tmp_path), str(inbound_keys)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, other in (("a", "b"), ("b", "a"))
    ]
    results: list[dict[str, list[Any]]] = []
    try:
        for proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    first, second = results
    assert first["outbox"]
    assert second["outbox"]
    assert not set(first["outbox"]) & set(second["outbox"])
    assert sorted(first["outbox"] + second["outbox"]) == sorted(r.id for r in rows)
    assert sorted(first["inbound"] + second["inbound"]) == list(range(inbound_keys))


# --------------------------------------------------------------------------- migrations & packaging


def test_pending_migrations_apply_in_order_once(tmp_path: Path) -> None:
    import sqlite3

    from omnilink._store._migrations import MIGRATIONS, Migration, migrate
    from omnilink._store._sql import SQLITE

    extra = Migration(LATEST_VERSION + 1, "test: notes", {"sqlite": ("CREATE TABLE notes (body TEXT)",)})
    conn = sqlite3.connect(tmp_path / "m.sqlite3", isolation_level=None)
    try:
        assert migrate(conn.cursor(), SQLITE) == LATEST_VERSION
        assert migrate(conn.cursor(), SQLITE, (*MIGRATIONS, extra)) == LATEST_VERSION + 1
        assert migrate(conn.cursor(), SQLITE, (*MIGRATIONS, extra)) == LATEST_VERSION + 1
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions == [*range(1, LATEST_VERSION + 1), LATEST_VERSION + 1]
        conn.execute("INSERT INTO notes VALUES ('applied')")
        with pytest.raises(StoreError, match="newer"):
            migrate(conn.cursor(), SQLITE)
    finally:
        conn.close()


@pytest.mark.anyio
async def test_sqlite_upgrade_to_v3_continues_the_save_order_of_existing_conversations(
    tmp_path: Path,
) -> None:
    import sqlite3

    from omnilink._store._migrations import MIGRATIONS, migrate
    from omnilink._store._sql import SQLITE

    path = tmp_path / "v2.sqlite3"
    c = contact()
    ref = ThreadRef(channel="chat", account="site", key="session")
    old = [conversation(c.id, threads=(ref,)) for _ in range(2)]
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        assert migrate(conn.cursor(), SQLITE, MIGRATIONS[:2]) == 2
        for seq, conv in zip((7, 41), old, strict=True):  # rows saved by version-2 code
            conn.execute(
                "INSERT INTO conversations (id, contact_id, status, updated_at, save_seq, data)"
                " VALUES (?, ?, 'open', ?, ?, ?)",
                (conv.id, c.id, at(0).isoformat(timespec="microseconds"), seq, conv.model_dump_json()),
            )
            conn.execute(
                "INSERT INTO conversation_threads VALUES (?, ?, ?, ?)",
                (ref.channel, ref.account, ref.key, conv.id),
            )
        conn.execute("COMMIT")
    finally:
        conn.close()
    async with SQLiteStore(path) as store:
        assert store.schema_version == LATEST_VERSION
        assert await store.run(lambda tx: tx.conversation_for_thread(ref)) == old[1]
        # The counter starts after the largest save_seq already stored: a save now is the newest.
        await store.run(lambda tx: tx.save_conversation(old[0]))
        assert await store.run(lambda tx: tx.conversation_for_thread(ref)) == old[0]
        newer = conversation(c.id, threads=(ref,))
        await store.run(lambda tx: tx.save_conversation(newer))
        listed = await store.run(lambda tx: tx.list_conversations())
        assert [x.id for x in listed] == [newer.id, old[0].id, old[1].id]


@pytest.mark.anyio
@pytest.mark.postgres
@pytest.mark.parametrize("check", [True, False])
async def test_postgres_pool_replaces_connections_the_server_closed(pg_dsn: str, check: bool) -> None:
    app = f"omnilink-test-{uuid.uuid4().hex[:8]}"
    store = PostgresStore(
        pg_dsn, min_size=2, max_size=2, connect_kwargs={"application_name": app}, check_connections=check
    )
    async with store:
        await store.run(lambda tx: tx.set_state("k", "before"))
        # What a server restart or a failover does to every pooled connection.
        assert kill_backends(pg_dsn, app) >= 1
        if check:
            await store.run(lambda tx: tx.set_state("k", "after"))
            assert await store.run(lambda tx: tx.get_state("k")) == "after"
        else:
            # Without the check the dead connection fails the next transaction (a StoreError,
            # which the Hub answers with 503 so the provider retries).
            with pytest.raises(StoreError):
                await store.run(lambda tx: tx.set_state("k", "after"))


def test_postgres_store_without_psycopg_raises_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from omnilink import ConfigurationError

    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(ConfigurationError, match="omnilink-core\\[postgres\\]"):
        PostgresStore(DEFAULT_PG_DSN)


def test_omnilink_imports_without_psycopg() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None; sys.modules['psycopg_pool'] = None\n"
        "import omnilink, omnilink._store\n"
        "assert omnilink._store.PostgresStore is not None\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
