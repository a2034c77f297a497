"""Fixtures for the Messenger adapter's tests (helpers live in ``messenger_support``)."""

from __future__ import annotations

import pytest
from messenger_support import Clock, make_fake

from omnilink_messenger.testing import FakeGraphAPI


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeGraphAPI:
    return make_fake(clock)
