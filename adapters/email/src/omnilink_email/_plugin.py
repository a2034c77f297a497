"""Registers the ``email`` channel with omnilink (entry point group ``omnilink``)."""

from __future__ import annotations

from omnilink import ChannelSpec, hookimpl

from ._channel import EMAIL_CAPABILITIES, EmailChannel
from ._config import EmailConfig

EMAIL_SPEC = ChannelSpec(
    name="email",
    config_model=EmailConfig,
    factory=EmailChannel,
    capabilities=EMAIL_CAPABILITIES,
    summary="Email: SMTP sending, IMAP receiving, Mailgun/SendGrid/Postmark inbound webhooks",
)


@hookimpl
def omnilink_channels() -> list[ChannelSpec]:
    return [EMAIL_SPEC]
