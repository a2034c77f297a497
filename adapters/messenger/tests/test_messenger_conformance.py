"""The core's adapter conformance suite, run against the Messenger channel and its fake."""

from __future__ import annotations

from typing import ClassVar

from omnilink.testing import ChannelConformance
from omnilink_messenger import _plugin
from omnilink_messenger.testing import MessengerKit


class TestMessengerConformance(MessengerKit, ChannelConformance):
    plugin: ClassVar[object | None] = _plugin
