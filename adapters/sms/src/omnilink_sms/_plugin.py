"""Registers the ``sms`` channel with omnilink's plugin host."""

from __future__ import annotations

from collections.abc import Sequence

from omnilink import ChannelContext, ChannelSpec, hookimpl

from ._channel import SMS_CAPABILITIES, SmsChannel
from ._config import SmsConfig


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
