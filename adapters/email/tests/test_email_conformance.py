"""The core conformance suite, driven by EmailKit: Mailgun webhooks in, a real SMTP sink out."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import replace

import omnilink_email._plugin as email_plugin
from omnilink import Hub, WebhookRequest
from omnilink.testing import ChannelConformance, FakeProvider
from omnilink_email._webhooks import parse_form
from omnilink_email.testing import EmailKit, FakeMailRelay, encode_form


class TestEmailConformance(EmailKit, ChannelConformance):
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
                relay.stop()

    def make_fakes(self) -> Sequence[FakeProvider]:
        fakes = super().make_fakes()
        self._relays.extend(f for f in fakes if isinstance(f, FakeMailRelay))
        return fakes

    def tampered(self, request: WebhookRequest) -> list[WebhookRequest]:
        """Mailgun signs timestamp + token, not the body: tamper with what it signs."""
        form = parse_form(request.header("content-type"), request.body)

        def rebuilt(**changes: str | None) -> WebhookRequest:
            fields: list[tuple[str, bytes | str, str | None, str | None]] = []
            for name, field in form.items():
                if name in changes:
                    value = changes[name]
                    if value is not None:
                        fields.append((name, value, None, None))
                else:
                    fields.append((name, field.data, field.filename, field.content_type))
            content_type, body = encode_form(fields)
            return replace(request, headers={**request.headers, "content-type": content_type}, body=body)

        signature = form["signature"].text
        timestamp = int(form["timestamp"].text)
        return [
            rebuilt(signature=("1" if signature[0] != "1" else "2") + signature[1:]),
            rebuilt(signature=None),
            rebuilt(timestamp=str(timestamp - 1)),
            rebuilt(token=form["token"].text + "x"),
            rebuilt(timestamp=str(timestamp - 3600)),
        ]


def test_the_plugin_offers_the_kit() -> None:
    (kit,) = email_plugin.omnilink_adapter_kits()
    assert isinstance(kit, EmailKit)
