"""The Messenger channel inside a Hub: stored once, echoes matched, windows enforced, receipts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from messenger_support import AGENT_PAGE, PAGE, Clock, make_fake

from omnilink import (
    Author,
    AuthorKind,
    ContentError,
    DeliveryStatus,
    Direction,
    Hub,
    MediaPart,
    MemoryStore,
    Message,
    PolicyRefusal,
    TextPart,
    WindowClosedError,
)
from omnilink.testing import FakeLoopback, Fault, LoopbackPlugin, routing_transport
from omnilink_messenger import _plugin
from omnilink_messenger.testing import FakeEvent, FakeGraphAPI

pytestmark = pytest.mark.anyio
PSID = "6400000000000004"


@asynccontextmanager
async def open_hub(fake: FakeGraphAPI, clock: Clock, **config: Any) -> AsyncIterator[Hub]:
    hub = Hub(
        store=MemoryStore(),
        channels={"messenger": fake.channel_config(**config)},
        plugins=[_plugin],
        load_entry_points=False,
        transport=routing_transport(fake),
        clock=clock,
        public_url="https://hd.example",
    )
    async with hub:
        yield hub


async def deliver(hub: Hub, fake: FakeGraphAPI, events: list[FakeEvent]) -> int:
    response = await hub.handle_webhook("messenger", fake.webhook_request(events))
    return response.status


async def conversation_of(hub: Hub, psid: str = PSID) -> str:
    for conv in await hub.conversations():
        if any(t.key == psid for t in conv.threads):
            return conv.id
    raise AssertionError(f"no conversation for {psid}")


async def test_verification_handshake_answers_the_challenge(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_hub(fake, clock) as hub:
        ok = await hub.handle_webhook("messenger", fake.verification_request(challenge="8271"))
        bad = await hub.handle_webhook("messenger", fake.verification_request(token="nope"))
        wrong_mode = await hub.handle_webhook("messenger", fake.verification_request(mode="unsubscribe"))
    assert (ok.status, ok.body) == (200, b"8271")
    assert bad.status == 403
    assert wrong_mode.status == 403


async def test_mis_signed_webhook_is_refused_and_stores_nothing(fake: FakeGraphAPI, clock: Clock) -> None:
    from dataclasses import replace

    request = fake.user_message(PAGE, PSID, "hello")
    body = bytearray(request.body)
    body[10] ^= 1
    async with open_hub(fake, clock) as hub:
        tampered = await hub.handle_webhook("messenger", replace(request, body=bytes(body)))
        unsigned = await hub.handle_webhook(
            "messenger", replace(request, headers={"content-type": "application/json"})
        )
        assert tampered.status == 403
        assert unsigned.status == 403
        assert await hub.conversations() == []


async def test_non_ascii_text_survives_meta_escaping(fake: FakeGraphAPI, clock: Clock) -> None:
    request = fake.user_message(PAGE, PSID, "Grüße, 你好 👋")
    assert b"\\u00fc" in request.body
    async with open_hub(fake, clock) as hub:
        assert (await hub.handle_webhook("messenger", request)).status == 200
        [message] = await hub.messages(await conversation_of(hub))
    assert message.text == "Grüße, 你好 👋"


@given(data=st.data())
@settings(max_examples=15)
async def test_random_batches_store_every_message_once(data: st.DataObject) -> None:
    clock = Clock()
    fake = make_fake(clock)
    events: list[FakeEvent] = []
    for e in range(data.draw(st.integers(1, 6), label="entries")):
        page = data.draw(st.sampled_from([PAGE, AGENT_PAGE]))
        for i in range(data.draw(st.integers(1, 8), label="events")):
            psid = f"65000000000{data.draw(st.integers(0, 3))}"
            at = clock() + timedelta(seconds=data.draw(st.integers(-600, 600)))
            events.append(fake.message_event(page, psid, f"m {e}.{i}", at=at, mid=f"m_{e}_{i}"))
    seed = data.draw(st.integers(0, 1000))
    async with open_hub(fake, clock) as hub:
        for attempt in range(data.draw(st.integers(1, 3), label="deliveries")):
            request = fake.batch_request(events, seed=seed + attempt, entry_size=3, duplicates=0.3)
            assert (await hub.handle_webhook("messenger", request)).status == 200
        stored: list[Message] = []
        for conv in await hub.conversations(limit=1000):
            stored.extend(m for m in await hub.messages(conv.id) if m.direction is Direction.INBOUND)
    assert sorted(m.provider_message_id or "" for m in stored) == sorted(str(ev.mid) for ev in events)
    for message in stored:
        assert message.account in (PAGE, AGENT_PAGE)


async def test_reply_in_the_window_is_a_response_and_its_echo_is_matched(
    fake: FakeGraphAPI, clock: Clock
) -> None:
    async with open_hub(fake, clock) as hub:
        await deliver(hub, fake, [fake.message_event(PAGE, PSID, "where is my order?")])
        conv_id = await conversation_of(hub)
        reply = await hub.reply(conv_id, "On its way!")
        await hub.drain()
        options = (await hub.message(reply.id)).send_options
        assert options["messaging_type"] == "RESPONSE"
        assert "tag" not in options
        [sent] = fake.sent
        assert sent.metadata == reply.id
        echoes = fake.take_pending()
        assert await deliver(hub, fake, echoes) == 200
        messages = await hub.messages(conv_id)
        assert [m.direction for m in messages] == [Direction.INBOUND, Direction.OUTBOUND]
        stored = await hub.message(reply.id)
        assert stored.provider_message_id == sent.mid
        assert stored.status is DeliveryStatus.SENT


async def test_long_reply_is_split_and_every_echo_joins_one_message(fake: FakeGraphAPI, clock: Clock) -> None:
    text = " ".join(f"word{i}" for i in range(900))
    async with open_hub(fake, clock) as hub:
        await deliver(hub, fake, [fake.message_event(PAGE, PSID, "details please")])
        conv_id = await conversation_of(hub)
        reply = await hub.reply(conv_id, text)
        await hub.drain()
        assert len(fake.sent) >= -(-len(text) // 2000)
        assert all(len(s.text or "") <= 2000 for s in fake.sent)
        assert "".join(s.text or "" for s in fake.sent) == text
        await deliver(hub, fake, fake.take_pending())
        outbound = [m for m in await hub.messages(conv_id) if m.direction is Direction.OUTBOUND]
        assert [m.id for m in outbound] == [reply.id]
        assert set(outbound[0].provider_ids) == {s.mid for s in fake.sent}


async def test_message_sent_from_the_page_inbox_is_stored_as_outbound(
    fake: FakeGraphAPI, clock: Clock
) -> None:
    async with open_hub(fake, clock) as hub:
        await deliver(hub, fake, [fake.message_event(PAGE, PSID, "hi")])
        await deliver(hub, fake, [fake.inbox_echo_event(PAGE, PSID, "answered from the inbox")])
        messages = await hub.messages(await conversation_of(hub))
    assert [(m.direction, m.text) for m in messages] == [
        (Direction.INBOUND, "hi"),
        (Direction.OUTBOUND, "answered from the inbox"),
    ]
    assert messages[1].author.kind is AuthorKind.BUSINESS


async def test_delivery_and_read_watermarks_advance_outbound_status(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_hub(fake, clock) as hub:
        await deliver(hub, fake, [fake.message_event(PAGE, PSID, "hi")])
        conv_id = await conversation_of(hub)
        reply = await hub.reply(conv_id, "hello")
        await hub.drain()
        clock.advance(timedelta(seconds=5))
        await deliver(hub, fake, [fake.delivery_event(PAGE, PSID)])
        assert (await hub.message(reply.id)).status is DeliveryStatus.DELIVERED
        await deliver(hub, fake, [fake.read_event(PAGE, PSID)])
        assert (await hub.message(reply.id)).status is DeliveryStatus.READ
        await deliver(hub, fake, [fake.delivery_event(PAGE, PSID, mids=[fake.sent[0].mid])])
        assert (await hub.message(reply.id)).status is DeliveryStatus.READ


async def test_reply_after_24_hours_is_refused_before_any_request(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_hub(fake, clock) as hub:
        await deliver(hub, fake, [fake.message_event(PAGE, PSID, "hi")])
        conv_id = await conversation_of(hub)
        clock.advance(timedelta(hours=25))
        with pytest.raises(WindowClosedError) as info:
            await hub.reply(conv_id, "sorry for the wait")
        assert any("HUMAN_AGENT" in r.detail for r in info.value.remedies)
        assert fake.requests == []
        assert [m.direction for m in await hub.messages(conv_id)] == [Direction.INBOUND]


async def test_human_agent_tag_opens_seven_days_on_an_approved_page(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_hub(fake, clock) as hub:
        await deliver(hub, fake, [fake.message_event(AGENT_PAGE, PSID, "hi")])
        conv_id = await conversation_of(hub)
        clock.advance(timedelta(days=3))
        with pytest.raises(WindowClosedError):
            await hub.reply(conv_id, "automatic follow-up", automatic=True)
        reply = await hub.reply(
            conv_id, "a person answers", author=Author(kind=AuthorKind.AGENT, id="agent-7")
        )
        await hub.drain()
        options = (await hub.message(reply.id)).send_options
        assert (options["messaging_type"], options["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
        assert (fake.sent[0].messaging_type, fake.sent[0].tag) == ("MESSAGE_TAG", "HUMAN_AGENT")
        clock.advance(timedelta(days=5))
        with pytest.raises(WindowClosedError):
            await hub.reply(conv_id, "too late")


async def test_messenger_cannot_start_a_conversation(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_hub(fake, clock) as hub:
        with pytest.raises(PolicyRefusal):
            await hub.start_conversation("messenger", PSID, "hello", account=PAGE)
    assert fake.sent == []


async def test_rate_limited_send_is_retried_later(fake: FakeGraphAPI, clock: Clock) -> None:
    fault = Fault(
        status=400,
        body={
            "error": {
                "message": "(#613) Calls to this api have exceeded the rate limit.",
                "code": 613,
                "type": "OAuthException",
                "fbtrace_id": "Atrace",
            }
        },
        headers={"retry-after": "1"},
        endpoint="messages",
    )
    async with open_hub(fake, clock) as hub:
        await deliver(hub, fake, [fake.message_event(PAGE, PSID, "hi")])
        conv_id = await conversation_of(hub)
        fake.inject(fault)
        reply = await hub.reply(conv_id, "eventually")
        await hub.drain(timeout=20)
        assert [m for m, _ in fake.requests].count("POST") == 2
        assert [s.text for s in fake.sent] == ["eventually"]
        assert (await hub.message(reply.id)).status is DeliveryStatus.SENT


async def test_two_pages_keep_separate_threads(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_hub(fake, clock) as hub:
        await deliver(
            hub,
            fake,
            [
                fake.message_event(PAGE, "6600000000000001", "to page one"),
                fake.message_event(AGENT_PAGE, "6600000000000002", "to page two"),
            ],
        )
        convs = await hub.conversations()
        assert len(convs) == 2
        accounts = sorted(t.account for c in convs for t in c.threads)
        assert accounts == [PAGE, AGENT_PAGE]
        for conv in convs:
            await hub.reply(conv.id, "thanks")
        await hub.drain()
    assert sorted((s.page_id, s.recipient) for s in fake.sent) == [
        (PAGE, "6600000000000001"),
        (AGENT_PAGE, "6600000000000002"),
    ]


async def test_window_refusal_offers_the_customers_other_channel(fake: FakeGraphAPI, clock: Clock) -> None:
    loopback = FakeLoopback(clock=clock)
    hub = Hub(
        store=MemoryStore(),
        channels={
            "messenger": fake.channel_config(),
            "loopback": {"token": loopback.token, "webhook_secret": loopback.webhook_secret},
        },
        plugins=[_plugin, LoopbackPlugin()],
        load_entry_points=False,
        transport=routing_transport(fake, loopback),
        clock=clock,
    )
    async with hub:
        await deliver(hub, fake, [fake.message_event(PAGE, PSID, "hi")])
        conv_id = await conversation_of(hub)
        await hub.continue_on(conv_id, "loopback", "customer-1")
        clock.advance(timedelta(days=2))
        with pytest.raises(WindowClosedError) as info:
            await hub.reply(conv_id, "are you still there?", channel="messenger")
        assert ("use_channel", "loopback") in [(r.kind, r.channel) for r in info.value.remedies]
        await hub.reply(conv_id, "are you still there?", channel="loopback")
        await hub.drain()
    assert [item["text"] for item in loopback.sent] == ["are you still there?"]
    assert fake.sent == []


async def test_oversized_attachments_are_refused_when_replying(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_hub(fake, clock) as hub:
        await deliver(hub, fake, [fake.message_event(PAGE, PSID, "send me the manual")])
        conv_id = await conversation_of(hub)
        for part in (
            MediaPart(
                url="https://files.example/manual.pdf", content_type="application/pdf", size=26 * 2**20
            ),
            MediaPart(url="https://files.example/photo.png", content_type="image/png", size=9 * 2**20),
        ):
            with pytest.raises(ContentError):
                await hub.reply(conv_id, part)
        fake.add_file("https://files.example/small.pdf", 2**20, "application/pdf")
        await hub.reply(
            conv_id,
            [
                TextPart(text="Here it is"),
                MediaPart(url="https://files.example/small.pdf", content_type="application/pdf"),
            ],
        )
        await hub.drain()
    kinds = [("attachment" in s.message, s.text) for s in fake.sent]
    assert sorted(kinds, key=str) == sorted([(True, None), (False, "Here it is")], key=str)


async def test_lost_answer_becomes_unknown_and_the_echo_settles_it(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_hub(fake, clock) as hub:
        await deliver(hub, fake, [fake.message_event(PAGE, PSID, "hi")])
        conv_id = await conversation_of(hub)
        fake.inject(Fault(kind="timeout_after"))
        reply = await hub.reply(conv_id, "did this arrive?")
        await hub.drain()
        assert len(fake.sent) == 1, "a send whose outcome is unknown must not be resent blindly"
        assert (await hub.message(reply.id)).status is DeliveryStatus.UNKNOWN
        await deliver(hub, fake, fake.take_pending())
        settled = await hub.message(reply.id)
    assert settled.status is DeliveryStatus.SENT
    assert fake.sent[0].mid in settled.provider_ids


async def test_hub_mark_read_marks_the_thread_seen_by_the_page(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_hub(fake, clock) as hub:
        assert await deliver(hub, fake, [fake.message_event(PAGE, PSID, "anyone there?")]) == 200
        conversation_id = await conversation_of(hub)
        [marked] = await hub.mark_read(conversation_id)
        assert marked.text == "anyone there?"
    assert fake.sender_actions == [(PAGE, PSID, "mark_seen")]
