"""Registers the ``messenger`` channel with omnilink (entry point ``omnilink``)."""

from __future__ import annotations

from omnilink import ChannelSpec, hookimpl

from ._channel import CAPABILITIES, MessengerChannel
from ._config import MessengerConfig


@hookimpl
def omnilink_channels() -> list[ChannelSpec]:
    return [
        ChannelSpec(
            name="messenger",
            config_model=MessengerConfig,
            factory=MessengerChannel,
            capabilities=CAPABILITIES,
            summary="Facebook Messenger pages through the Graph API (webhooks + Send API)",
        )
    ]
