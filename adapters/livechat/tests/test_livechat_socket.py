"""The live-chat socket: visitor messages reach the Hub once, agent replies reach the visitor."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import pytest
from livechat_support import IDENTITY_SECRET, SITE

from omnilink import (
    Contact,
    DeliveryStatus,
    Direction,
    Handle,
    HtmlPart,
    Hub,
    MessageReceived,
    ThreadRef,
    Typing,
)
from omnilink_livechat import LivechatChannel, OfflineEmail, identity_hash
from omnilink_livechat.testing import ScriptedVisitor, SocketClosed

pytestmark = pytest.mark.anyio


async def eventually(check: Callable[[], Awaitable[bool]], seconds: float = 5.0) -> None:
    """Poll ``check`` until it holds (the store has no change notification to wait on)."""
    with anyio.fail_after(seconds):
        while not await check():  # noqa: ASYNC110
            await anyio.sleep(0.01)


def session_id(visitor: ScriptedVisitor) -> str:
    assert visitor.session is not None
    return visitor.session.partition(".")[0]


async def test_visitor_message_is_stored_in_the_sessions_conversation(hub: Hub, app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE, name="Ann") as visitor:
        server_id = await visitor.say("Where is my order?")
    message = await hub.message(server_id)
    assert message.text == "Where is my order?"
    assert message.direction is Direction.INBOUND
    assert message.provider_message_id.endswith(":" + message.provider_message_id.partition(":")[2])
    conversation = await hub.conversation(message.conversation_id)
    assert ThreadRef(channel="livechat", account=SITE, key=session_id(visitor)) in conversation.threads
    contact = await hub.contact(message.contact_id)
    assert Handle(channel="livechat", address=visitor.visitor_id or "") in contact.handles
    assert contact.display_name == "Ann"


async def test_resent_client_id_is_stored_once_and_acked_with_the_same_id(hub: Hub, app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        first = await visitor.say("hello", client_id="retry-1")
        second = await visitor.say("hello", client_id="retry-1")
    assert first == second
    message = await hub.message(first)
    assert len(await hub.messages(message.conversation_id)) == 1


async def test_agent_reply_reaches_the_socket_and_is_marked_delivered(hub: Hub, app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        server_id = await visitor.say("hi")
        conversation_id = (await hub.message(server_id)).conversation_id
        reply = await hub.reply(conversation_id, "Hello! How can I help?")
        pushed = await visitor.agent_message()
        assert pushed["text"] == "Hello! How can I help?"
        assert pushed["id"] == reply.id

        async def delivered() -> bool:
            return (await hub.message(reply.id)).status is DeliveryStatus.DELIVERED

        await eventually(delivered)


async def test_reply_to_an_offline_visitor_arrives_on_resync(hub: Hub, app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        server_id = await visitor.say("are you there?")
    conversation_id = (await hub.message(server_id)).conversation_id
    reply = await hub.reply(conversation_id, "Yes, sorry for the wait.")
    await hub.drain(timeout=5)
    assert (await hub.message(reply.id)).status is DeliveryStatus.SENT
    async with ScriptedVisitor.in_process(
        app, SITE, token=visitor.token, session=visitor.session, since=server_id
    ) as again:
        history = await again.history()
        assert [m["text"] for m in history] == ["Yes, sorry for the wait."]
        assert again.visitor_id == visitor.visitor_id

        async def delivered() -> bool:
            return (await hub.message(reply.id)).status is DeliveryStatus.DELIVERED

        await eventually(delivered)


async def test_reconnect_without_since_gets_the_whole_session(hub: Hub, app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        await visitor.say("one")
        await visitor.say("two")
    async with ScriptedVisitor.in_process(app, SITE, token=visitor.token, session=visitor.session) as again:
        history = await again.history()
    assert [(m["from"], m["text"]) for m in history] == [("visitor", "one"), ("visitor", "two")]
    assert history[0]["client_id"] is not None


async def test_typing_is_published_and_shown_to_other_tabs_but_not_the_typer(hub: Hub, app: Any) -> None:
    async with (
        ScriptedVisitor.in_process(app, SITE) as first,
        ScriptedVisitor.in_process(app, SITE, token=first.token, session=first.session) as second,
        hub.subscribe() as events,
    ):
        await first.typing(True)
        shown = await second.next_frame("typing")
        assert shown == {"type": "typing", "from": "visitor", "on": True}
        with anyio.fail_after(5):
            event = await events.receive()
        assert isinstance(event, Typing)
        assert event.on
        assert event.thread_key == session_id(first)
        await first.ping()
        assert not [f for f in first.frames if f["type"] == "typing"]


async def test_agent_typing_is_pushed_to_the_visitor(hub: Hub, app: Any, channel: LivechatChannel) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        await channel.send_typing(SITE, session_id(visitor), True)
        assert await visitor.next_frame("typing") == {"type": "typing", "from": "agent", "on": True}


async def test_visitor_read_moves_agent_messages_to_read(hub: Hub, app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        server_id = await visitor.say("hi")
        conversation_id = (await hub.message(server_id)).conversation_id
        reply = await hub.reply(conversation_id, "Hello")
        pushed = await visitor.agent_message()
        await visitor.read(pushed["id"])

        async def read() -> bool:
            return (await hub.message(reply.id)).status is DeliveryStatus.READ

        await eventually(read)


async def test_verified_identity_gives_the_contact_its_email_handle(hub: Hub, app: Any) -> None:
    digest = identity_hash(IDENTITY_SECRET, "Ann@Example.com")
    async with ScriptedVisitor.in_process(
        app, SITE, identity="Ann@Example.com", identity_hash=digest
    ) as visitor:
        server_id = await visitor.say("hi, it's Ann")
    contact: Contact = await hub.contact((await hub.message(server_id)).contact_id)
    assert Handle(channel="email", address="ann@example.com") in contact.handles


async def test_wrong_identity_hash_closes_the_socket(app: Any) -> None:
    digest = identity_hash("not-the-sites-secret", "ann@example.com")
    with pytest.raises(SocketClosed) as closed:
        async with ScriptedVisitor.in_process(app, SITE, identity="ann@example.com", identity_hash=digest):
            pass
    assert closed.value.code == 4401


async def test_forged_token_closes_the_socket(app: Any) -> None:
    with pytest.raises(SocketClosed) as closed:
        async with ScriptedVisitor.in_process(app, SITE, token="v1.vis_abcdefghijklmnop.1700000000.forged"):
            pass
    assert closed.value.code == 4401


async def test_another_visitors_session_token_is_not_honoured(app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as alice:
        await alice.say("private")
    async with ScriptedVisitor.in_process(app, SITE, session=alice.session) as mallory:
        history = await mallory.history()
        assert history == []
        assert mallory.session != alice.session


async def test_unknown_site_is_refused(app: Any) -> None:
    with pytest.raises(SocketClosed) as closed:
        async with ScriptedVisitor.in_process(app, "other-site"):
            pass
    assert closed.value.code == 4404


async def test_socket_from_an_unlisted_origin_is_refused(app: Any) -> None:
    with pytest.raises(SocketClosed):
        async with ScriptedVisitor.in_process(app, SITE, origin="https://evil.example"):
            pass
    async with ScriptedVisitor.in_process(app, SITE, origin="https://shop.example") as visitor:
        assert visitor.visitor_id is not None


async def test_oversized_frame_closes_the_socket(app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        await visitor.send_raw('{"type":"ping","pad":"' + "x" * 20_000 + '"}')
        error = await visitor.next_frame("error")
        assert error["code"] == "frame_too_big"
        with pytest.raises(SocketClosed) as closed:
            await visitor.next_frame("never")
        assert closed.value.code == 1009


@pytest.mark.parametrize("livechat_settings", [{"messages_per_minute": 5}])
async def test_message_flood_is_rate_limited_with_retry_after(app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        for i in range(5):
            await visitor.say(f"message {i}")
        with pytest.raises(RuntimeError, match="rate_limited"):
            await visitor.say("one too many")


async def test_too_long_message_is_refused_and_not_stored(hub: Hub, app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        with pytest.raises(RuntimeError, match="too_long"):
            await visitor.say("x" * 4001)
    assert await hub.conversations() == []


async def test_html_reply_is_pushed_as_plain_text(hub: Hub, app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        server_id = await visitor.say("hi")
        conversation_id = (await hub.message(server_id)).conversation_id
        await hub.reply(conversation_id, HtmlPart(html="<p>Hi <b>there</b></p><script>alert(1)</script>"))
        pushed = await visitor.agent_message()
    assert pushed["text"] == "Hi there"
    assert "<" not in str(pushed["parts"])


async def test_agent_availability_is_pushed_and_the_offline_form_continues_on_email(
    hub: Hub, app: Any, channel: LivechatChannel
) -> None:
    handed_over: list[OfflineEmail] = []

    async def continue_on_email(request: OfflineEmail) -> None:
        handed_over.append(request)

    channel.on_offline_email = continue_on_email
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        assert visitor.agents_available is True
        channel.set_agents_available(False)
        assert await visitor.next_frame("agents") == {"type": "agents", "available": False}
        answer = await visitor.leave_email("Ann@Example.com", text="Please email me about my order")
    assert answer["type"] == "offline_email_ok"
    conversation_id = answer["conversation"]
    assert [(h.conversation_id, h.address) for h in handed_over] == [(conversation_id, "ann@example.com")]
    assert handed_over[0].transcript.endswith("Visitor: Please email me about my order")
    assert [m.text for m in await hub.messages(conversation_id)] == ["Please email me about my order"]


async def test_offline_form_with_a_bad_address_is_refused(app: Any, channel: LivechatChannel) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        answer = await visitor.leave_email("not an address")
    assert answer["code"] == "bad_email"


async def test_closed_session_is_not_resumed(hub: Hub, app: Any, channel: LivechatChannel) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        await visitor.say("bye")
        await channel.close_session(session_id(visitor))
        assert (await visitor.next_frame("session_closed"))["type"] == "session_closed"
    async with ScriptedVisitor.in_process(app, SITE, token=visitor.token, session=visitor.session) as again:
        assert again.session != visitor.session
        assert again.visitor_id == visitor.visitor_id


async def test_presence_follows_the_socket(app: Any, channel: LivechatChannel) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        assert channel.is_online(session_id(visitor))
        pong = await visitor.ping()
        assert pong["agents_available"] is True

    async def offline() -> bool:
        return not channel.is_online(session_id(visitor))

    await eventually(offline)


@pytest.mark.parametrize("livechat_settings", [{"messages_per_minute": 120}])
async def test_every_message_reaches_the_hub_once_when_sends_are_retried_after_a_drop(
    hub: Hub, app: Any
) -> None:
    client_ids = [f"c{i}" for i in range(10)]
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        for client_id in client_ids[:6]:
            await visitor.send_message(f"text {client_id}", client_id=client_id)
        # The socket drops before every ack arrived.
    async with ScriptedVisitor.in_process(app, SITE, token=visitor.token, session=visitor.session) as again:
        ids = [await again.say(f"text {client_id}", client_id=client_id) for client_id in client_ids]
    conversation_id = (await hub.message(ids[0])).conversation_id
    texts = [m.text for m in await hub.messages(conversation_id)]
    assert texts == [f"text {client_id}" for client_id in client_ids]


async def test_new_message_event_names_the_session_thread(hub: Hub, app: Any) -> None:
    async with hub.subscribe() as events, ScriptedVisitor.in_process(app, SITE) as visitor:
        await visitor.say("hello")
        with anyio.fail_after(5):
            event = await events.receive()
    assert isinstance(event, MessageReceived)
    assert event.message.thread_key == session_id(visitor)
    assert event.new_conversation


async def test_disconnected_session_closes_its_sockets_and_the_visitor_resyncs(
    hub: Hub, app: Any, channel: LivechatChannel
) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        first = await visitor.say("before")
        assert channel.disconnect_session(session_id(visitor)) == 1
        with pytest.raises(SocketClosed) as closed:
            await visitor.next_frame("never")
        assert closed.value.code == 1001
    conversation_id = (await hub.message(first)).conversation_id
    reply = await hub.reply(conversation_id, "while you were away")
    await hub.drain(timeout=5)
    async with ScriptedVisitor.in_process(
        app, SITE, token=visitor.token, session=visitor.session, since=first
    ) as again:
        assert [m["id"] for m in await again.history()] == [reply.id]


async def test_agent_read_watermark_is_pushed_to_the_visitor(
    hub: Hub, app: Any, channel: LivechatChannel
) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        server_id = await visitor.say("did you see this?")
        await channel.mark_read_by_agent(session_id(visitor), server_id)
        assert await visitor.next_frame("read") == {"type": "read", "from": "agent", "id": server_id}


async def test_hub_mark_read_shows_read_up_to_the_newest_visitor_message(hub: Hub, app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        await visitor.say("first")
        newest = await visitor.say("second")
        conversation_id = (await hub.message(newest)).conversation_id
        marked = await hub.mark_read(conversation_id)
        assert [m.id for m in marked] == [newest]
        assert await visitor.next_frame("read") == {"type": "read", "from": "agent", "id": newest}


@pytest.mark.parametrize("livechat_settings", [{"typing_interval_seconds": 60}])
async def test_typing_changes_are_rate_limited(hub: Hub, app: Any) -> None:
    async with hub.subscribe() as events, ScriptedVisitor.in_process(app, SITE) as visitor:
        for on in (True, False, True, False, True):
            await visitor.typing(on)
        await visitor.ping()
        seen = []
        while True:
            with anyio.move_on_after(0.2):
                seen.append(await events.receive())
                continue
            break
    assert [e.on for e in seen if isinstance(e, Typing)] == [True, False]


async def test_visitor_message_with_html_is_stored_as_plain_text(hub: Hub, app: Any) -> None:
    async with ScriptedVisitor.in_process(app, SITE) as visitor:
        server_id = await visitor.say("<img src=x onerror=alert(1)>")
    message = await hub.message(server_id)
    assert [part.kind for part in message.parts] == ["text"]
    assert message.text == "<img src=x onerror=alert(1)>"
