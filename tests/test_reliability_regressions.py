"""Regression tests for core bugs the reliability suite found, one test (or a few) per bug.

 1  non-ASCII signature header -> TypeError escaped (unauthenticated)
 2  out-of-range "ts" -> OverflowError / OSError escaped
 3  deeply nested JSON -> RecursionError escaped
 4  lone surrogate -> serialisation error on the SQL stores
 5  NUL in ids/accounts -> 503 forever on PostgreSQL (a poison webhook)
 6  a closed Hub with an external store kept answering and writing
 7  SQLite save_conversation scanned every conversation (max(save_seq) without an index)
 8  a failed lookup after a crash put the row back to PENDING -> duplicate send
 9  connection lost after the send -> retried -> duplicate send
10  PostgreSQL advisory locks shared across schemas (blocking, deadlocks)
11  concurrent opens of a new SQLite file -> "database is locked"
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from omnilink import Hub, LifecycleError, MemoryStore, PostgresStore, SQLiteStore, Store, WebhookRequest
from omnilink.testing import FakeLoopback, LoopbackPlugin, routing_transport, sign
from omnilink.testing._loopback import SIGNATURE_HEADER

URL = "https://helpdesk.example/webhooks/loopback"
CHANNELS = {"loopback": {"token": "tok", "webhook_secret": "whsec"}}


@pytest.fixture
def pg_dsn(omnilink_postgres_dsn: str) -> str:
    return omnilink_postgres_dsn


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def hub(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[Hub]:
    store: Store
    if request.param == "memory":
        store = MemoryStore()
    elif request.param == "sqlite":
        store = SQLiteStore(tmp_path / "hub.sqlite3")
    else:
        store = PostgresStore(request.getfixturevalue("pg_dsn"), max_size=2)
    hub = Hub(
        store=store,
        channels=CHANNELS,
        plugins=[LoopbackPlugin()],
        load_entry_points=False,
        transport=routing_transport(),
    )
    async with hub:
        yield hub


def signed(body: bytes, signature: str | None = None) -> WebhookRequest:
    return WebhookRequest.build("POST", URL, {SIGNATURE_HEADER: signature or sign("whsec", body)}, body)


def event(**override: Any) -> bytes:
    e = {"type": "message", "id": "m1", "from": "ana", "to": "biz", "text": "hi", "ts": 1_767_225_600_000}
    e.update(override)
    return json.dumps({"events": [e]}).encode()


# Bug 1 (unauthenticated): a non-ASCII signature header makes hmac.compare_digest raise TypeError.
@pytest.mark.anyio
async def test_non_ascii_signature_header_gets_403(hub: Hub) -> None:
    response = await hub.handle_webhook("loopback", signed(event(), signature="\u00e9" * 64))
    assert response.status == 403


# Bug 2: timestamps out of range raise OverflowError / OSError out of the loopback parser.
@pytest.mark.anyio
@pytest.mark.parametrize("ts", [1e400, 1e20, -1e20, 10**300])
async def test_out_of_range_timestamp_gets_400(hub: Hub, ts: Any) -> None:
    body = event(ts=ts).replace(b"Infinity", b"1e400")
    response = await hub.handle_webhook("loopback", signed(body))
    assert response.status == 400


# Bug 3: deeply nested JSON raises RecursionError out of json.loads.
@pytest.mark.anyio
async def test_deeply_nested_json_gets_400(hub: Hub) -> None:
    response = await hub.handle_webhook("loopback", signed(b"[" * 100_000 + b"]" * 100_000))
    assert response.status == 400


# Bug 4: a lone surrogate (valid JSON escape) is stored by MemoryStore but makes the SQL stores
# raise PydanticSerializationError out of Hub.handle_webhook.
@pytest.mark.anyio
async def test_lone_surrogate_gets_the_same_4xx_on_every_store(hub: Hub) -> None:
    response = await hub.handle_webhook("loopback", signed(event(text="\ud800")))
    assert response.status == 400
    assert await hub.store.run(lambda tx: tx.count_messages()) == 0


# Content is checked where it is written (every store refuses a model without JSON); key fields
# are checked before the transaction, since they are bound as SQL parameters before any JSON.
@pytest.mark.anyio
@pytest.mark.parametrize("field", ["id", "to", "name"])
async def test_lone_surrogate_in_keys_or_names_gets_400_and_stores_nothing(hub: Hub, field: str) -> None:
    response = await hub.handle_webhook("loopback", signed(event(**{field: "a\ud800b"})))
    assert response.status == 400
    assert await hub.store.run(lambda tx: tx.count_messages()) == 0


# Bug 5: NUL in a provider id / account is stored by memory and SQLite, but PostgreSQL refuses it
# (StoreError) so the Hub answers 503 forever: a poison webhook the provider retries for days.
@pytest.mark.anyio
@pytest.mark.parametrize("field", ["id", "to"])
async def test_nul_in_keys_is_refused_with_4xx_on_every_store(hub: Hub, field: str) -> None:
    response = await hub.handle_webhook("loopback", signed(event(**{field: "a\u0000b"})))
    assert 400 <= response.status < 500


# Bug 6: a closed Hub keeps answering (and writing) through a store it did not open.
@pytest.mark.anyio
async def test_closed_hub_with_an_external_store_raises_lifecycle_error() -> None:
    store = MemoryStore()
    await store.open()
    fake = FakeLoopback()
    hub = Hub(
        store=store,
        channels=CHANNELS,
        plugins=[LoopbackPlugin()],
        load_entry_points=False,
        transport=routing_transport(fake),
    )
    async with hub:
        await hub.handle_webhook("loopback", fake.webhook([fake.message_event("ana", "hi")]))
        [conv] = await hub.conversations()
    with pytest.raises(LifecycleError):
        await hub.conversations()
    with pytest.raises(LifecycleError):
        await hub.set_status(conv.id, "closed")  # type: ignore[arg-type]
    with pytest.raises(LifecycleError):
        hub.channel("loopback")


# Bug 7 (performance): on SQLite, every save_conversation computes the next save sequence as
# (SELECT coalesce(max(save_seq), 0) + 1 FROM conversations), which no index serves: a full scan
# of the conversations per inbound message. Ingest cost grows linearly with the conversation count
# (~20 ms per message at 100k conversations on this machine).
@pytest.mark.anyio
async def test_sqlite_conversation_save_does_not_scan_every_conversation(tmp_path: Any) -> None:
    import sqlite3
    import time

    from omnilink import Conversation

    async def save_cost(path: Any, existing: int) -> float:
        async with SQLiteStore(path) as store:
            pass  # schema
        with sqlite3.connect(path) as conn:
            conn.executemany(
                "INSERT INTO conversations (id, contact_id, status, updated_at, save_seq, data)"
                " VALUES (?, 'con', 'open', '2026-01-01T00:00:00.000000+00:00', ?, '{}')",
                [(f"cnv_{i}", i + 1) for i in range(existing)],
            )
        conv = Conversation(contact_id="con_x")
        async with SQLiteStore(path) as store:
            began = time.perf_counter()
            for _ in range(50):
                await store.run(lambda tx: tx.save_conversation(conv))
            return time.perf_counter() - began

    small = await save_cost(tmp_path / "small.sqlite3", 100)
    large = await save_cost(tmp_path / "large.sqlite3", 300_000)
    assert large < 3 * small, f"50 saves: {small:.3f} s with 100 conversations, {large:.3f} s with 300k"


# Bug 8 (duplicate send): after a crash, the dispatcher reconciles IN_FLIGHT rows, but when the
# lookup itself fails with anything other than OutcomeUnknownError (a timeout, a connection
# error, a 5xx mapped to RetryableSendError), _dispatch_rows catches the exception and
# _reschedule sets the row back to PENDING; the next claim sees PENDING and sends blindly.
@pytest.mark.anyio
async def test_failed_lookup_after_a_crash_never_resends_a_recorded_send() -> None:
    from datetime import timedelta

    from omnilink import HubSettings
    from omnilink.testing import Fault

    store = MemoryStore()
    fake = FakeLoopback()
    await store.open()
    queued = Hub(
        store=store,
        channels=CHANNELS,
        plugins=[LoopbackPlugin()],
        load_entry_points=False,
        transport=routing_transport(fake),
        dispatch=False,
    )
    async with queued:
        await queued.handle_webhook("loopback", fake.webhook([fake.message_event("ana", "hi", "in-1")]))
        [conv] = await queued.conversations()
        reply = await queued.reply(conv.id, "hello Ana")
        # A dispatcher claims the row, the provider records the send, the process dies.
        now = queued.now()
        await store.run(lambda tx: tx.claim_outbox(now=now, lease_until=now, limit=10))
        fake.sent.append(
            {
                "id": "lb_99",
                "to": "ana",
                "text": "hello Ana",
                "media": None,
                "client_ref": f"{reply.id}:0",
                "at": now,
            }
        )
    # The restarted dispatcher's first lookup times out.
    fake.inject(Fault(kind="timeout_before", times=1))
    restarted = Hub(
        store=store,
        channels=CHANNELS,
        plugins=[LoopbackPlugin()],
        load_entry_points=False,
        transport=routing_transport(fake),
        settings=HubSettings(backoff_base=0.01, lease=timedelta(seconds=1)),
    )
    async with restarted:
        await restarted.drain(timeout=10)
    refs = [s["client_ref"] for s in fake.sent]
    assert refs.count(f"{reply.id}:0") == 1, fake.sent


# Bug 9 (duplicate send, in the reference channel adapter authors copy): LoopbackChannel.send maps
# every httpx.TransportError to RetryableSendError, but a connection lost after the request went
# out (RemoteProtocolError "server disconnected", ReadError) may follow a processed send; the Hub
# then resends blindly. Only errors before sending (ConnectError) are safe to retry; the others
# are OutcomeUnknownError (reconcile first).
@pytest.mark.anyio
async def test_connection_lost_after_the_provider_accepted_a_send_never_sends_twice() -> None:
    import httpx

    fake = FakeLoopback()
    inner = fake.transport()

    class DropFirstAnswer(httpx.AsyncBaseTransport):
        dropped = False

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            response = await inner.handle_async_request(request)
            if request.method == "POST" and not self.dropped:
                self.dropped = True
                await response.aread()
                raise httpx.RemoteProtocolError(
                    "Server disconnected without sending a response.", request=request
                )
            return response

    from omnilink import HubSettings

    hub = Hub(
        store=MemoryStore(),
        channels=CHANNELS,
        plugins=[LoopbackPlugin()],
        load_entry_points=False,
        transport=DropFirstAnswer(),
        settings=HubSettings(backoff_base=0.01),
    )
    async with hub:
        await hub.handle_webhook("loopback", fake.webhook([fake.message_event("ana", "hi", "in-1")]))
        [conv] = await hub.conversations()
        reply = await hub.reply(conv.id, "hello Ana")
        await hub.drain(timeout=10)
    assert [s["client_ref"] for s in fake.sent].count(f"{reply.id}:0") == 1, fake.sent


# Bug 10: PostgresStore.lock_key takes pg_advisory_xact_lock(hashtextextended(key, 0)); advisory
# locks are per database, not per schema, so Hubs on different schemas (tenants, test runs) of
# one database block - and deadlock - each other on the same handle keys ("handle:loopback:ana").
# Seen as an intermittent 503 ("gave up after 5 attempts") in a reliability test while another
# run used a different schema. Fix: namespace the key, e.g.
# pg_advisory_xact_lock(hashtextextended(current_schema() || ':' || %s, 0)).
@pytest.mark.anyio
async def test_advisory_locks_of_different_schemas_do_not_block_each_other() -> None:
    import threading

    import anyio
    import psycopg
    from psycopg.conninfo import make_conninfo

    admin = os.environ.get("OMNILINK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
    conn = psycopg.connect(admin, autocommit=True, connect_timeout=5)
    schemas = [f"omnilink_bug_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    held, release = threading.Event(), threading.Event()
    try:
        for schema in schemas:
            conn.execute(f"CREATE SCHEMA {schema}")
        a, b = (
            PostgresStore(make_conninfo(admin, options=f"-c search_path={s}"), max_size=2) for s in schemas
        )
        async with a, b:

            def hold(tx: Any) -> None:
                tx.lock_key("handle:loopback:ana")
                held.set()
                release.wait(10)

            def take(tx: Any) -> None:
                tx._cur.execute("SET LOCAL lock_timeout = '500ms'")
                tx.lock_key("handle:loopback:ana")

            async with anyio.create_task_group() as tg:
                tg.start_soon(a.run, hold)
                await anyio.to_thread.run_sync(held.wait, 10)
                try:
                    await b.run(take)  # another schema: must not wait for schema a's lock
                finally:
                    release.set()
    finally:
        release.set()
        for schema in schemas:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        conn.close()


# Bug 11: processes (or threads) opening a NEW SQLite file at the same moment: one of them fails
# with StoreError "database is locked" - switching the file to WAL (PRAGMA journal_mode = WAL)
# can return SQLITE_BUSY without waiting for busy_timeout. Two web workers starting together on a
# fresh database hit it. Fix: in SQLiteStore._connect retry the journal_mode switch (and the
# migration) on "database is locked" with a short backoff until busy_timeout has elapsed.
@pytest.mark.anyio
async def test_concurrent_opens_of_a_new_sqlite_file_all_succeed(tmp_path: Any) -> None:
    import anyio

    errors: list[Exception] = []
    for n in range(40):
        stores = [SQLiteStore(tmp_path / f"new-{n}.sqlite3") for _ in range(4)]

        async def open_one(store: SQLiteStore) -> None:
            try:
                await store.open()
            except Exception as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for store in stores:
                tg.start_soon(open_one, store)
        for store in stores:
            if store.is_open:
                await store.aclose()
    assert errors == []
