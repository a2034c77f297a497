from __future__ import annotations

import pytest

from omnilink import DeliveryStatus, Direction, Hub
from omnilink.testing import FakeLoopback


@pytest.mark.anyio
async def test_inbound_then_reply_reaches_the_fake(loopback_hub: Hub, loopback_fake: FakeLoopback) -> None:
    response = await loopback_hub.handle_webhook(
        "loopback", loopback_fake.webhook([loopback_fake.message_event("ana", "hello")])
    )
    assert response.status == 200
    [conv] = await loopback_hub.conversations()
    reply = await loopback_hub.reply(conv.id, "hi Ana")
    await loopback_hub.drain()
    assert [s["text"] for s in loopback_fake.sent] == ["hi Ana"]
    stored = await loopback_hub.message(reply.id)
    assert stored.status is DeliveryStatus.SENT
    messages = await loopback_hub.messages(conv.id)
    assert [m.direction for m in messages] == [Direction.INBOUND, Direction.OUTBOUND]


@pytest.mark.anyio
async def test_standalone_context_keeps_state_and_records_submissions() -> None:
    from omnilink import ChannelContext, InboundTyping

    shared: dict[str, str] = {}
    context = ChannelContext.standalone("loopback", state=shared)
    await context.set_state("cursor", "42")
    assert await context.get_state("cursor") == "42"
    assert shared == {"cursor": "42"}
    item = InboundTyping(account="biz", thread_key="ana", on=True)
    await context.submit([item])
    assert context.submitted == [item]
    await context.delete_state("cursor")
    assert await ChannelContext.standalone("loopback", state=shared).get_state("cursor") is None
