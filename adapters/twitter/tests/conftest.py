"""Fixtures for the X channel's tests: a FakeX and a channel wired to it without a Hub."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from twitter_harness import Clock, Harness, make_harness

from omnilink_twitter.testing import FakeX


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeX:
    return FakeX(clock=clock)


@pytest.fixture
async def harness(fake: FakeX, clock: Clock) -> AsyncIterator[Harness]:
    built, http = await make_harness(fake, clock, max_rate_wait=0)
    async with http:
        yield built
