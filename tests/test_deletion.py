"""Deleted messages: content removed, tombstone kept, an event published; deletion before the
message means the message is never stored. On every store and backend."""

from __future__ import annotations

import anyio
import pytest

from omnilink import Hub, InboundDeletion, MessageDeleted
from omnilink.testing import FakeLoopback

from .conftest import FakeChat


async def deliver(hub: Hub, fake: FakeLoopback, *events: dict[str, object]) -> None:
    response = await hub.handle_webhook("loopback", fake.webhook(list(events)))
    assert response.status == 200, response.body


@pytest.mark.anyio
async def test_deleting_a_message_removes_its_content_and_keeps_a_tombstone(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    fake = fakes[0]
    await deliver(hub, fake, fake.message_event("ana", "my card number is 4111…", "m1"))
    await deliver(hub, fake, fake.message_event("ana", "sorry, ignore that", "m2"))
    (conversation,) = await hub.conversations()
    first, second = await hub.messages(conversation.id)
    async with hub.subscribe() as events:
        await deliver(hub, fake, fake.delete_event("m1"))
        with anyio.fail_after(5):
            event = await events.receive()
    assert isinstance(event, MessageDeleted)
    assert (event.message_id, event.conversation_id, event.provider_message_id) == (
        first.id,
        conversation.id,
        "m1",
    )
    tombstone = await hub.message(first.id)
    assert tombstone.deleted_at is not None
    assert tombstone.parts == ()
    assert tombstone.raw is None
    assert tombstone.text == ""
    assert "4111" not in tombstone.model_dump_json()
    # Everything else about it stays: ids, direction, time, place in the conversation.
    assert (tombstone.provider_message_id, tombstone.sent_at, tombstone.direction) == (
        "m1",
        first.sent_at,
        first.direction,
    )
    assert [m.id for m in await hub.messages(conversation.id)] == [first.id, second.id]
    assert (await hub.message(second.id)).text == "sorry, ignore that"


@pytest.mark.anyio
async def test_a_redelivered_deletion_changes_nothing_and_publishes_nothing(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    fake = fakes[0]
    await deliver(hub, fake, fake.message_event("ana", "oops", "m1"))
    await deliver(hub, fake, fake.delete_event("m1"))
    (conversation,) = await hub.conversations()
    (before,) = await hub.messages(conversation.id)
    async with hub.subscribe() as events:
        await deliver(hub, fake, fake.delete_event("m1"), fake.delete_event("m1"))
        with anyio.move_on_after(0.2):
            got = await events.receive()
            pytest.fail(f"a redelivered deletion published {got!r}")
    assert await hub.messages(conversation.id) == [before]


@pytest.mark.anyio
async def test_a_deletion_before_its_message_means_the_message_is_never_stored(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    fake = fakes[0]
    await deliver(hub, fake, fake.delete_event("m1"))
    await deliver(hub, fake, fake.message_event("ana", "deleted before we saw it", "m1"))
    assert await hub.store.run(lambda tx: tx.count_messages()) == 0
    # Both in one batch, deletion last: stored, then emptied.
    await deliver(hub, fake, fake.message_event("ben", "gone", "m2"), fake.delete_event("m2"))
    (conversation,) = await hub.conversations()
    (message,) = await hub.messages(conversation.id)
    assert message.deleted_at is not None
    assert message.parts == ()


@pytest.mark.anyio
async def test_deleting_an_unknown_or_our_own_message_is_safe(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    fake = fakes[0]
    await deliver(hub, fake, fake.message_event("ana", "hi", "m1"))
    (conversation,) = await hub.conversations()
    reply = await hub.reply(conversation.id, "hello Ana")
    await hub.drain()
    sent = await hub.message(reply.id)
    assert sent.provider_message_id is not None
    await deliver(hub, fake, fake.delete_event(sent.provider_message_id))
    assert (await hub.message(reply.id)).deleted_at is not None
    report = await hub.ingest(
        "loopback",
        [InboundDeletion(account=fake.account, provider_message_id="never-seen", at=fake.now())],
    )
    assert report.events == []
    assert report.stored == []
