"""What an agent's screen needs from the Hub: read marks per thread, transcripts, conversation pages."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from omnilink import Hub, InvalidInputError, MediaPart, Message, NotFoundError, RetryableSendError, TextPart
from omnilink.testing import FakeLoopback

from .conftest import Clock, FakeChat


async def write(hub: Hub, fake: FakeLoopback, sender: str, text: str, mid: str) -> Message:
    channel = "chat" if isinstance(fake, FakeChat) else "loopback"
    url = f"https://helpdesk.example/webhooks/{channel}"
    response = await hub.handle_webhook(
        channel, fake.webhook([fake.message_event(sender, text, mid)], url=url)
    )
    assert response.status == 200, response.body
    found = await hub.store.run(lambda tx: tx.message_by_provider_id(channel, fake.account, mid))
    assert found is not None
    return found


def record_marks(hub: Hub, *, failing: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """Replace both channels' mark_read with recorders; channels in ``failing`` refuse."""
    marks: list[tuple[str, str]] = []
    for channel in ("loopback", "chat"):

        async def mark_read(message: Message, channel: str = channel) -> None:
            if channel in failing:
                raise RetryableSendError("provider down", channel=channel)
            marks.append((channel, message.id))

        hub.channel(channel).mark_read = mark_read  # type: ignore[method-assign]
    return marks


@pytest.mark.anyio
async def test_every_thread_is_told_its_newest_inbound_message(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    lb, chat = fakes
    async with make_hub() as hub:
        marks = record_marks(hub)
        first = await write(hub, lb, "ana", "hi", "a1")
        newest_lb = await write(hub, lb, "ana", "more", "a2")
        conversation_id = first.conversation_id
        await hub.continue_on(conversation_id, "chat", "ana")
        newest_chat = await write(hub, chat, "ana", "on chat now", "c1")
        assert newest_chat.conversation_id == conversation_id
        reply = await hub.reply(conversation_id, "we read you")  # outbound: never "read"
        await hub.drain()
        marked = await hub.mark_read(conversation_id)
        assert [m.id for m in marked] == [newest_lb.id, newest_chat.id]
        assert marks == [("loopback", newest_lb.id), ("chat", newest_chat.id)]
        assert reply.id not in {m.id for m in marked}

        marks.clear()
        assert [m.id for m in await hub.mark_read(conversation_id, up_to=first.id)] == [first.id]
        assert marks == [("loopback", first.id)]
        with pytest.raises(NotFoundError):
            await hub.mark_read(conversation_id, up_to="msg_elsewhere")


@pytest.mark.anyio
async def test_a_channel_that_refuses_is_skipped_and_deleted_messages_are_never_marked(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    lb, chat = fakes
    async with make_hub() as hub:
        marks = record_marks(hub, failing=("chat",))
        kept = await write(hub, lb, "ana", "kept", "a1")
        await write(hub, lb, "ana", "regretted", "a2")
        await hub.handle_webhook("loopback", lb.webhook([lb.delete_event("a2")]))
        await hub.continue_on(kept.conversation_id, "chat", "ana")
        await write(hub, chat, "ana", "chat", "c1")
        marked = await hub.mark_read(kept.conversation_id)
        assert [m.id for m in marked] == [kept.id]
        assert marks == [("loopback", kept.id)]


@pytest.mark.anyio
async def test_transcript_puts_every_channel_in_one_timeline(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat]
) -> None:
    lb, chat = fakes
    async with make_hub() as hub:
        first = await write(hub, lb, "ana", "my order\nnever came", "a1")
        await write(hub, lb, "ana", "card 4111", "a2")
        await hub.handle_webhook("loopback", lb.webhook([lb.delete_event("a2")]))
        conversation_id = first.conversation_id
        await hub.reply(
            conversation_id,
            [
                TextPart(text="Sorry!"),
                MediaPart(
                    url="https://x.example/l.pdf", content_type="application/pdf", filename="label.pdf"
                ),
            ],
        )
        await hub.drain()
        await hub.continue_on(conversation_id, "chat", "ana")
        await write(hub, chat, "ana", "thanks, got it", "c1")
        text = await hub.transcript(conversation_id)
    lines = text.splitlines()
    assert lines[0].endswith("] ana via loopback: my order")
    assert lines[1] == "  never came"
    assert lines[2].endswith("] ana via loopback: (deleted)")
    assert lines[3].endswith("] Agent via loopback: Sorry!")
    assert lines[4] == "  [label.pdf: https://x.example/l.pdf]"
    assert lines[5].endswith("] ana via chat: thanks, got it")
    assert all(line.startswith(("[20", "  ")) for line in lines)
    assert "4111" not in text


@pytest.mark.anyio
async def test_conversation_pages_cover_everything_once_and_follow_a_customer_across_contacts(
    make_hub: Callable[..., Hub], fakes: tuple[FakeLoopback, FakeChat], clock: Clock
) -> None:
    lb, chat = fakes
    async with make_hub() as hub:
        for i in range(12):
            await write(hub, lb, f"cust-{i}", "hello", f"m{i}")
            clock.advance(seconds=1 if i % 2 else 0)  # ties on purpose
        ana_lb = await write(hub, lb, "ana", "on loopback", "a1")
        ana_chat = await write(hub, chat, "ana-chat", "on chat, another contact", "c1")
        assert ana_lb.contact_id != ana_chat.contact_id
        everything = await hub.conversations(limit=1000)
        seen, cursor = [], None
        while True:
            page = await hub.conversation_page(limit=5, after=cursor)
            seen.extend(page.conversations)
            if page.next is None:
                break
            cursor = page.next
        assert [c.id for c in seen] == [c.id for c in everything]
        assert len(seen) == 14

        mine = await hub.conversation_page(contact_id=ana_lb.contact_id)
        assert [c.id for c in mine.conversations] == [ana_lb.conversation_id]
        await hub.link_contacts(ana_lb.contact_id, ana_chat.contact_id, reason="agent: same person")
        linked = await hub.conversation_page(contact_id=ana_lb.contact_id)
        assert {c.id for c in linked.conversations} == {ana_lb.conversation_id, ana_chat.conversation_id}
        alone = await hub.conversation_page(contact_id=ana_lb.contact_id, linked=False)
        assert [c.id for c in alone.conversations] == [ana_lb.conversation_id]

        for bad in ("nonsense", "2026-01-01T00:00:00~x", "2026-01-01T00:00:00~1"):
            with pytest.raises(InvalidInputError, match="cursor"):
                await hub.conversation_page(after=bad)
        with pytest.raises(InvalidInputError, match="limit"):
            await hub.conversation_page(limit=0)
        with pytest.raises(NotFoundError, match="no contact 'con_typo'"):
            await hub.conversation_page(contact_id="con_typo")
