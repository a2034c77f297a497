"""pytest plugin (entry point ``pytest11``): fixtures for testing code built on omnilink."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest

from .._hub import Hub
from .._store._memory import MemoryStore
from ._fake import routing_transport
from ._loopback import FakeLoopback, LoopbackPlugin
from ._postgres import PostgresUnavailable, postgres_schema


@pytest.fixture
def omnilink_store() -> MemoryStore:
    """A fresh in-memory store."""
    return MemoryStore()


@pytest.fixture
def loopback_fake() -> FakeLoopback:
    """A fake of the loopback provider (token ``tok``, webhook secret ``whsec``)."""
    return FakeLoopback()


@pytest.fixture
async def loopback_hub(omnilink_store: MemoryStore, loopback_fake: FakeLoopback) -> AsyncIterator[Hub]:
    """An open Hub with the loopback channel wired to ``loopback_fake``; no entry points loaded."""
    hub = Hub(
        store=omnilink_store,
        channels={"loopback": {"token": loopback_fake.token, "webhook_secret": loopback_fake.webhook_secret}},
        plugins=[LoopbackPlugin()],
        load_entry_points=False,
        transport=routing_transport(loopback_fake),
    )
    async with hub:
        yield hub


@pytest.fixture
def omnilink_postgres_dsn() -> Iterator[str]:
    """A DSN on a fresh PostgreSQL schema, dropped afterwards.

    The server is ``OMNILINK_TEST_POSTGRES_DSN`` (default: postgres@127.0.0.1:5432/test). With
    no server reachable the test is skipped, unless ``CI`` is set: then it fails, so CI never
    silently skips what it can run.
    """
    try:
        with postgres_schema() as dsn:
            yield dsn
    except PostgresUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc} (CI is set, so this fails instead of skipping)")
        pytest.skip(str(exc))
