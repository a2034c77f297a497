"""Fixtures for the live-chat adapter's tests: a Hub with the livechat channel in memory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from livechat_support import livechat_config

from omnilink import Hub, MemoryStore
from omnilink_livechat import LivechatChannel
from omnilink_livechat import _plugin as livechat_plugin


@pytest.fixture
def livechat_settings() -> dict[str, Any]:
    return {}


@pytest.fixture
async def hub(livechat_settings: dict[str, Any]) -> AsyncIterator[Hub]:
    async with Hub(
        store=MemoryStore(),
        channels={"livechat": livechat_config(**livechat_settings)},
        plugins=[livechat_plugin],
        load_entry_points=False,
        public_url="https://help.example",
    ) as hub:
        yield hub


@pytest.fixture
def channel(hub: Hub) -> LivechatChannel:
    found = hub.channel("livechat")
    assert isinstance(found, LivechatChannel)
    return found


@pytest.fixture
def app(hub: Hub) -> Any:
    return hub.asgi_app()
