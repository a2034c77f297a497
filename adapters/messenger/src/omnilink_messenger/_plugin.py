"""Registers the ``messenger`` channel with omnilink (entry point ``omnilink``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omnilink import ChannelSpec, hookimpl

from ._channel import CAPABILITIES, MessengerChannel
from ._config import MessengerConfig

if TYPE_CHECKING:
    from omnilink.testing import AdapterKit


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


@hookimpl
def omnilink_adapter_kits() -> list[AdapterKit]:
    # Imported here: the kit pulls in the fake (starlette), which a production Hub never needs.
    from .testing import MessengerKit

    return [MessengerKit()]
