"""The core's adapter conformance suite, run against the SMS channel on each provider's fake."""

from __future__ import annotations

from dataclasses import replace
from typing import ClassVar

from omnilink import WebhookRequest
from omnilink.testing import ChannelConformance
from omnilink_sms import _plugin
from omnilink_sms.testing import SmsKit, VonageSmsKit


class TestSmsConformance(SmsKit, ChannelConformance):
    plugin: ClassVar[object | None] = _plugin

    def invalid_address(self) -> str | None:
        return "not a phone number"


class TestVonageSmsConformance(VonageSmsKit, ChannelConformance):
    plugin: ClassVar[object | None] = _plugin

    def invalid_address(self) -> str | None:
        return "+1 555 000 1111"

    def tampered(self, request: WebhookRequest) -> list[WebhookRequest]:
        # Vonage signs nothing here: its webhooks are authenticated by the URL token alone.
        without = request.url.replace(f"token={self.webhook_token}", "")
        wrong = request.url.replace(f"token={self.webhook_token}", "token=guessed")
        return [replace(request, url=without), replace(request, url=wrong)]
