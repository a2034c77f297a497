"""The core's adapter conformance suite, run against the SMS channel and FakeTwilio."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from sms_support import PUBLIC_URL, twilio_config

from omnilink import DeliveryStatus, WebhookRequest
from omnilink.testing import ChannelConformance, FakeProvider
from omnilink_sms import _plugin
from omnilink_sms.testing import FakeTwilio

_TWILIO_STATUS = {
    DeliveryStatus.QUEUED: "queued",
    DeliveryStatus.SENT: "sent",
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.READ: "read",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.UNDELIVERED: "undelivered",
}


def _twilio(fakes: Sequence[FakeProvider]) -> FakeTwilio:
    fake = fakes[0]
    assert isinstance(fake, FakeTwilio)
    return fake


class TestSmsConformance(ChannelConformance):
    channel = "sms"
    plugin: ClassVar[object | None] = _plugin
    public_url = PUBLIC_URL

    def make_fakes(self) -> Sequence[FakeProvider]:
        return [FakeTwilio(webhook_base=f"{PUBLIC_URL}/webhooks/sms")]

    def channel_config(self, fakes: Sequence[FakeProvider]) -> Mapping[str, Any]:
        return twilio_config(_twilio(fakes))

    def customer_address(self, index: int) -> str:
        return f"+1415555{200 + index:04d}"

    def inbound_request(
        self, fakes: Sequence[FakeProvider], *, sender: str, text: str, provider_message_id: str
    ) -> WebhookRequest:
        return _twilio(fakes).customer_message(sender, body=text, message_sid=provider_message_id)

    def sent_texts(self, fakes: Sequence[FakeProvider]) -> list[str]:
        return [str(record["body"]) for record in _twilio(fakes).sent]

    def delivery_request(
        self, fakes: Sequence[FakeProvider], provider_message_id: str, status: DeliveryStatus
    ) -> WebhookRequest | None:
        return _twilio(fakes).status_request(provider_message_id, _TWILIO_STATUS[status])

    def invalid_address(self) -> str | None:
        return "not a phone number"
