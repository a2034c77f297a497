"""Registers the ``livechat`` channel with omnilink."""

from __future__ import annotations

from typing import Any

from omnilink import ChannelSpec, hookimpl

from ._channel import CAPABILITIES, LivechatChannel
from ._config import LivechatConfig


@hookimpl
def omnilink_channels() -> list[ChannelSpec]:
    return [
        ChannelSpec(
            name="livechat",
            config_model=LivechatConfig,
            factory=LivechatChannel,
            capabilities=CAPABILITIES,
            summary="Live chat: an embeddable widget talking to the helpdesk over WebSocket.",
        )
    ]


@hookimpl
def omnilink_adapter_kits() -> list[Any]:
    from .testing import LivechatKit

    return [LivechatKit()]
