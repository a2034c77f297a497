"""Registers the ``twitter`` channel with omnilink's plugin host."""

from __future__ import annotations

from typing import TYPE_CHECKING

from omnilink import ChannelSpec, hookimpl

from ._channel import DM_CAPABILITIES, TwitterChannel
from ._config import TwitterConfig

if TYPE_CHECKING:
    from omnilink.testing import AdapterKit


@hookimpl
def omnilink_channels() -> list[ChannelSpec]:
    return [
        ChannelSpec(
            name="twitter",
            config_model=TwitterConfig,
            factory=TwitterChannel,
            capabilities=DM_CAPABILITIES,
            summary="X (Twitter): DMs and public replies, by Account Activity webhooks or polling",
        )
    ]


@hookimpl
def omnilink_adapter_kits() -> list[AdapterKit]:
    from .testing import TwitterKit

    return [TwitterKit()]
