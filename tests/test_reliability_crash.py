"""SIGKILL a Hub's process mid-ingest and mid-dispatch: nothing acknowledged is lost, nothing is
sent twice.

Each test runs Hubs in worker processes (``tests/reliability_worker.py``) on a SQLite file and
on a fresh PostgreSQL schema (the no-lookup variant: SQLite only) and kills them with SIGKILL,
so no cleanup code of the Hub runs. Then a new worker opens the same store, as a restarted
service would:

- mid-ingest: every webhook answered 2xx must be stored; redelivering what was not answered
  (what a provider does), plus some duplicates, stores every message exactly once;
- mid-dispatch: sends claimed by the killed dispatcher are reconciled after the lease: those
  the provider recorded become SENT without a second request, the others are sent once; a
  channel that cannot look sends up leaves them UNKNOWN and never resends;
- two dispatchers sharing a store, one killed mid-stream: every reply is sent exactly once.

The worker runs on the same anyio backend as the test (the HTTP server worker on asyncio).
PostgreSQL: ``OMNILINK_TEST_POSTGRES_DSN``; skipped when unreachable unless ``CI`` is set.
"""

from __future__ import annotations

import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from omnilink import (
    DeliveryStatus,
    Hub,
    Message,
    PostgresStore,
    SQLiteStore,
    Store,
    WebhookRequest,
)
from omnilink._store import OutboxState, Transaction
from omnilink.testing import FakeLoopback, LoopbackPlugin, routing_transport

sys.path.insert(0, str(Path(__file__).parent))
from reliability_worker import Worker
from reliability_worker import pg_schemas as fresh_pg_schemas

CHANNELS = {"loopback": {"token": "tok", "webhook_secret": "whsec"}}
TS0 = 1_767_225_600_000


def make_store(url: str) -> Store:
    if url.startswith("sqlite:"):
        return SQLiteStore(url.removeprefix("sqlite:"))
    return PostgresStore(url, max_size=2)


@pytest.fixture
def pg_schemas() -> Iterator[Callable[[], str]]:
    with fresh_pg_schemas() as fresh:
        yield fresh


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Where the workers keep their data: a SQLite file or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'hub.sqlite3'}"
    fresh: Callable[[], str] = request.getfixturevalue("pg_schemas")
    return fresh()


def event(pid: str, sender: str, index: int) -> dict[str, Any]:
    return {
        "type": "message",
        "id": pid,
        "from": sender,
        "to": "biz",
        "text": f"text of {pid}",
        "ts": TS0 + index,
    }


async def stored_counts(url: str, pids: list[str]) -> tuple[int, dict[str, int]]:
    """Messages in the store, and for each provider id how many messages carry it."""

    def read(tx: Transaction) -> tuple[int, dict[str, int]]:
        found: dict[str, int] = {}
        for pid in pids:
            message = tx.message_by_provider_id("loopback", "biz", pid)
            found[pid] = 0 if message is None else 1
        return tx.count_messages(), found

    async with make_store(url) as store:
        return await store.run(read)


# --------------------------------------------------------------------------- mid-ingest


@pytest.mark.anyio
async def test_sigkill_mid_ingest_keeps_every_acknowledged_message_and_redelivery_stores_each_once(
    store_url: str, tmp_path: Path
) -> None:
    url = store_url
    fake = FakeLoopback()
    count, kill_after = 240, 60
    run = uuid.uuid4().hex[:8]  # addresses unique to this run (see queue_replies)
    webhooks: list[WebhookRequest] = [
        fake.webhook(
            [
                event(f"m{2 * i}", f"cust-{run}-{i % 17}", 2 * i),
                event(f"m{2 * i + 1}", f"walk-in-{run}", 2 * i + 1),
            ]
        )
        for i in range(count)
    ]
    pids = [f"m{i}" for i in range(2 * count)]
    log = str(tmp_path / "worker.log")

    async def post_all(base: str, indexes: list[int], on_ack: Callable[[int], None]) -> None:
        limiter = anyio.CapacityLimiter(16)
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0, connect=2.0)) as client:

            async def post(i: int) -> None:
                async with limiter:
                    request = webhooks[i]
                    try:
                        response = await client.post(
                            f"{base}/webhooks/loopback", content=request.body, headers=dict(request.headers)
                        )
                    except httpx.TransportError:
                        return  # the server died: not acknowledged
                    if 200 <= response.status_code < 300:
                        on_ack(i)

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for i in indexes:
                        tg.start_soon(post, i)

    acked: set[int] = set()
    async with Worker.start("serve", "--store", url, log_path=log) as worker:
        base = (await worker.expect("listening"))["url"]

        def ack_then_maybe_kill(i: int) -> None:
            acked.add(i)
            if len(acked) == kill_after:
                worker.process.kill()  # SIGKILL with requests in flight

        await post_all(base, list(range(count)), ack_then_maybe_kill)
        assert await worker.wait() == -9
    assert kill_after <= len(acked) < count, "the worker must die mid-stream"

    # Every acknowledged message survived the kill, once.
    total, found = await stored_counts(url, pids)
    for i in acked:
        assert found[f"m{2 * i}"] == found[f"m{2 * i + 1}"] == 1
    assert total == sum(found.values())

    # The provider redelivers what was not acknowledged, and a few that were (duplicates).
    again = sorted(set(range(count)) - acked) + sorted(acked)[::3]
    redelivered: set[int] = set()
    async with Worker.start("serve", "--store", url, log_path=log) as worker:
        base = (await worker.expect("listening"))["url"]
        await post_all(base, again, redelivered.add)
    assert redelivered == set(again)
    total, found = await stored_counts(url, pids)
    assert total == len(pids)
    assert set(found.values()) == {1}


# --------------------------------------------------------------------------- mid-dispatch


class GatedFakeLoopback(FakeLoopback):
    """Records the first ``hold`` sends like the real provider, then holds their answers.

    The worker's dispatcher is then inside those sends when the test kills it: the provider
    accepted them, the Hub never heard back.
    """

    def __init__(self, hold: int, **kw: Any) -> None:
        super().__init__(**kw)
        self.hold = hold
        self.held = 0
        self.release = threading.Event()
        self._gate = threading.Lock()

    async def _messages(self, request: Request) -> Response:
        response = await super()._messages(request)
        if request.method == "POST":
            with self._gate:
                gated = self.held < self.hold
                if gated:
                    self.held += 1
            if gated:
                with anyio.move_on_after(30):
                    while not self.release.is_set():  # noqa: ASYNC110 - set from the test's thread
                        await anyio.sleep(0.01)
        return response


async def queue_replies(url: str, fake: FakeLoopback, customers: int, per_customer: int = 1) -> list[str]:
    """One inbound message and ``per_customer`` queued replies per customer (no dispatcher)."""
    hub = Hub(
        store=make_store(url),
        channels=CHANNELS,
        plugins=[LoopbackPlugin()],
        load_entry_points=False,
        transport=routing_transport(fake),
        dispatch=False,
    )
    async with hub:
        # Unique addresses: PostgreSQL advisory locks on handles are database-wide, and other
        # runs may use other schemas of the same database at the same time.
        run = uuid.uuid4().hex[:8]
        events = [fake.message_event(f"cust-{run}-{i}", f"q {i}", f"in-{i}") for i in range(customers)]
        for attempt in range(20):  # a 503 is retried, as a provider does
            response = await hub.handle_webhook("loopback", fake.webhook(events))
            if response.status != 503:
                break
            await anyio.sleep(0.05 * (attempt + 1))
        assert response.status == 200
        ids = []
        for n in range(per_customer):
            for conv in await hub.conversations(limit=customers):
                ids.append((await hub.reply(conv.id, f"answer {n} for {conv.id}")).id)
        return ids


async def final_state(url: str, ids: list[str]) -> tuple[list[Message], list[OutboxState]]:
    def read(tx: Transaction) -> tuple[list[Message], list[OutboxState]]:
        messages = [tx.get_message(i) for i in ids]
        rows = [row.state for i in ids for row in tx.outbox_for_message(i)]
        return [m for m in messages if m is not None], rows

    async with make_store(url) as store:
        return await store.run(read)


async def kill_inside_sends_then_restart(
    url: str, fake: GatedFakeLoopback, tmp_path: Path, backend: str, *extra: str
) -> None:
    log = str(tmp_path / "worker.log")
    async with fake.serve() as fake_url:
        args = ("dispatch", "--store", url, "--fake", fake_url, "--backend", backend, *extra)
        async with Worker.start(*args, log_path=log) as worker:
            await worker.expect("running")
            with anyio.fail_after(20):
                while fake.held < fake.hold:  # noqa: ASYNC110 - the fake counts in its server thread
                    await anyio.sleep(0.01)
            worker.process.kill()
            assert await worker.wait() == -9
        fake.release.set()
        async with Worker.start(*args, log_path=log) as worker:
            await worker.expect("running")
            await worker.expect("drained", timeout=60)
            assert await worker.wait() == 0


@pytest.mark.anyio
async def test_sigkill_mid_dispatch_reconciles_recorded_sends_and_sends_the_rest_once(
    store_url: str, tmp_path: Path, anyio_backend: str
) -> None:
    fake = GatedFakeLoopback(hold=2)
    ids = await queue_replies(store_url, fake, customers=6)
    await kill_inside_sends_then_restart(store_url, fake, tmp_path, anyio_backend)

    refs = Counter(item["client_ref"] for item in fake.sent)
    assert refs == Counter({f"{i}:0": 1 for i in ids}), "every reply reaches the provider exactly once"
    provider_id = {item["client_ref"]: item["id"] for item in fake.sent}
    messages, outbox = await final_state(store_url, ids)
    assert len(messages) == len(ids)
    for message in messages:
        assert message.status is DeliveryStatus.SENT
        assert message.provider_message_id == provider_id[f"{message.id}:0"]
    assert set(outbox) == {OutboxState.DONE}


@pytest.mark.anyio
async def test_sigkill_mid_dispatch_without_lookup_leaves_sends_unknown_and_never_resends(
    tmp_path: Path, anyio_backend: str
) -> None:
    url = f"sqlite:{tmp_path / 'hub.sqlite3'}"
    fake = GatedFakeLoopback(hold=2)
    ids = await queue_replies(url, fake, customers=4)
    await kill_inside_sends_then_restart(url, fake, tmp_path, anyio_backend, "--no-reconcile")

    assert len(fake.sent) == 2, "nothing is sent after the crash without a lookup"
    assert [m for m, p in fake.requests if p == "/v1/messages"].count("POST") == 2
    messages, outbox = await final_state(url, ids)
    # Every send the killed dispatcher had claimed may have gone out: none is resent.
    assert {m.status for m in messages} == {DeliveryStatus.UNKNOWN}
    assert set(outbox) == {OutboxState.UNKNOWN}


@pytest.mark.anyio
async def test_two_dispatchers_one_killed_send_every_reply_exactly_once(
    store_url: str, tmp_path: Path, anyio_backend: str
) -> None:
    fake = FakeLoopback()
    ids = await queue_replies(store_url, fake, customers=20, per_customer=4)
    log = str(tmp_path / "workers.log")
    async with fake.serve() as fake_url:
        args = (
            "dispatch",
            "--store",
            store_url,
            "--fake",
            fake_url,
            "--backend",
            anyio_backend,
            "--concurrency",
            "4",
        )
        async with Worker.start(*args, log_path=log) as first, Worker.start(*args, log_path=log) as second:
            await first.expect("running")
            await second.expect("running")
            with anyio.fail_after(30):
                while len(fake.sent) < len(ids) // 4:  # noqa: ASYNC110 - counted in the server thread
                    await anyio.sleep(0.005)
            first.process.kill()  # mid-stream: its claimed sends are left IN_FLIGHT
            assert await first.wait() == -9
            await second.expect("drained", timeout=60)
            assert await second.wait() == 0

    refs = Counter(item["client_ref"] for item in fake.sent)
    assert refs == Counter({f"{i}:0": 1 for i in ids}), "every reply reaches the provider exactly once"
    messages, outbox = await final_state(store_url, ids)
    assert {m.status for m in messages} == {DeliveryStatus.SENT}
    assert set(outbox) == {OutboxState.DONE}
