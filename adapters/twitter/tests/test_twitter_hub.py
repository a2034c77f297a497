"""The X channel inside a Hub: conformance, webhook/polling agreement, hand-off, chains, echoes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import pytest

from omnilink import DeliveryStatus, Direction, Hub, MemoryStore, TextPart
from omnilink._capabilities import strip_numbering
from omnilink.testing import ChannelConformance, routing_transport
from omnilink_twitter import POST_CAPABILITIES, invite_to_dm, is_valid_post
from omnilink_twitter.testing import FakeX, TwitterKit

CUSTOMER = "2000000001"


class TestTwitterConformance(TwitterKit, ChannelConformance):
    channel = "twitter"


@asynccontextmanager
async def open_hub(fake: FakeX, **config: Any) -> AsyncIterator[Hub]:
    settings = TwitterKit().channel_config([fake])
    settings.update(config)
    hub = Hub(
        store=MemoryStore(),
        channels={"twitter": settings},
        transport=routing_transport(fake),
        public_url="https://helpdesk.example",
    )
    async with hub:
        yield hub


async def stored(hub: Hub) -> list[tuple[str, str, str, str | None, bool]]:
    """Every stored message as (thread key, direction, text, provider id, echo-like) by conversation."""
    out = []
    for conversation in await hub.conversations():
        for message in await hub.messages(conversation.id):
            out.append(
                (
                    message.thread_key,
                    message.direction.value,
                    message.text,
                    message.provider_message_id,
                    False,
                )
            )
    return sorted(out, key=lambda row: row[3] or "")


@pytest.mark.anyio
async def test_webhook_and_polling_store_the_same_conversation() -> None:
    fake = FakeX()
    root = fake.customer_post(CUSTOMER, "@acmehelp my parcel is lost")
    first = fake.customer_dm(CUSTOMER, "here is my order number 42")
    reply = fake.customer_post(CUSTOMER, "@acmehelp any news?", in_reply_to=root.id)
    async with open_hub(fake) as by_webhook:
        for request in (fake.post_webhook(root), fake.dm_webhook(first), fake.post_webhook(reply)):
            assert (await by_webhook.handle_webhook("twitter", request)).status == 200
        webhook_rows = await stored(by_webhook)
        webhook_conversations = len(await by_webhook.conversations())
    async with open_hub(fake, poll_dms=True, poll_mentions=True) as by_polling:
        channel = by_polling.channel("twitter")
        await channel.poll_once()  # type: ignore[attr-defined]
        polling_rows = await stored(by_polling)
        polling_conversations = len(await by_polling.conversations())
    assert webhook_rows == polling_rows
    assert len(webhook_rows) == 3
    assert webhook_conversations == polling_conversations == 1


@pytest.mark.anyio
async def test_polling_after_webhooks_adds_only_what_was_missed() -> None:
    fake = FakeX()
    async with open_hub(fake, poll_dms=True, poll_interval=3600) as hub:
        seen = fake.customer_dm(CUSTOMER, "delivered by webhook")
        await hub.handle_webhook("twitter", fake.dm_webhook(seen))
        missed = fake.customer_dm(CUSTOMER, "sent while the webhook was down")
        await hub.handle_webhook("twitter", fake.dm_webhook(seen))  # a redelivery, too
        await hub.channel("twitter").poll_once()  # type: ignore[attr-defined]
        [conversation] = await hub.conversations()
        texts = [m.text for m in await hub.messages(conversation.id)]
        assert texts == ["delivered by webhook", "sent while the webhook was down"]
        assert missed.id in {m.provider_message_id for m in await hub.messages(conversation.id)}


@pytest.mark.anyio
async def test_public_reply_chain_through_the_hub_is_valid_and_threaded() -> None:
    fake = FakeX()
    root = fake.customer_post(CUSTOMER, "@acmehelp explain your refund policy please")
    async with open_hub(fake) as hub:
        await hub.handle_webhook("twitter", fake.post_webhook(root))
        [conversation] = await hub.conversations()
        text = " ".join(f"Refund rule number {i} applies to orders." for i in range(20))
        message = await hub.reply(conversation.id, text)
        await hub.drain()
        posts = fake.sent_posts
        assert len(posts) > 1
        assert all(is_valid_post(p.text) for p in posts)
        assert posts[0].parent_id == root.id
        assert [p.parent_id for p in posts[1:]] == [p.id for p in posts[:-1]]
        assert "".join(strip_numbering(p.text) for p in posts) == text
        sent = await hub.message(message.id)
        assert sent.status is DeliveryStatus.SENT
        assert list(sent.provider_ids) == [p.id for p in posts]
        assert len(posts) == len(
            __import__("omnilink").plan([TextPart(text=text)], POST_CAPABILITIES).messages
        )


@pytest.mark.anyio
async def test_a_deleted_post_loses_its_content_in_the_store() -> None:
    fake = FakeX()
    kept = fake.customer_post(CUSTOMER, "@acmehelp where is order 1234?")
    regretted = fake.customer_post(CUSTOMER, "@acmehelp my address is 1 Main St", in_reply_to=kept.id)
    async with open_hub(fake) as hub:
        await hub.handle_webhook("twitter", fake.post_webhook(kept, regretted))
        [conversation] = await hub.conversations()
        async with hub.subscribe() as events:
            response = await hub.handle_webhook("twitter", fake.delete_post(regretted))
            assert response.status == 200
            with anyio.fail_after(5):
                event = await events.receive()
        assert event.kind == "message_deleted"
        messages = await hub.messages(conversation.id)
        by_post = {m.provider_message_id: m for m in messages}
        assert by_post[regretted.id].deleted_at is not None
        assert "Main St" not in by_post[regretted.id].model_dump_json()
        assert by_post[kept.id].text == "@acmehelp where is order 1234?"
        # X may deliver the deletion before the post (no order is promised): never stored then.
        late = fake.customer_post(CUSTOMER, "@acmehelp never mind")
        await hub.handle_webhook("twitter", fake.delete_post(late))
        await hub.handle_webhook("twitter", fake.post_webhook(late))
        account = fake.settings.user_id
        found = await hub.store.run(lambda tx: tx.message_by_provider_id("twitter", account, late.id))
        assert found is None
        # Without the deletion the same delivery would have stored it.
        other = fake.customer_post(CUSTOMER, "@acmehelp still there?")
        await hub.handle_webhook("twitter", fake.post_webhook(other))
        assert await hub.store.run(lambda tx: tx.message_by_provider_id("twitter", account, other.id))


@pytest.mark.anyio
async def test_public_to_private_handoff_joins_the_same_conversation() -> None:
    fake = FakeX()
    root = fake.customer_post(CUSTOMER, "@acmehelp my account is locked")
    async with open_hub(fake) as hub:
        await hub.handle_webhook("twitter", fake.post_webhook(root))
        [conversation] = await hub.conversations()
        await hub.reply(conversation.id, invite_to_dm(fake.settings.user_id))
        await hub.drain()
        assert "recipient_id=" in fake.sent_posts[0].text
        dm = fake.customer_dm(CUSTOMER, "hi, here are my details")
        await hub.handle_webhook("twitter", fake.dm_webhook(dm))
        [joined] = await hub.conversations()
        assert joined.id == conversation.id
        keys = {ref.key for ref in joined.threads}
        assert keys == {f"post:{root.id}", f"dm:{fake.settings.user_id}-{CUSTOMER}"}
        await hub.reply(conversation.id, "Thanks, unlocking now")
        await hub.drain()
        assert fake.sent_dms[-1].text == "Thanks, unlocking now"


@pytest.mark.anyio
async def test_echoes_of_our_sends_do_not_become_new_messages_and_reads_mark_read() -> None:
    fake = FakeX()
    async with open_hub(fake) as hub:
        first = fake.customer_dm(CUSTOMER, "hello?")
        await hub.handle_webhook("twitter", fake.dm_webhook(first))
        [conversation] = await hub.conversations()
        message = await hub.reply(conversation.id, "Hello! How can we help?")
        await hub.drain()
        await hub.handle_webhook("twitter", fake.echo_webhook())
        messages = await hub.messages(conversation.id)
        assert [(m.direction, m.text) for m in messages] == [
            (Direction.INBOUND, "hello?"),
            (Direction.OUTBOUND, "Hello! How can we help?"),
        ]
        [ours] = fake.sent_dms
        read = fake.signed_request(fake.activity(reads=[(CUSTOMER, ours.id)]))
        await hub.handle_webhook("twitter", read)
        assert (await hub.message(message.id)).status is DeliveryStatus.READ


@pytest.mark.anyio
async def test_start_conversation_opens_a_dm_thread() -> None:
    fake = FakeX()
    fake.add_user(CUSTOMER)
    async with open_hub(fake) as hub:
        message = await hub.start_conversation("twitter", CUSTOMER, "Your replacement shipped")
        await hub.drain()
        assert message.thread_key == f"dm:{fake.settings.user_id}-{CUSTOMER}"
        assert fake.sent_dms[0].text == "Your replacement shipped"


@pytest.mark.anyio
async def test_revoked_oauth2_token_pauses_dispatch_with_a_health_event() -> None:
    fake = FakeX()
    access, refresh = fake.issue_oauth2()
    fake.expire_access_tokens()
    fake.revoke_refresh_token()
    config = {
        "access_token": None,
        "access_token_secret": None,
        "oauth2_access_token": access,
        "oauth2_refresh_token": refresh,
        "oauth2_client_id": fake.settings.client_id,
    }
    async with open_hub(fake, **config) as hub, hub.subscribe() as events:
        first = fake.customer_dm(CUSTOMER, "hello?")
        await hub.handle_webhook("twitter", fake.dm_webhook(first))
        [conversation] = await hub.conversations()
        await hub.reply(conversation.id, "answer")
        with anyio.fail_after(5):
            while True:
                event = await events.receive()
                if event.kind == "adapter_health":
                    break
        assert event.state.value == "credentials_invalid"
        assert fake.sent_dms == []


@pytest.mark.anyio
async def test_real_http_to_the_served_fake_with_x_hostnames_redirected() -> None:
    from omnilink._http import RedirectTransport

    fake = FakeX()
    async with fake.serve() as url:
        hub = Hub(
            store=MemoryStore(),
            channels={"twitter": TwitterKit().channel_config([fake])},
            transport=RedirectTransport({host: url for host in fake.hosts}),
        )
        async with hub:
            first = fake.customer_dm(CUSTOMER, "over a real socket")
            await hub.handle_webhook("twitter", fake.dm_webhook(first))
            [conversation] = await hub.conversations()
            message = await hub.reply(conversation.id, "answered over a real socket")
            await hub.drain()
            assert (await hub.message(message.id)).status is DeliveryStatus.SENT
    assert fake.sent_texts == ["answered over a real socket"]


def test_public_names_are_sorted_and_exported() -> None:
    import omnilink_twitter
    import omnilink_twitter.testing

    for module in (omnilink_twitter, omnilink_twitter.testing):
        assert list(module.__all__) == sorted(module.__all__)
        assert all(hasattr(module, name) for name in module.__all__)


@pytest.mark.anyio
async def test_duplicated_and_reordered_deliveries_store_each_message_once_in_time_order() -> None:
    fake = FakeX()
    start = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
    events = [fake.customer_dm(CUSTOMER, f"part {i}", at=start + timedelta(minutes=i)) for i in range(6)]
    requests = FakeX.as_x_delivers([fake.dm_webhook(e) for e in events], seed=3, duplicates=4)
    async with open_hub(fake) as hub:
        for request in requests:
            assert (await hub.handle_webhook("twitter", request)).status == 200
        [conversation] = await hub.conversations()
        texts = [m.text for m in await hub.messages(conversation.id)]
    assert texts == [f"part {i}" for i in range(6)]


@pytest.mark.anyio
async def test_usage_cap_is_a_health_event_and_the_reply_stays_queued() -> None:
    fake = FakeX()
    async with open_hub(fake) as hub, hub.subscribe() as events:
        first = fake.customer_dm(CUSTOMER, "hello?")
        await hub.handle_webhook("twitter", fake.dm_webhook(first))
        [conversation] = await hub.conversations()
        fake.usage_capped = True
        message = await hub.reply(conversation.id, "answer")
        with anyio.fail_after(5):
            while True:
                event = await events.receive()
                if event.kind == "adapter_health":
                    break
        assert event.state.value == "usage_capped"
        assert (await hub.message(message.id)).status is DeliveryStatus.QUEUED
        assert fake.sent_dms == []
