"""Fixtures for the core's tests: stores of every kind and a two-channel Hub on fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from omnilink import ChannelSpec, Hub, HubSettings, MemoryStore, PostgresStore, SQLiteStore, Store, hookimpl
from omnilink.testing import FakeLoopback, routing_transport
from omnilink.testing._loopback import LOOPBACK_SPEC


@pytest.fixture
def postgres_schema_dsn(omnilink_postgres_dsn: str) -> str:
    """A fresh PostgreSQL schema (the omnilink pytest plugin's fixture)."""
    return omnilink_postgres_dsn


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Store:
    """An unopened store of each kind (the Hub opens and closes it)."""
    if request.param == "memory":
        return MemoryStore()
    if request.param == "sqlite":
        return SQLiteStore(tmp_path / "hub.sqlite3")
    return PostgresStore(request.getfixturevalue("postgres_schema_dsn"), max_size=4)


class FakeChat(FakeLoopback):
    """A second loopback-style provider under another host, for cross-channel tests."""

    hosts = ("api.chat.test",)


class TwoChannels:
    """Registers ``loopback`` and a second channel ``chat`` built the same way."""

    @hookimpl
    def omnilink_channels(self) -> list[ChannelSpec]:
        return [LOOPBACK_SPEC, replace(LOOPBACK_SPEC, name="chat", summary="second test channel")]


class Clock:
    """A controllable clock for windows and metrics."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fakes(clock: Clock) -> tuple[FakeLoopback, FakeChat]:
    return FakeLoopback(clock=clock), FakeChat(clock=clock, account="chat-biz")


@pytest.fixture
def make_hub(fakes: tuple[FakeLoopback, FakeChat], clock: Clock) -> Callable[..., Hub]:
    """Build (unopened) Hubs with both channels wired to the fakes."""

    def make(store: Store | None = None, **kw: Any) -> Hub:
        sms, chat = fakes
        settings = kw.pop("settings", HubSettings(backoff_base=0.01, poll_interval=0.05))
        return Hub(
            store=store or MemoryStore(),
            channels={
                "loopback": {"token": sms.token, "webhook_secret": sms.webhook_secret},
                "chat": {
                    "token": chat.token,
                    "webhook_secret": chat.webhook_secret,
                    "account": "chat-biz",
                    "base_url": "https://api.chat.test",
                },
            },
            plugins=[TwoChannels()],
            load_entry_points=False,
            transport=routing_transport(sms, chat),
            clock=clock,
            settings=settings,
            **kw,
        )

    return make


@pytest.fixture
async def hub(make_hub: Callable[..., Hub], any_store: Store) -> AsyncIterator[Hub]:
    async with make_hub(any_store) as opened:
        yield opened


def kill_backends(dsn: str, application_name: str) -> int:
    """Terminate every PostgreSQL connection of ``application_name`` (what a server restart or a
    failover does to a pool); returns how many there were."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True, application_name="omnilink-test-admin") as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])
