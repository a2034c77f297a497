"""Events shared between the processes of one PostgreSQL store (``HubSettings.share_events``).

Each Hub here stands for a process: it has its own origin, connections and subscribers, and
shares only the database with the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream

from omnilink import (
    ConfigurationError,
    Hub,
    HubSettings,
    MemoryStore,
    MessageQueued,
    MessageReceived,
    PostgresNotifications,
    PostgresStore,
    StoreError,
)
from omnilink._models import Event, Typing
from omnilink.testing import FakeLoopback, postgres_schema

from .conftest import FakeChat, kill_backends

pytestmark = [pytest.mark.anyio, pytest.mark.postgres]

SHARING = HubSettings(backoff_base=0.01, poll_interval=0.05, share_events=True)


def store_on(dsn: str, name: str = "omnilink-shared-events") -> PostgresStore:
    return PostgresStore(dsn, max_size=4, connect_kwargs={"application_name": name})


def sharing(make_hub: Callable[..., Hub], dsn: str, name: str = "omnilink-shared-events") -> Hub:
    """A Hub (a process) on the store at ``dsn``, sharing events."""
    return make_hub(store_on(dsn, name), settings=SHARING)


async def next_event(events: MemoryObjectReceiveStream[Event], kind: str) -> Event:
    """The next event of ``kind`` (others skipped), within 10 seconds."""
    with anyio.fail_after(10):
        while True:
            event = await events.receive()
            if event.kind == kind:
                return event


async def hears_nothing(events: MemoryObjectReceiveStream[Event], seconds: float, who: str) -> None:
    """Fail if an event arrives within ``seconds`` (the wait an event would have needed)."""
    with anyio.move_on_after(seconds):
        heard = await events.receive()
        pytest.fail(f"{who} heard {heard!r}")


async def send_message(hub: Hub, fake: FakeLoopback, sender: str, text: str, mid: str) -> None:
    response = await hub.handle_webhook("loopback", fake.webhook([fake.message_event(sender, text, mid)]))
    assert response.status == 200, response.body


async def test_a_message_stored_by_one_process_reaches_the_subscribers_of_another(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat], postgres_schema_dsn: str
) -> None:
    lb, _ = fakes
    async with (
        sharing(make_hub, postgres_schema_dsn) as worker,
        sharing(make_hub, postgres_schema_dsn) as web,
        worker.subscribe() as here,
        web.subscribe() as there,
    ):
        await send_message(worker, lb, "ana", "where is my order?", "m1")
        received = await next_event(there, "message_received")
        assert isinstance(received, MessageReceived)
        stored = await web.messages(received.conversation.id)
        assert [m.id for m in stored] == [received.message.id]
        assert received.message.text == "where is my order?"
        assert received.new_conversation
        # The worker's own subscriber sees it once: its notification comes back and is ignored.
        mine = await next_event(here, "message_received")
        assert isinstance(mine, MessageReceived)
        assert mine.message.id == received.message.id
        await worker.publish(Typing(channel="loopback", account=lb.account, thread_key="ana", on=True))
        typing = await next_event(there, "typing")
        assert typing == Typing(channel="loopback", account=lb.account, thread_key="ana", on=True)
        assert (await next_event(here, "typing")) == typing
        await hears_nothing(here, 0.3, "the worker, a second time,")


async def test_a_message_too_large_for_a_notification_is_loaded_from_the_store(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat], postgres_schema_dsn: str
) -> None:
    lb, _ = fakes
    text = "a long complaint " * 600  # ~10 KB: more than a notification can carry
    async with (
        sharing(make_hub, postgres_schema_dsn) as worker,
        sharing(make_hub, postgres_schema_dsn) as web,
        web.subscribe() as there,
    ):
        await send_message(worker, lb, "bo", text, "big1")
        received = await next_event(there, "message_received")
        assert isinstance(received, MessageReceived)
        assert received.message.text == text
        assert received.conversation.id == received.message.conversation_id
        assert received.new_conversation
        # Any event that carries a stored message travels the same way.
        await worker.publish(MessageQueued(message=received.message))
        queued = await next_event(there, "message_queued")
        assert queued == MessageQueued(message=received.message)


async def test_processes_of_another_schema_hear_nothing(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat], postgres_schema_dsn: str
) -> None:
    lb, _ = fakes
    with postgres_schema() as other_dsn:
        async with (
            sharing(make_hub, postgres_schema_dsn) as worker,
            sharing(make_hub, postgres_schema_dsn) as web,
            sharing(make_hub, other_dsn) as stranger,
            web.subscribe() as there,
            stranger.subscribe() as elsewhere,
        ):
            await send_message(worker, lb, "cy", "hello", "s1")
            await next_event(there, "message_received")
            await hears_nothing(elsewhere, 0.3, "a Hub on another schema")


async def test_without_sharing_a_process_hears_only_itself(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat], postgres_schema_dsn: str
) -> None:
    lb, _ = fakes
    async with (
        sharing(make_hub, postgres_schema_dsn) as worker,
        make_hub(store_on(postgres_schema_dsn)) as web,
        web.subscribe() as there,
    ):
        await send_message(worker, lb, "di", "hello", "n1")
        await hears_nothing(there, 0.5, "a Hub without share_events")


async def test_listening_resumes_after_the_server_drops_the_connection(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat], postgres_schema_dsn: str
) -> None:
    lb, _ = fakes
    async with (
        sharing(make_hub, postgres_schema_dsn) as worker,
        sharing(make_hub, postgres_schema_dsn, "omnilink-shared-listener") as web,
        web.subscribe() as there,
        worker.subscribe() as here,
    ):
        # The web Hub has sent once, so it holds a sending connection too: both die.
        await web.publish(Typing(channel="loopback", account=lb.account, thread_key="ed", on=True))
        await next_event(here, "typing")
        assert kill_backends(postgres_schema_dsn, "omnilink-shared-listener") >= 2
        with anyio.fail_after(15):
            n = 0
            while True:  # the listener reconnects after a pause; events sent meanwhile are lost
                n += 1
                await send_message(worker, lb, "ed", f"try {n}", f"r{n}")
                with anyio.move_on_after(0.5):
                    received = await next_event(there, "message_received")
                    assert isinstance(received, MessageReceived)
                    break
        assert received.message.text == f"try {n}"
        # Sending reconnects too.
        await web.publish(Typing(channel="loopback", account=lb.account, thread_key="ed", on=False))
        stopped = await next_event(here, "typing")
        assert stopped == Typing(channel="loopback", account=lb.account, thread_key="ed", on=False)


async def test_share_events_needs_a_store_shared_by_processes(make_hub: Callable[..., Any]) -> None:
    with pytest.raises(ConfigurationError, match="share_events needs a store shared by several processes"):
        async with make_hub(MemoryStore(), settings=SHARING):
            pass


async def test_a_hub_that_cannot_listen_fails_to_open_with_a_store_error(
    make_hub: Callable[..., Hub], postgres_schema_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = store_on(postgres_schema_dsn)
    unreachable = PostgresNotifications("postgresql://postgres@127.0.0.1:1/test?connect_timeout=2", {})
    monkeypatch.setattr(store, "event_feed", lambda: unreachable)
    hub = make_hub(store, settings=SHARING)
    with pytest.raises(StoreError, match="cannot listen for shared events"):
        await hub.__aenter__()
    assert not store.is_open  # the Hub closed what it opened
