"""The core conformance suite, driven through the Mailgun inbound webhook and a real SMTP sink."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from starlette.routing import BaseRoute

import omnilink_email._plugin as email_plugin
from omnilink import DeliveryStatus, Hub, WebhookRequest, text_of
from omnilink.testing import ChannelConformance, FakeProvider
from omnilink_email import parse_message
from omnilink_email._webhooks import parse_form
from omnilink_email.testing import SmtpSink, encode_form, mailgun_request

MAILGUN_KEY = "key-conformance"


class FakeMailRelay(FakeProvider):
    """The email 'provider': an SMTP sink on 127.0.0.1 (no HTTP API)."""

    hosts = ("smtp.relay.invalid",)

    def __init__(self) -> None:
        super().__init__()
        self.sink = SmtpSink().start()

    def routes(self) -> Sequence[BaseRoute]:
        return []


def _mail(sender: str, text: str, message_id: str) -> bytes:
    return (
        f"From: {sender}\r\nTo: support@acme.test\r\nSubject: Help needed\r\n"
        f"Message-ID: <{message_id}@example.com>\r\nDate: Mon, 08 Jan 2024 10:00:00 +0000\r\n"
        f"Content-Type: text/plain; charset=utf-8\r\n\r\n{text}\r\n"
    ).encode()


_ACTIONS = {
    DeliveryStatus.DELIVERED: "delivered",
    DeliveryStatus.SENT: "relayed",
    DeliveryStatus.FAILED: "failed",
}


class TestEmailConformance(ChannelConformance):
    channel = "email"
    plugin = email_plugin

    _relays: list[FakeMailRelay]

    @asynccontextmanager
    async def open_hub(self) -> AsyncIterator[tuple[Hub, Sequence[FakeProvider]]]:
        self._relays = []
        try:
            async with super().open_hub() as opened:
                yield opened
        finally:
            for relay in self._relays:
                relay.sink.stop()

    def make_fakes(self) -> Sequence[FakeProvider]:
        relay = FakeMailRelay()
        self._relays.append(relay)
        return [relay]

    def channel_config(self, fakes: Sequence[FakeProvider]) -> Mapping[str, Any]:
        sink = self._sink(fakes)
        return {
            "address": "support@acme.test",
            "token_secret": "conformance-secret-0123",
            "inbound_domain": "in.acme.test",
            "mailgun_signing_key": MAILGUN_KEY,
            "smtp": {"host": sink.host, "port": sink.port, "security": "none", "timeout": 10},
        }

    def _sink(self, fakes: Sequence[FakeProvider]) -> SmtpSink:
        relay = fakes[0]
        assert isinstance(relay, FakeMailRelay)
        return relay.sink

    def customer_address(self, index: int) -> str:
        return f"customer{index}@example.com"

    def inbound_request(
        self, fakes: Sequence[FakeProvider], *, sender: str, text: str, provider_message_id: str
    ) -> WebhookRequest:
        return mailgun_request(_mail(sender, text, provider_message_id), signing_key=MAILGUN_KEY)

    def sent_texts(self, fakes: Sequence[FakeProvider]) -> list[str]:
        return [text_of(parse_message(m.data).parts) for m in self._sink(fakes).received]

    def delivery_request(
        self, fakes: Sequence[FakeProvider], provider_message_id: str, status: DeliveryStatus
    ) -> WebhookRequest | None:
        dsn = (
            "From: MAILER-DAEMON@mx.example.com\nTo: support@acme.test\nSubject: Delivery report\n"
            f"Message-ID: <dsn-{status.value}@mx.example.com>\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\n\n'
            "--r\nContent-Type: text/plain\n\nReport.\n"
            "--r\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n\n"
            f"Final-Recipient: rfc822; customer0@example.com\nAction: {_ACTIONS[status]}\nStatus: 2.0.0\n\n"
            f"--r\nContent-Type: text/rfc822-headers\n\nMessage-ID: <{provider_message_id}>\n\n--r--\n"
        ).replace("\n", "\r\n")
        return mailgun_request(dsn.encode(), signing_key=MAILGUN_KEY, mime=True)

    def tampered(self, request: WebhookRequest) -> list[WebhookRequest]:
        """Mailgun signs timestamp + token, not the body: tamper with what it signs."""
        form = parse_form(request.header("content-type"), request.body)

        def rebuilt(**changes: str | None) -> WebhookRequest:
            fields: list[tuple[str, bytes | str, str | None, str | None]] = []
            for name, field in form.items():
                if name in changes:
                    value = changes[name]
                    if value is None:
                        continue
                    fields.append((name, value, None, None))
                else:
                    fields.append((name, field.data, field.filename, field.content_type))
            content_type, body = encode_form(fields)
            return replace(request, headers={**request.headers, "content-type": content_type}, body=body)

        signature = form["signature"].text
        flipped = ("1" if signature[0] != "1" else "2") + signature[1:]
        return [
            rebuilt(signature=flipped),
            rebuilt(signature=None),
            rebuilt(timestamp=str(int(form["timestamp"].text) - 1)),
            rebuilt(token=form["token"].text + "x"),
            rebuilt(timestamp=str(int(form["timestamp"].text) - 3600)),
        ]
