"""Helpers shared by the Messenger adapter's tests: a settable clock, the fake, an open channel.

A uniquely named module (not ``conftest``), so test files of several adapters can import
their helpers in one pytest run.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from omnilink import ChannelContext, Inbound
from omnilink_messenger import MessengerChannel, MessengerConfig
from omnilink_messenger.testing import FakeGraphAPI, FakePage

PAGE = "1001"
"""A page without the HUMAN_AGENT tag."""
AGENT_PAGE = "1002"
"""A page approved for the HUMAN_AGENT tag."""
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock tests move by hand; shared by the fake and the channel."""

    def __init__(self, now: datetime = START) -> None:
        self.value = now

    def __call__(self) -> datetime:
        return self.value

    def advance(self, delta: timedelta) -> None:
        self.value += delta


def make_fake(clock: Clock, **kwargs: Any) -> FakeGraphAPI:
    pages = (FakePage(PAGE, "token-1001"), FakePage(AGENT_PAGE, "token-1002", human_agent_enabled=True))
    return FakeGraphAPI(pages=pages, clock=clock, **kwargs)


async def _refuse(items: Sequence[Inbound]) -> Any:
    raise AssertionError("the channel must not submit webhook items itself")


def plain_context(http: httpx.AsyncClient, clock: Clock) -> ChannelContext:
    """A ChannelContext outside any Hub: the channel must not submit, store or publish."""
    return ChannelContext.standalone(
        "messenger", http=http, submit=_refuse, now=clock, public_url="https://hd.example"
    )


@asynccontextmanager
async def open_channel(fake: FakeGraphAPI, clock: Clock, **overrides: Any) -> AsyncIterator[MessengerChannel]:
    """The channel against ``fake``, outside any Hub, with a plain ChannelContext."""
    config = MessengerConfig.model_validate(fake.channel_config(**overrides))
    async with httpx.AsyncClient(transport=fake.transport()) as http:
        channel = MessengerChannel(config, plain_context(http, clock))
        await channel.open()
        try:
            yield channel
        finally:
            await channel.aclose()
