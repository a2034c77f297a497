"""``TwitterKit``: how the demo and the conformance suite drive the X channel against FakeX."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omnilink import DeliveryStatus, WebhookRequest
from omnilink.testing import AdapterKit, FakeProvider

from .._wire import dm_conversation_id
from ._fake import DmEvent, FakeX


class TwitterKit(AdapterKit):
    """Drives the ``twitter`` channel (DMs) against one ``FakeX``."""

    channel = "twitter"

    customers = 100
    """Customer ids ``customer_address(0 … customers-1)`` exist at the fake and accept DMs."""

    def make_fakes(self) -> Sequence[FakeProvider]:
        fake = FakeX()
        for index in range(self.customers):
            fake.add_user(self.customer_address(index))
        return [fake]

    def fake(self, fakes: Sequence[FakeProvider]) -> FakeX:
        found = next((f for f in fakes if isinstance(f, FakeX)), None)
        assert found is not None, "no FakeX among the fakes"
        found.public_url = self.public_url
        return found

    def channel_config(self, fakes: Sequence[FakeProvider]) -> dict[str, Any]:
        s = self.fake(fakes).settings
        return {
            "user_id": s.user_id,
            "screen_name": s.username,
            "consumer_key": s.consumer_key,
            "consumer_secret": s.consumer_secret,
            "access_token": s.access_token,
            "access_token_secret": s.access_token_secret,
        }

    def customer_address(self, index: int) -> str:
        return str(2_000_000_000 + index)

    def _event(self, fake: FakeX, sender: str, text: str, provider_message_id: str) -> DmEvent:
        if sender not in fake.users:
            fake.add_user(sender)
        event = DmEvent(
            id=provider_message_id,
            sender_id=sender,
            conversation_id=dm_conversation_id(sender, fake.settings.user_id),
            text=text,
            created_at=fake.now(),
        )
        return event

    def inbound_request(
        self, fakes: Sequence[FakeProvider], *, sender: str, text: str, provider_message_id: str
    ) -> WebhookRequest:
        fake = self.fake(fakes)
        return fake.dm_webhook(self._event(fake, sender, text, provider_message_id))

    def batch_request(
        self, fakes: Sequence[FakeProvider], messages: Sequence[tuple[str, str, str]]
    ) -> WebhookRequest | None:
        fake = self.fake(fakes)
        return fake.dm_webhook(*(self._event(fake, s, t, p) for s, t, p in messages))

    def sent_texts(self, fakes: Sequence[FakeProvider]) -> list[str]:
        return list(self.fake(fakes).sent_texts)

    def delivery_request(
        self, fakes: Sequence[FakeProvider], provider_message_id: str, status: DeliveryStatus
    ) -> WebhookRequest | None:
        # X reports reads only (mark-read events), never "delivered".
        if status is not DeliveryStatus.READ:
            return None
        fake = self.fake(fakes)
        event = next(e for e in fake.dm_events if e.id == provider_message_id)
        a, b = event.conversation_id.split("-")
        reader = b if a == fake.settings.user_id else a
        return fake.signed_request(fake.activity(reads=[(reader, provider_message_id)]))
