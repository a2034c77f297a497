"""How the demo and the conformance suite drive the SMS channel against its fakes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omnilink import DeliveryStatus, WebhookRequest
from omnilink.testing import AdapterKit, FakeProvider

from ._twilio import FakeTwilio
from ._vonage import FakeVonage

__all__ = ["SmsKit", "VonageSmsKit"]

_TWILIO_STATUS = {
    DeliveryStatus.QUEUED: "queued",
    DeliveryStatus.SENT: "sent",
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.READ: "read",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.UNDELIVERED: "undelivered",
}
_VONAGE_STATUS = {
    DeliveryStatus.SENT: "accepted",
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.FAILED: "failed",
    DeliveryStatus.UNDELIVERED: "expired",
}


def _customer(index: int) -> str:
    return f"+1415555{2000 + index % 7000:04d}"


class SmsKit(AdapterKit):
    """Drives ``sms`` against one ``FakeTwilio`` owning one business number."""

    channel = "sms"
    business_number = "+14155550100"

    def _webhook_base(self) -> str:
        return f"{self.public_url.rstrip('/')}/webhooks/{self.channel}"

    def make_fakes(self) -> Sequence[FakeProvider]:
        return [FakeTwilio(numbers=[self.business_number], webhook_base=self._webhook_base())]

    def fake(self, fakes: Sequence[FakeProvider]) -> FakeTwilio:
        for fake in fakes:
            if isinstance(fake, FakeTwilio):
                # The harness may move the Hub (and so the signed URL) after making the fakes.
                fake.webhook_base = self._webhook_base()
                return fake
        raise LookupError("no FakeTwilio among the fakes")

    def channel_config(self, fakes: Sequence[FakeProvider]) -> dict[str, Any]:
        fake = self.fake(fakes)
        return {
            "senders": [{"number": self.business_number}],
            "twilio": {"account_sid": fake.account_sid, "auth_token": fake.auth_token},
        }

    def customer_address(self, index: int) -> str:
        return _customer(index)

    def inbound_request(
        self, fakes: Sequence[FakeProvider], *, sender: str, text: str, provider_message_id: str
    ) -> WebhookRequest:
        return self.fake(fakes).customer_message(sender, body=text, message_sid=provider_message_id)

    def sent_texts(self, fakes: Sequence[FakeProvider]) -> list[str]:
        return [str(record["body"]) for record in self.fake(fakes).sent]

    def delivery_request(
        self, fakes: Sequence[FakeProvider], provider_message_id: str, status: DeliveryStatus
    ) -> WebhookRequest | None:
        fake = self.fake(fakes)
        if provider_message_id not in fake.messages or status not in _TWILIO_STATUS:
            return None
        return fake.status_request(provider_message_id, _TWILIO_STATUS[status])


class VonageSmsKit(AdapterKit):
    """Drives ``sms`` against one ``FakeVonage`` (webhooks authenticated by a URL token)."""

    channel = "sms"
    business_number = "+14155550199"
    webhook_token = "kit-webhook-token"

    def _webhook_base(self) -> str:
        return f"{self.public_url.rstrip('/')}/webhooks/{self.channel}"

    def make_fakes(self) -> Sequence[FakeProvider]:
        return [
            FakeVonage(
                numbers=[self.business_number],
                webhook_base=self._webhook_base(),
                webhook_token=self.webhook_token,
            )
        ]

    def fake(self, fakes: Sequence[FakeProvider]) -> FakeVonage:
        for fake in fakes:
            if isinstance(fake, FakeVonage):
                fake.webhook_base = self._webhook_base()
                return fake
        raise LookupError("no FakeVonage among the fakes")

    def channel_config(self, fakes: Sequence[FakeProvider]) -> dict[str, Any]:
        fake = self.fake(fakes)
        return {
            "senders": [{"number": self.business_number, "provider": "vonage"}],
            "vonage": {
                "api_key": fake.api_key,
                "api_secret": fake.api_secret,
                "webhook_token": self.webhook_token,
            },
        }

    def customer_address(self, index: int) -> str:
        return _customer(index)

    def inbound_request(
        self, fakes: Sequence[FakeProvider], *, sender: str, text: str, provider_message_id: str
    ) -> WebhookRequest:
        (request,) = self.fake(fakes).customer_message(
            sender, text=text, message_id=provider_message_id, concat=False
        )
        return request

    def sent_texts(self, fakes: Sequence[FakeProvider]) -> list[str]:
        return [str(record["text"]) for record in self.fake(fakes).sent]

    def delivery_request(
        self, fakes: Sequence[FakeProvider], provider_message_id: str, status: DeliveryStatus
    ) -> WebhookRequest | None:
        if status not in _VONAGE_STATUS:
            return None
        try:
            return self.fake(fakes).receipt_request(provider_message_id, _VONAGE_STATUS[status])
        except KeyError:
            return None
