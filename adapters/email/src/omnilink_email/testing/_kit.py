"""The email channel's AdapterKit: an SMTP sink as the provider, Mailgun as the webhook."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from starlette.routing import BaseRoute

from omnilink import DeliveryStatus, WebhookRequest, text_of
from omnilink.testing import AdapterKit, FakeProvider

from .._parse import parse_message
from ._smtp import SmtpSink
from ._webhooks import mailgun_request

__all__ = ["EmailKit", "FakeMailRelay"]

KIT_MAILGUN_KEY = "key-omnilink-kit"
_ACTIONS = {
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.SENT: "relayed",
    DeliveryStatus.FAILED: "failed",
}


class FakeMailRelay(FakeProvider):
    """The email "provider": an SMTP sink on 127.0.0.1 (there is no HTTP API to fake).

    ``serve()`` runs the sink for its duration; ``start()`` / ``stop()`` do it by hand.
    """

    hosts = ("smtp.relay.invalid",)

    def __init__(self) -> None:
        super().__init__()
        self.sink = SmtpSink()

    def routes(self) -> Sequence[BaseRoute]:
        return []

    def start(self) -> SmtpSink:
        return self.sink.start()

    def stop(self) -> None:
        self.sink.stop()

    @asynccontextmanager
    async def serve(self, host: str = "127.0.0.1") -> AsyncIterator[str]:
        self.start()
        try:
            async with super().serve(host) as url:
                yield url
        finally:
            self.stop()


def _mail(sender: str, text: str, message_id: str, date: datetime) -> bytes:
    return (
        f"From: {sender}\r\nTo: support@acme.test\r\nSubject: Help needed\r\n"
        f"Message-ID: <{message_id}@example.com>\r\nDate: {format_datetime(date)}\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()


class EmailKit(AdapterKit):
    """Drives the ``email`` channel: customers write through a Mailgun route, replies go to
    an SMTP sink, delivery reports arrive as DSNs (raw MIME through Mailgun)."""

    channel = "email"

    def make_fakes(self) -> Sequence[FakeProvider]:
        return [FakeMailRelay()]

    @staticmethod
    def relay(fakes: Sequence[FakeProvider]) -> FakeMailRelay:
        found = next((f for f in fakes if isinstance(f, FakeMailRelay)), None)
        if found is None:
            raise ValueError("the email kit's fakes have no FakeMailRelay")
        return found

    def channel_config(self, fakes: Sequence[FakeProvider]) -> Mapping[str, Any]:
        sink = self.relay(fakes).start()  # idempotent: serve() may have started it
        return {
            "address": "support@acme.test",
            "from_name": "Acme Support",
            "token_secret": "omnilink-kit-secret-0123",
            "inbound_domain": "in.acme.test",
            "mailgun_signing_key": KIT_MAILGUN_KEY,
            "smtp": {"host": sink.host, "port": sink.port, "security": "none", "timeout": 10},
        }

    def customer_address(self, index: int) -> str:
        return f"customer{index}@example.com"

    def inbound_request(
        self, fakes: Sequence[FakeProvider], *, sender: str, text: str, provider_message_id: str
    ) -> WebhookRequest:
        return mailgun_request(
            _mail(sender, text, provider_message_id, self.relay(fakes).now()),
            signing_key=KIT_MAILGUN_KEY,
            url=f"{self.public_url.rstrip('/')}/webhooks/email",
        )

    def sent_texts(self, fakes: Sequence[FakeProvider]) -> list[str]:
        return [text_of(parse_message(m.data).parts) for m in self.relay(fakes).sink.received]

    def delivery_request(
        self, fakes: Sequence[FakeProvider], provider_message_id: str, status: DeliveryStatus
    ) -> WebhookRequest | None:
        action = _ACTIONS.get(status)
        if action is None:
            return None
        dsn = (
            "From: MAILER-DAEMON@mx.example.com\nTo: support@acme.test\nSubject: Delivery report\n"
            f"Message-ID: <dsn-{status.value}-{abs(hash(provider_message_id))}@mx.example.com>\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n\n'
            "--r\nContent-Type: text/plain\n\nReport.\n"
            "--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
            f"Final-Recipient: rfc822; customer@example.com\nAction: {action}\nStatus: 2.0.0\n\n"
            f"--r\nContent-Type: text/rfc822-headers\n\nMessage-ID: <{provider_message_id}>\n\n--r--\n"
        ).replace("\n", "\r\n")
        return mailgun_request(
            dsn.encode(),
            signing_key=KIT_MAILGUN_KEY,
            mime=True,
            url=f"{self.public_url.rstrip('/')}/webhooks/email",
        )
