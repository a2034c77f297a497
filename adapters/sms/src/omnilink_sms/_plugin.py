"""Registers the ``sms`` channel (and its test kit) with omnilink's plugin host."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from omnilink import ChannelContext, ChannelSpec, hookimpl

from ._channel import SMS_CAPABILITIES, SmsChannel
from ._config import SmsConfig

if TYPE_CHECKING:
    from omnilink.testing import AdapterKit


def _build(config: SmsConfig, context: ChannelContext) -> SmsChannel:
    return SmsChannel(config, context)


@hookimpl
def omnilink_channels() -> Sequence[ChannelSpec]:
    return [
        ChannelSpec(
            name="sms",
            config_model=SmsConfig,
            factory=_build,
            capabilities=SMS_CAPABILITIES,
            summary="SMS and MMS through Twilio or Vonage",
        )
    ]


@hookimpl
def omnilink_adapter_kits() -> Sequence[AdapterKit]:
    # Imported here: the kit pulls in the fakes (starlette), which a production Hub never needs.
    from .testing import SmsKit

    return [SmsKit()]
