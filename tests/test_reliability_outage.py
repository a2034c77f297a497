"""When the store is unavailable, webhooks get a 503 (the provider retries), nothing is half-stored,
and the Hub recovers by itself once the store is back.

- SQLite: another process holds the write lock longer than the store's ``busy_timeout``.
- PostgreSQL: the server terminates every connection of the Hub's pool (a restart, a failover).

PostgreSQL: ``OMNILINK_TEST_POSTGRES_DSN``; skipped when unreachable unless ``CI`` is set.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from omnilink import Hub, PostgresStore, SQLiteStore, Store, WebhookRequest
from omnilink._store import Transaction
from omnilink.testing import LoopbackPlugin, routing_transport, sign
from omnilink.testing._loopback import SIGNATURE_HEADER

from .conftest import kill_backends

sys.path.insert(0, str(Path(__file__).parent))
from reliability_worker import pg_schemas as fresh_pg_schemas

SECRET = "whsec"
TS0 = 1_767_225_600_000


@pytest.fixture
def pg_schemas() -> Iterator[Callable[[], str]]:
    with fresh_pg_schemas() as fresh:
        yield fresh


def webhook(run: str, first: int, count: int) -> WebhookRequest:
    events: list[dict[str, Any]] = [
        {
            "type": "message",
            "id": f"{run}-{i}",
            "from": f"cust-{run}-{i % 3}",
            "to": "biz",
            "text": f"message {i}",
            "ts": TS0 + i,
        }
        for i in range(first, first + count)
    ]
    body = json.dumps({"events": events}).encode()
    return WebhookRequest.build(
        "POST", "https://helpdesk.example/webhooks/loopback", {SIGNATURE_HEADER: sign(SECRET, body)}, body
    )


def loopback_hub(store: Store) -> Hub:
    return Hub(
        store=store,
        channels={"loopback": {"token": "tok", "webhook_secret": SECRET}},
        plugins=[LoopbackPlugin()],
        load_entry_points=False,
        transport=routing_transport(),
        dispatch=False,
    )


async def stored_ids(store: Store, run: str, count: int) -> tuple[int, list[str]]:
    def read(tx: Transaction) -> tuple[int, list[str]]:
        found = [
            pid
            for pid in (f"{run}-{i}" for i in range(count))
            if tx.message_by_provider_id("loopback", "biz", pid) is not None
        ]
        return tx.count_messages(), found

    return await store.run(read)


@pytest.mark.anyio
async def test_sqlite_write_lock_held_elsewhere_gets_503_then_redelivery_stores_once(tmp_path: Path) -> None:
    path = tmp_path / "hub.sqlite3"
    run = uuid.uuid4().hex[:8]
    store = SQLiteStore(path, busy_timeout=0.2)
    async with loopback_hub(store) as hub:
        assert (await hub.handle_webhook("loopback", webhook(run, 0, 5))).status == 200
        other = sqlite3.connect(path, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # another process writing for a long time
            refused = await hub.handle_webhook("loopback", webhook(run, 5, 5))
            assert refused.status == 503
            # Read beside the writer (WAL readers do not wait; the store's own transactions do).
            with sqlite3.connect(path) as reader:
                assert reader.execute("SELECT count(*) FROM messages").fetchone()[0] == 5
                assert reader.execute("SELECT count(*) FROM inbound_claims").fetchone()[0] == 5
        finally:
            other.execute("ROLLBACK")
            other.close()
        # The provider redelivers (twice, even): stored once.
        for _ in range(2):
            assert (await hub.handle_webhook("loopback", webhook(run, 5, 5))).status == 200
        assert await stored_ids(store, run, 10) == (10, [f"{run}-{i}" for i in range(10)])


@pytest.mark.anyio
@pytest.mark.postgres
async def test_postgres_connections_killed_get_503_then_the_pool_recovers_and_stores_once(
    pg_schemas: Callable[[], str],
) -> None:
    from psycopg.conninfo import make_conninfo

    run = uuid.uuid4().hex[:8]
    app = f"omnilink-outage-{run}"
    dsn = make_conninfo(pg_schemas(), application_name=app)
    store = PostgresStore(dsn, min_size=2, max_size=2)
    async with loopback_hub(store) as hub:
        assert (await hub.handle_webhook("loopback", webhook(run, 0, 5))).status == 200
        assert kill_backends(dsn, app) >= 1
        statuses = []
        with anyio.fail_after(60):
            for attempt in range(30):  # what the provider does: retry until acknowledged
                response = await hub.handle_webhook("loopback", webhook(run, 5, 20))
                statuses.append(response.status)
                if response.status == 200:
                    break
                await anyio.sleep(0.05 * (attempt + 1))
        assert statuses[-1] == 200, statuses
        assert set(statuses) <= {200, 503}, statuses
        assert (await hub.handle_webhook("loopback", webhook(run, 5, 20))).status == 200
        assert await stored_ids(store, run, 25) == (25, [f"{run}-{i}" for i in range(25)])
