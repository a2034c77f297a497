"""The adapter conformance suite: a base class every channel adapter's tests subclass.

```python
from omnilink.testing import ChannelConformance

class TestSmsConformance(ChannelConformance):
    channel = "sms"
    def make_fakes(self): ...
    def channel_config(self, fakes): ...
    def customer_address(self, index): ...
    def inbound_request(self, fakes, *, sender, text, provider_message_id): ...
    def sent_texts(self, fakes): ...
```

Each test opens a Hub on a MemoryStore with the adapter's fakes plugged in as the HTTP
transport, and checks one part of the contract: signatures, batches, dedupe, sending,
capabilities, typed errors and delivery-status monotonicity.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import ClassVar

import pytest

from .._capabilities import Capabilities, strip_numbering
from .._channel import WebhookRequest, WebhookResponse
from .._errors import AddressError
from .._hub import Hub
from .._models import DeliveryStatus, Direction
from .._store._memory import MemoryStore
from ._fake import FakeProvider, routing_transport
from ._kit import AdapterKit


class ChannelConformance(AdapterKit):
    """Subclass this in an adapter's tests and implement the AdapterKit methods
    (or subclass the adapter's own kit as well)."""

    channel: ClassVar[str]
    """The channel name under test."""
    plugin: ClassVar[object | None] = None
    """A plugin object to register; None loads installed plugins from entry points."""

    # The abstract methods (make_fakes, channel_config, customer_address, inbound_request,
    # sent_texts) and the optional batch_request / delivery_request come from AdapterKit.

    def invalid_address(self) -> str | None:
        """An address the channel must refuse with AddressError; None to skip that check."""
        return "not a valid address \x00"

    def tampered(self, request: WebhookRequest) -> list[WebhookRequest]:
        """Variants of a valid request that must be refused: a flipped body byte, and the
        request without any header whose name mentions a signature."""
        body = bytearray(request.body)
        variants = []
        if body:
            body[len(body) // 2] ^= 0x01
            variants.append(replace(request, body=bytes(body)))
        unsigned = {k: v for k, v in request.headers.items() if "signature" not in k.lower()}
        if len(unsigned) != len(request.headers):
            variants.append(replace(request, headers=unsigned))
        return variants

    async def deliver(
        self, hub: Hub, fakes: Sequence[FakeProvider], request: WebhookRequest
    ) -> WebhookResponse:
        """Hand a request to the Hub the way the provider would."""
        return await hub.handle_webhook(self.channel, request)

    # ---- harness

    @asynccontextmanager
    async def open_hub(self) -> AsyncIterator[tuple[Hub, Sequence[FakeProvider]]]:
        fakes = self.make_fakes()
        hub = Hub(
            store=MemoryStore(),
            channels={self.channel: self.channel_config(fakes)},
            plugins=[self.plugin] if self.plugin is not None else [],
            load_entry_points=self.plugin is None,
            transport=routing_transport(*fakes),
            public_url=self.public_url,
        )
        async with hub:
            yield hub, fakes

    async def _receive_one(self, hub: Hub, fakes: Sequence[FakeProvider], index: int, text: str) -> str:
        request = self.inbound_request(
            fakes,
            sender=self.customer_address(index),
            text=text,
            provider_message_id=f"conf-{index}-{text[:8]}",
        )
        response = await self.deliver(hub, fakes, request)
        assert 200 <= response.status < 300, f"valid webhook refused: {response.status} {response.body!r}"
        conversations = await hub.conversations()
        assert conversations, "a valid inbound message created no conversation"
        return conversations[0].id

    # ---- the contract

    @pytest.mark.anyio
    async def test_conformance_tampered_webhooks_are_refused_and_store_nothing(self) -> None:
        async with self.open_hub() as (hub, fakes):
            valid = self.inbound_request(
                fakes, sender=self.customer_address(0), text="tampered?", provider_message_id="conf-tamper"
            )
            variants = self.tampered(valid)
            assert variants, "tampered() produced no variants to check"
            for variant in variants:
                response = await self.deliver(hub, fakes, variant)
                assert response.status >= 400, f"a tampered webhook was accepted: {variant!r}"
            assert await hub.conversations() == []

    @pytest.mark.anyio
    async def test_conformance_every_message_of_a_batch_is_stored(self) -> None:
        async with self.open_hub() as (hub, fakes):
            batch = [(self.customer_address(i), f"batch message {i}", f"conf-batch-{i}") for i in range(3)]
            request = self.batch_request(fakes, batch)
            if request is not None:
                response = await self.deliver(hub, fakes, request)
                assert 200 <= response.status < 300
            else:
                for sender, text, pid in batch:
                    single = self.inbound_request(fakes, sender=sender, text=text, provider_message_id=pid)
                    assert 200 <= (await self.deliver(hub, fakes, single)).status < 300
            texts: set[str] = set()
            for conv in await hub.conversations():
                texts.update(m.text for m in await hub.messages(conv.id) if m.direction is Direction.INBOUND)
            assert {text for _, text, _ in batch} <= texts

    @pytest.mark.anyio
    async def test_conformance_redelivered_webhook_is_stored_once(self) -> None:
        async with self.open_hub() as (hub, fakes):
            request = self.inbound_request(
                fakes, sender=self.customer_address(0), text="only once", provider_message_id="conf-dupe"
            )
            for _ in range(3):
                response = await self.deliver(hub, fakes, request)
                assert 200 <= response.status < 300
            conversations = await hub.conversations()
            assert len(conversations) == 1
            messages = await hub.messages(conversations[0].id)
            assert [m.text for m in messages].count("only once") == 1

    @pytest.mark.anyio
    async def test_conformance_reply_reaches_the_provider(self) -> None:
        async with self.open_hub() as (hub, fakes):
            conversation_id = await self._receive_one(hub, fakes, 0, "hello, I need help")
            reply = await hub.reply(conversation_id, "Happy to help!")
            await hub.drain()
            assert any("Happy to help!" in text for text in self.sent_texts(fakes))
            sent = await hub.message(reply.id)
            assert sent.status in (DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ)
            assert sent.provider_message_id

    @pytest.mark.anyio
    async def test_conformance_long_reply_honours_capabilities(self) -> None:
        async with self.open_hub() as (hub, fakes):
            conversation_id = await self._receive_one(hub, fakes, 0, "please send the details")
            caps: Capabilities = hub.channel(self.channel).capabilities
            limit = caps.text_max or 2000
            words = [f"word{i}" for i in range(limit // 2)]
            text = " ".join(words)[: limit * 2 + 17]
            await hub.reply(conversation_id, text)
            await hub.drain()
            sent = [t for t in self.sent_texts(fakes) if "word" in t]
            assert sent, "the long reply was not sent"
            if caps.text_max is not None:
                assert all(caps.measure(t) <= caps.text_max for t in sent), "a piece exceeds text_max"
                joined = "".join(strip_numbering(t) if caps.split_numbering else t for t in sent)
                assert "".join(joined.split()) == "".join(text.split()), "the pieces do not reassemble"

    @pytest.mark.anyio
    async def test_conformance_invalid_address_raises_address_error(self) -> None:
        address = self.invalid_address()
        if address is None:
            pytest.skip("this channel accepts every address string")
        async with self.open_hub() as (hub, _fakes):
            with pytest.raises(AddressError):
                hub.channel(self.channel).normalize_address(address)

    @pytest.mark.anyio
    async def test_conformance_delivery_status_only_moves_forward(self) -> None:
        async with self.open_hub() as (hub, fakes):
            conversation_id = await self._receive_one(hub, fakes, 0, "status check")
            reply = await hub.reply(conversation_id, "Status test")
            await hub.drain()
            sent = await hub.message(reply.id)
            assert sent.provider_message_id
            reached = DeliveryStatus.DELIVERED
            receipt = self.delivery_request(fakes, sent.provider_message_id, reached)
            if receipt is None:  # some channels only report reads
                reached = DeliveryStatus.READ
                receipt = self.delivery_request(fakes, sent.provider_message_id, reached)
            if receipt is None:
                pytest.skip("this channel has no delivery or read receipts")
            assert 200 <= (await self.deliver(hub, fakes, receipt)).status < 300
            assert (await hub.message(reply.id)).status is reached
            late = self.delivery_request(fakes, sent.provider_message_id, DeliveryStatus.SENT)
            if late is None:
                late = self.delivery_request(fakes, sent.provider_message_id, DeliveryStatus.DELIVERED)
            if late is not None:
                assert 200 <= (await self.deliver(hub, fakes, late)).status < 300
            assert (await hub.message(reply.id)).status is reached

    @pytest.mark.anyio
    async def test_conformance_capabilities_are_data(self) -> None:
        async with self.open_hub() as (hub, _fakes):
            spec = hub.specs[self.channel]
            caps = hub.channel(self.channel).capabilities
            assert isinstance(spec.capabilities, Capabilities)
            assert isinstance(caps, Capabilities)
            Capabilities.model_validate_json(caps.model_dump_json())
