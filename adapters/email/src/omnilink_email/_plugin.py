"""Registers the ``email`` channel with omnilink (entry point group ``omnilink``)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

from omnilink import ChannelSpec, hookimpl

from ._channel import EMAIL_CAPABILITIES, EmailChannel
from ._config import EmailConfig

if TYPE_CHECKING:
    from omnilink.testing import AdapterKit

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


@hookimpl
def omnilink_adapter_kits() -> list[AdapterKit]:
    # The kit's SMTP sink needs aiosmtpd (the ``test`` extra): offer it only when installed.
    if importlib.util.find_spec("aiosmtpd") is None:
        return []
    from .testing import EmailKit

    return [EmailKit()]
