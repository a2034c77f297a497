"""How the demo and the conformance suite drive the Messenger channel against its fake."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from omnilink import DeliveryStatus, WebhookRequest
from omnilink.testing import AdapterKit, FakeProvider

from ._fake import FakeGraphAPI, FakePage

KIT_PAGE = "1001"


class MessengerKit(AdapterKit):
    """Drives ``messenger`` against one ``FakeGraphAPI`` with one page."""

    channel = "messenger"

    def make_fakes(self) -> Sequence[FakeProvider]:
        return [FakeGraphAPI(pages=(FakePage(KIT_PAGE, "page-token-1001", human_agent_enabled=True),))]

    @staticmethod
    def fake(fakes: Sequence[FakeProvider]) -> FakeGraphAPI:
        for fake in fakes:
            if isinstance(fake, FakeGraphAPI):
                return fake
        raise LookupError("no FakeGraphAPI among the fakes")

    def channel_config(self, fakes: Sequence[FakeProvider]) -> dict[str, Any]:
        return self.fake(fakes).channel_config()

    def customer_address(self, index: int) -> str:
        return f"{7000000000000000 + index}"

    def inbound_request(
        self, fakes: Sequence[FakeProvider], *, sender: str, text: str, provider_message_id: str
    ) -> WebhookRequest:
        return self.fake(fakes).user_message(KIT_PAGE, sender, text, mid=provider_message_id)

    def batch_request(
        self, fakes: Sequence[FakeProvider], messages: Sequence[tuple[str, str, str]]
    ) -> WebhookRequest | None:
        fake = self.fake(fakes)
        events = [fake.message_event(KIT_PAGE, s, t, mid=pid) for s, t, pid in messages]
        return fake.webhook_request(events, entry_size=2)

    def sent_texts(self, fakes: Sequence[FakeProvider]) -> list[str]:
        return [s.text for s in self.fake(fakes).sent if s.text is not None]

    def delivery_request(
        self, fakes: Sequence[FakeProvider], provider_message_id: str, status: DeliveryStatus
    ) -> WebhookRequest | None:
        fake = self.fake(fakes)
        sent = next((s for s in fake.sent if s.mid == provider_message_id), None)
        if sent is None:
            return None
        if status is DeliveryStatus.DELIVERED:
            event = fake.delivery_event(sent.page_id, sent.recipient, mids=[sent.mid], watermark=sent.at)
        elif status is DeliveryStatus.READ:
            event = fake.read_event(sent.page_id, sent.recipient, watermark=sent.at)
        elif status is DeliveryStatus.SENT:
            # Messenger has no "sent" receipt; the echo of the send is what says it went out.
            echoes = [e for e in fake.pending if e.mid == provider_message_id]
            if not echoes:
                return None
            event = echoes[0]
        else:
            return None
        return fake.webhook_request([event])
