"""The live-chat channel passes the core's adapter conformance suite.

Live chat has no provider webhooks: the visitor HTTP API stands in for them (the Hub serves it
at /webhooks/livechat/api/...), and a listening visitor observes what the channel pushes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from omnilink import Hub, WebhookRequest, WebhookResponse
from omnilink.testing import ChannelConformance, FakeProvider
from omnilink_livechat import LivechatChannel
from omnilink_livechat import _plugin as livechat_plugin
from omnilink_livechat.testing import LivechatKit, LiveVisitors


class TestLivechatConformance(LivechatKit, ChannelConformance):
    plugin = livechat_plugin

    def tampered(self, request: WebhookRequest) -> list[WebhookRequest]:
        # The visitor token authenticates a request (the body is not signed): forge it, drop it.
        token = request.headers["authorization"]
        forged = {
            **request.headers,
            "authorization": token[:-2] + ("AA" if not token.endswith("AA") else "BB"),
        }
        unsigned = {k: v for k, v in request.headers.items() if k != "authorization"}
        return [replace(request, headers=forged), replace(request, headers=unsigned)]

    async def deliver(
        self, hub: Hub, fakes: Sequence[FakeProvider], request: WebhookRequest
    ) -> WebhookResponse:
        channel = hub.channel(self.channel)
        assert isinstance(channel, LivechatChannel)
        visitors = next(f for f in fakes if isinstance(f, LiveVisitors))
        for index in range(4):
            visitors.attach(channel, self.customer_address(index))
        return await hub.handle_webhook(self.channel, request)
