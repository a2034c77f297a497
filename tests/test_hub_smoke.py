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
