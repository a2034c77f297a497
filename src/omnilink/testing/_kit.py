"""What an adapter ships so that tools can drive it against its fakes without pytest.

The demo (``omnilink demo``) and the conformance suite both use an ``AdapterKit``: how to
make the provider's fakes, configure the channel against them, name customers, and build
the signed webhook a customer's message arrives as. Adapters register kits with the
``omnilink_adapter_kits`` hook.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from .._channel import WebhookRequest
from .._models import DeliveryStatus
from ._fake import FakeProvider


class AdapterKit(abc.ABC):
    """How to drive one channel against its bundled fakes."""

    channel: ClassVar[str]
    """The channel name the kit drives."""
    public_url: str = "https://helpdesk.example"
    """Where the Hub is reachable; webhook requests the kit builds are addressed (and, where
    the provider signs the URL, signed) for ``<public_url>/webhooks/<channel><path>``. The
    harness sets it and passes the same value to ``Hub(public_url=...)``."""

    @abc.abstractmethod
    def make_fakes(self) -> Sequence[FakeProvider]:
        """Fresh fakes of the channel's provider(s)."""

    @abc.abstractmethod
    def channel_config(self, fakes: Sequence[FakeProvider]) -> Mapping[str, Any] | BaseModel:
        """The channel's config, pointing at the fakes' hosts and credentials."""

    @abc.abstractmethod
    def customer_address(self, index: int) -> str:
        """A valid, distinct customer address for customer number ``index``."""

    @abc.abstractmethod
    def inbound_request(
        self, fakes: Sequence[FakeProvider], *, sender: str, text: str, provider_message_id: str
    ) -> WebhookRequest:
        """A correctly signed webhook request carrying one customer text message."""

    @abc.abstractmethod
    def sent_texts(self, fakes: Sequence[FakeProvider]) -> list[str]:
        """Texts the fakes accepted from the channel, in send order."""

    def batch_request(
        self, fakes: Sequence[FakeProvider], messages: Sequence[tuple[str, str, str]]
    ) -> WebhookRequest | None:
        """One signed request carrying several (sender, text, provider id) messages, if the
        provider batches; None to deliver them one request each."""
        return None

    def delivery_request(
        self, fakes: Sequence[FakeProvider], provider_message_id: str, status: DeliveryStatus
    ) -> WebhookRequest | None:
        """A signed delivery receipt for a sent message; None if the channel has none."""
        return None
