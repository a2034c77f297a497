"""The Hub's receive, threading, send and delivery behaviour, on every store and backend."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import anyio
import httpx
import pytest

from omnilink import (
    AdapterHealth,
    AddressError,
    Author,
    AuthorKind,
    BlockingHub,
    ChannelSpec,
    ConfigurationError,
    ConversationStatus,
    DeliveryStatus,
    DeliveryUpdated,
    Direction,
    Hub,
    HubSettings,
    InboundMessage,
    LifecycleError,
    LinkStrength,
    MemoryStore,
    MessageReceived,
    NotFoundError,
    OptedOutError,
    OutboundMessage,
    PolicyRefusal,
    QuickRepliesPart,
    QuickReply,
    Remedy,
    SendContext,
    SendResult,
    StaleDeliveryUpdate,
    TextPart,
    hookimpl,
)
from omnilink.testing import FakeLoopback, Fault, LoopbackChannel, routing_transport
from omnilink.testing._loopback import LOOPBACK_SPEC

from .conftest import Clock, FakeChat, TwoChannels


async def customer_writes(
    hub: Hub, fake: FakeLoopback, sender: str, text: str, mid: str | None = None
) -> str:
    channel = "chat" if isinstance(fake, FakeChat) else "loopback"
    url = f"https://helpdesk.example/webhooks/{channel}"
    response = await hub.handle_webhook(
        channel, fake.webhook([fake.message_event(sender, text, mid)], url=url)
    )
    assert response.status == 200, response.body
    event_id = mid
    for conv in await hub.conversations(limit=1000):
        for message in await hub.messages(conv.id):
            if message.text == text and (event_id is None or message.provider_message_id == event_id):
                return conv.id
    raise AssertionError("message not stored")


# --------------------------------------------------------------------------- receive


@pytest.mark.anyio
async def test_every_event_of_a_batch_is_stored_once(hub: Hub, fakes: tuple[FakeLoopback, FakeChat]) -> None:
    fake = fakes[0]
    events = [fake.message_event(f"c{i}", f"hello {i}", f"m{i}") for i in range(5)]
    request = fake.webhook(events)
    for _ in range(3):
        assert (await hub.handle_webhook("loopback", request)).status == 200
    conversations = await hub.conversations()
    assert len(conversations) == 5
    texts = []
    for conv in conversations:
        texts.extend(m.text for m in await hub.messages(conv.id))
    assert sorted(texts) == [f"hello {i}" for i in range(5)]


@pytest.mark.anyio
async def test_tampered_webhook_gets_403_and_stores_nothing(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    fake = fakes[0]
    request = fake.webhook([fake.message_event("ana", "hi")], secret="wrong")
    response = await hub.handle_webhook("loopback", request)
    assert response.status == 403
    assert await hub.conversations() == []


@pytest.mark.anyio
async def test_malformed_payload_gets_400_and_unknown_channel_404(hub: Hub) -> None:
    from omnilink import WebhookRequest
    from omnilink.testing import sign

    body = b'{"events": [{"type": "message"}]}'
    bad = WebhookRequest.build(
        "POST", "https://h/webhooks/loopback", {"x-loopback-signature": sign("whsec", body)}, body
    )
    assert (await hub.handle_webhook("loopback", bad)).status == 400
    assert (await hub.handle_webhook("nope", bad)).status == 404
    assert await hub.conversations() == []


@pytest.mark.anyio
async def test_same_thread_joins_conversation_and_records_rule(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    first = await customer_writes(hub, fakes[0], "ana", "my order is late")
    second = await customer_writes(hub, fakes[0], "ana", "any news?")
    assert first == second
    messages = await hub.messages(first)
    assert [m.threading.rule for m in messages if m.threading] == ["new_conversation", "thread_ref"]
    conv = await hub.conversation(first)
    assert [link.rule for link in conv.thread_links] == ["new_conversation"]


@pytest.mark.anyio
async def test_linked_contact_on_another_channel_joins_open_conversation_within_window(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat], clock: Clock
) -> None:
    sms, chat = fakes
    conv_id = await customer_writes(hub, sms, "ana", "order 1234 is late")
    chat_conv = await customer_writes(hub, chat, "ana-web", "it's me from SMS")
    assert chat_conv != conv_id, "unlinked contacts never share a conversation"
    ana = (await hub.conversation(conv_id)).contact_id
    web = (await hub.conversation(chat_conv)).contact_id
    await hub.set_status(chat_conv, ConversationStatus.CLOSED)
    link = await hub.link_contacts(ana, web, reason="agent.confirmed", evidence={"agent": "bob"})
    assert link is not None
    assert link.applied
    clock.advance(hours=2)
    joined = await customer_writes(hub, chat, "ana-web", "still waiting for 1234")
    assert joined == conv_id
    message = (await hub.messages(conv_id))[-1]
    assert message.threading is not None
    assert message.threading.rule == "continuity_window"


@pytest.mark.anyio
async def test_continuity_ends_after_the_window(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat], clock: Clock
) -> None:
    async with make_hub() as hub:
        sms, chat = fakes
        conv_id = await customer_writes(hub, sms, "ana", "first issue")
        other = await customer_writes(hub, chat, "ana-web", "hello")
        await hub.set_status(other, ConversationStatus.CLOSED)
        ana = (await hub.conversation(conv_id)).contact_id
        await hub.link_contacts(ana, (await hub.conversation(other)).contact_id, reason="agent.confirmed")
        clock.advance(hours=25)
        later = await customer_writes(hub, chat, "ana-web", "a new question")
        assert later not in (conv_id, other)


@pytest.mark.anyio
async def test_weak_link_is_recorded_but_never_applied_until_confirmed(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    sms, chat = fakes
    a = await customer_writes(hub, sms, "ana", "hi")
    b = await customer_writes(hub, chat, "ana2", "hi again")
    ca, cb = (await hub.conversation(a)).contact_id, (await hub.conversation(b)).contact_id
    await hub.set_status(b, ConversationStatus.CLOSED)
    link = await hub.link_contacts(ca, cb, reason="same_name", strength=LinkStrength.WEAK)
    assert link is not None
    assert not link.applied
    separate = await customer_writes(hub, chat, "ana2", "next")
    assert separate != a
    await hub.set_status(separate, ConversationStatus.CLOSED)
    await hub.confirm_link(link.id)
    assert await customer_writes(hub, chat, "ana2", "and now?") == a
    undone = await hub.undo_link(link.id)
    assert undone.undone_at is not None
    assert [lk.id for lk in await hub.contact_links(ca)] == [link.id]


@pytest.mark.anyio
async def test_continue_on_hands_over_and_customer_reply_joins(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    sms, chat = fakes
    conv_id = await customer_writes(hub, chat, "visitor-7", "can you call me back?")
    conv = await hub.continue_on(conv_id, "loopback", "ana", reason="visitor left their number")
    assert conv.last_channel == "loopback"
    assert conv.thread_links[-1].rule == "continue_on"
    await hub.reply(conv_id, "We continue here by SMS.")
    await hub.drain()
    assert [s["to"] for s in sms.sent] == ["ana"]
    assert await customer_writes(hub, sms, "ana", "thanks!") == conv_id


@pytest.mark.anyio
async def test_echo_of_our_send_is_not_stored_again(hub: Hub, fakes: tuple[FakeLoopback, FakeChat]) -> None:
    conv_id = await customer_writes(hub, fakes[0], "ana", "hi")
    reply = await hub.reply(conv_id, "hello back")
    await hub.drain()
    sent = await hub.message(reply.id)
    assert sent.provider_message_id
    echo = InboundMessage(
        account="biz",
        thread_key="ana",
        sender="biz",
        provider_message_id=sent.provider_message_id,
        parts=(TextPart(text="hello back"),),
        sent_at=sent.sent_at,
        echo=True,
        echo_of=reply.id,
    )
    other_tool = echo.model_copy(update={"provider_message_id": "inbox-1", "echo_of": None})
    await hub.ingest("loopback", [echo, echo, other_tool])
    messages = await hub.messages(conv_id)
    assert [m.direction for m in messages] == [Direction.INBOUND, Direction.OUTBOUND, Direction.OUTBOUND]
    assert messages[-1].author.kind is AuthorKind.BUSINESS


# --------------------------------------------------------------------------- send


@pytest.mark.anyio
async def test_reply_is_planned_split_and_sent_in_order(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    conv_id = await customer_writes(hub, fakes[0], "ana", "details please")
    text = " ".join(f"w{i}" for i in range(120))
    reply = await hub.reply(
        conv_id,
        [
            TextPart(text=text),
            QuickRepliesPart(
                text="Did that help?",
                replies=(QuickReply(title="Yes", payload="y"), QuickReply(title="No", payload="n")),
            ),
        ],
    )
    await hub.drain()
    sent = [s["text"] for s in fakes[0].sent]
    assert all(len(s) <= 160 for s in sent)
    assert "".join(sent).replace(" ", "").startswith(text.replace(" ", ""))
    assert "1. Yes" in sent[-1]
    stored = await hub.message(reply.id)
    assert stored.status is DeliveryStatus.SENT
    assert len(stored.provider_ids) == len(sent)
    assert any(d.startswith("split") for d in stored.degradations)
    assert any(d.startswith("quick_replies_to_text") for d in stored.degradations)


@pytest.mark.anyio
async def test_idempotency_key_sends_once(hub: Hub, fakes: tuple[FakeLoopback, FakeChat]) -> None:
    conv_id = await customer_writes(hub, fakes[0], "ana", "hi")
    first = await hub.reply(conv_id, "once", idempotency_key="k1")
    second = await hub.reply(conv_id, "once", idempotency_key="k1")
    await hub.drain()
    assert first.id == second.id
    assert [s["text"] for s in fakes[0].sent] == ["once"]


@pytest.mark.anyio
async def test_retryable_errors_are_retried_honouring_retry_after(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    conv_id = await customer_writes(hub, fakes[0], "ana", "hi")
    fakes[0].inject(Fault(status=429, headers={"retry-after": "0.2"}, endpoint="messages"))
    fakes[0].inject(Fault(status=503, endpoint="messages"))
    started = anyio.current_time()
    reply = await hub.reply(conv_id, "eventually")
    await hub.drain(timeout=15)
    assert anyio.current_time() - started >= 0.2
    assert (await hub.message(reply.id)).status is DeliveryStatus.SENT
    assert [s["text"] for s in fakes[0].sent] == ["eventually"]


@pytest.mark.anyio
async def test_permanent_error_fails_the_message(hub: Hub, fakes: tuple[FakeLoopback, FakeChat]) -> None:
    conv_id = await customer_writes(hub, fakes[0], "ana", "hi")
    fakes[0].opted_out.add("ana")
    async with hub.subscribe() as events:
        reply = await hub.reply(conv_id, "blocked")
        await hub.drain()
        failed = await hub.message(reply.id)
        assert failed.status is DeliveryStatus.FAILED
        assert "opted out" in (failed.error or "")
        kinds = []
        with anyio.move_on_after(1):
            while "delivery_updated" not in kinds:
                kinds.append((await events.receive()).kind)
        assert "delivery_updated" in kinds


@pytest.mark.anyio
async def test_credentials_error_pauses_channel_and_emits_health(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    async with make_hub(
        settings=HubSettings(backoff_base=0.01, poll_interval=0.05, credentials_pause=timedelta(hours=1))
    ) as hub:
        conv_id = await customer_writes(hub, fakes[0], "ana", "hi")
        fakes[0].token = "rotated"
        async with hub.subscribe() as events:
            reply = await hub.reply(conv_id, "paused")
            with anyio.fail_after(5):
                while True:
                    event = await events.receive()
                    if isinstance(event, AdapterHealth):
                        break
        assert event.state == "credentials_invalid"
        assert (await hub.message(reply.id)).status is DeliveryStatus.QUEUED
        fakes[0].token = "tok"
        hub.resume("loopback")
        # The row waits for its pause to end; resume makes it due again only when re-queued.
        assert fakes[0].sent == []


@pytest.mark.anyio
async def test_lost_answer_is_reconciled_without_resending(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    conv_id = await customer_writes(hub, fakes[0], "ana", "hi")
    fakes[0].inject(Fault(kind="timeout_after"))
    reply = await hub.reply(conv_id, "exactly once")
    await hub.drain()
    assert [s["text"] for s in fakes[0].sent] == ["exactly once"]
    assert (await hub.message(reply.id)).status is DeliveryStatus.SENT


@pytest.mark.anyio
async def test_opted_out_contact_is_refused_before_any_request_with_remedies(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    from omnilink import InboundOptChange

    conv_id = await customer_writes(hub, fakes[0], "ana", "STOP")
    await hub.continue_on(conv_id, "chat", "ana-web")
    await hub.ingest(
        "loopback", [InboundOptChange(account="biz", address="ana", opted_out=True, keyword="STOP")]
    )
    with pytest.raises(OptedOutError) as refused:
        await hub.reply(conv_id, "are you there?", channel="loopback")
    assert any(r.channel == "chat" for r in refused.value.remedies)
    assert fakes[0].sent == []
    await hub.ingest(
        "loopback", [InboundOptChange(account="biz", address="ana", opted_out=False, keyword="START")]
    )
    await hub.reply(conv_id, "welcome back", channel="loopback")


@pytest.mark.anyio
async def test_plugin_send_policy_refuses_with_remedy(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    class NoWeekendBot:
        @hookimpl
        def omnilink_send_policy(self, context: SendContext) -> PolicyRefusal | None:
            if context.author.kind is AuthorKind.AUTOMATION:
                return PolicyRefusal(
                    "bots may not write",
                    channel=context.thread.channel,
                    remedies=[Remedy("use_agent", "ask an agent")],
                )
            return None

    hub = make_hub()
    hub._plugins.append(NoWeekendBot())
    async with hub:
        conv_id = await customer_writes(hub, fakes[0], "ana", "hi")
        with pytest.raises(PolicyRefusal) as refused:
            await hub.reply(conv_id, "auto", automatic=True)
        assert refused.value.remedies[0].kind == "use_agent"
        await hub.reply(conv_id, "human", author=Author(kind=AuthorKind.AGENT, id="bob"))


# --------------------------------------------------------------------------- delivery


@pytest.mark.anyio
async def test_delivery_status_only_moves_forward_and_stale_updates_are_recorded(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    fake = fakes[0]
    conv_id = await customer_writes(hub, fake, "ana", "hi")
    reply = await hub.reply(conv_id, "status")
    await hub.drain()
    pid = (await hub.message(reply.id)).provider_message_id
    assert pid
    async with hub.subscribe() as events:
        for status in ("read", "delivered", "sent"):
            await hub.handle_webhook("loopback", fake.webhook([fake.status_event(pid, status)]))
        seen = [await events.receive() for _ in range(3)]
    assert (await hub.message(reply.id)).status is DeliveryStatus.READ
    assert isinstance(seen[0], DeliveryUpdated)
    assert all(isinstance(e, StaleDeliveryUpdate) for e in seen[1:])


@pytest.mark.anyio
async def test_receipt_before_send_result_is_applied_later(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    fake = fakes[0]
    conv_id = await customer_writes(hub, fake, "ana", "hi")
    early = fake.webhook([fake.status_event("lb_2", "delivered")])
    assert (await hub.handle_webhook("loopback", early)).status == 200
    reply = await hub.reply(conv_id, "racing the receipt")
    await hub.drain()
    stored = await hub.message(reply.id)
    assert stored.provider_message_id == "lb_2"
    assert stored.status is DeliveryStatus.DELIVERED


# --------------------------------------------------------------------------- metrics and API


@pytest.mark.anyio
async def test_metrics_report_waiting_conversations_and_response_times(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat], clock: Clock
) -> None:
    answered = await customer_writes(hub, fakes[0], "ana", "hi")
    await customer_writes(hub, fakes[1], "ben", "hello?")
    clock.advance(minutes=5)
    await hub.reply(answered, "hi Ana")
    clock.advance(minutes=30)
    waiting = await hub.awaiting_reply(older_than=timedelta(minutes=10))
    assert list(waiting) == ["chat"]
    stats = await hub.response_stats()
    assert stats["loopback"].first_response_median == 300.0
    assert stats["chat"].first_response_median is None
    conv = await hub.conversation(answered)
    assert conv.first_response_at is not None
    assert conv.first_inbound_at is not None
    assert conv.status is ConversationStatus.PENDING


@pytest.mark.anyio
async def test_typed_errors_for_bad_calls(make_hub: Callable[..., Hub]) -> None:
    hub = make_hub()
    with pytest.raises(LifecycleError):
        await hub.reply("cnv_x", "too early")
    async with hub:
        with pytest.raises(NotFoundError):
            await hub.conversation("cnv_missing")
        with pytest.raises(ConfigurationError):
            hub.channel("fax")
        with pytest.raises(AddressError):
            await hub.start_conversation("loopback", "not valid!", "hi")
        with pytest.raises(LifecycleError):
            await hub.__aenter__()
    with pytest.raises(LifecycleError):
        await hub.conversations()


@pytest.mark.anyio
async def test_unknown_channel_config_is_a_configuration_error() -> None:
    hub = Hub(store=MemoryStore(), channels={"fax": {}}, plugins=[TwoChannels()], load_entry_points=False)
    with pytest.raises(ConfigurationError, match="fax"):
        async with hub:
            pass


@pytest.mark.anyio
async def test_asgi_app_serves_webhooks(hub: Hub, fakes: tuple[FakeLoopback, FakeChat]) -> None:
    fake = fakes[0]
    request = fake.webhook([fake.message_event("ana", "via http")])
    transport = httpx.ASGITransport(app=hub.asgi_app())
    async with httpx.AsyncClient(transport=transport, base_url="https://helpdesk.example") as client:
        response = await client.post(
            "/webhooks/loopback", content=request.body, headers=dict(request.headers)
        )
        assert response.status_code == 200
        assert (await client.get("/healthz")).text == "ok"
        bad = await client.post(
            "/webhooks/loopback", content=request.body, headers={"x-loopback-signature": "0"}
        )
        assert bad.status_code == 403
    assert len(await hub.conversations()) == 1


@pytest.mark.anyio
async def test_start_conversation_writes_first(hub: Hub, fakes: tuple[FakeLoopback, FakeChat]) -> None:
    message = await hub.start_conversation("loopback", "Zoe", "Your parcel is ready", subject="Parcel")
    await hub.drain()
    assert fakes[0].sent[0]["to"] == "zoe"
    conv = await hub.conversation(message.conversation_id)
    assert conv.thread_links[0].rule == "start_conversation"
    assert await customer_writes(hub, fakes[0], "zoe", "great") == conv.id


@pytest.mark.anyio
async def test_subscribers_receive_message_events(hub: Hub, fakes: tuple[FakeLoopback, FakeChat]) -> None:
    async with hub.subscribe() as events:
        await customer_writes(hub, fakes[0], "ana", "subscribe me")
        event = await events.receive()
    assert isinstance(event, MessageReceived)
    assert event.new_conversation
    assert event.message.text == "subscribe me"


def test_blocking_facade_from_sync_code(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    fake = fakes[0]
    with BlockingHub(make_hub()) as hub:
        assert hub.handle_webhook("loopback", fake.webhook([fake.message_event("ana", "sync")])).status == 200
        [conv] = hub.conversations()
        hub.reply(conv.id, "from Flask")
        hub.drain()
        assert [m.text for m in hub.messages(conv.id)] == ["sync", "from Flask"]
        assert hub.transcript(conv.id).splitlines()[1].endswith("Agent via loopback: from Flask")
        assert [m.text for m in hub.mark_read(conv.id)] == ["sync"]
    assert fake.sent[0]["text"] == "from Flask"


@pytest.mark.anyio
async def test_timeout_before_the_request_is_retried_and_sent_once(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    conv_id = await customer_writes(hub, fakes[0], "ana", "hi")
    fakes[0].inject(Fault(kind="timeout_before"))
    reply = await hub.reply(conv_id, "second try")
    await hub.drain()
    assert [s["text"] for s in fakes[0].sent] == ["second try"]
    assert (await hub.message(reply.id)).status is DeliveryStatus.SENT


class CrashingChannel(LoopbackChannel):
    """A channel with a bug: its send raises something that is not a SendError."""

    async def send(self, outbound: OutboundMessage) -> SendResult:
        raise RuntimeError("adapter bug")


class CrashingPlugin:
    @hookimpl
    def omnilink_channels(self) -> list[ChannelSpec]:
        return [replace(LOOPBACK_SPEC, name="crashing", factory=CrashingChannel)]


@pytest.mark.anyio
async def test_a_send_that_keeps_crashing_fails_after_max_attempts(
    fakes: tuple[FakeLoopback, FakeChat],
) -> None:
    fake = fakes[0]
    hub = Hub(
        store=MemoryStore(),
        channels={"crashing": {"token": fake.token, "webhook_secret": fake.webhook_secret}},
        plugins=[CrashingPlugin()],
        load_entry_points=False,
        transport=routing_transport(fake),
        settings=HubSettings(backoff_base=0.001, poll_interval=0.02, max_attempts=3),
    )
    async with hub:
        await hub.handle_webhook("crashing", fake.webhook([fake.message_event("ana", "hi")]))
        [conv] = await hub.conversations()
        reply = await hub.reply(conv.id, "never")
        await hub.drain()
        failed = await hub.message(reply.id)
        assert failed.status is DeliveryStatus.FAILED
        assert "gave up after 3 attempts" in (failed.error or "")


@pytest.mark.anyio
async def test_reply_goes_to_the_thread_the_customer_last_wrote_on(
    hub: Hub, fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    sms, chat = fakes
    conv_id = await customer_writes(hub, chat, "visitor", "hello from the chat")
    await hub.continue_on(conv_id, "loopback", "ana")
    await hub.reply(conv_id, "to sms")
    assert await customer_writes(hub, chat, "visitor", "back on the chat") == conv_id
    await hub.reply(conv_id, "to chat")
    await hub.drain()
    assert [s["text"] for s in sms.sent] == ["to sms"]
    assert [s["text"] for s in chat.sent] == ["to chat"]


@pytest.mark.anyio
async def test_echo_that_outruns_the_send_result_matches_the_queued_send(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    async with make_hub(dispatch=False) as hub:
        conv_id = await customer_writes(hub, fakes[0], "ana", "hi")
        reply = await hub.reply(conv_id, "in flight")
        echo = InboundMessage(
            account="biz",
            thread_key="ana",
            sender="biz",
            provider_message_id="lb_99",
            parts=(TextPart(text="in flight"),),
            sent_at=reply.sent_at,
            echo=True,
        )
        await hub.ingest("loopback", [echo])
        messages = await hub.messages(conv_id)
        assert [m.direction for m in messages] == [Direction.INBOUND, Direction.OUTBOUND]
        matched = await hub.message(reply.id)
        assert matched.provider_ids == ("lb_99",)
        assert matched.status is DeliveryStatus.SENT


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_attempts", 0),
        ("dispatch_batch", 0),
        ("dispatch_concurrency", -1),
        ("backoff_base", 0.0),
        ("poll_interval", -1.0),
        ("http_timeout", 0.0),
        ("lease", timedelta(0)),
    ],
)
def test_settings_out_of_range_are_configuration_errors(field: str, value: object) -> None:
    with pytest.raises(ConfigurationError, match=f"HubSettings.{field}"):
        HubSettings(**{field: value})  # type: ignore[arg-type]


def test_a_lease_shorter_than_a_request_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="omnilink.hub"):
        HubSettings(lease=timedelta(seconds=10), http_timeout=30.0)
    assert "may send it again" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="omnilink.hub"):
        HubSettings()  # 5 min lease, 15 s requests
        HubSettings(lease=timedelta(seconds=2), http_timeout=1.0)
    assert caplog.text == ""
