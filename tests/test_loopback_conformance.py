"""The bundled loopback channel passes the conformance suite every adapter runs."""

from __future__ import annotations

from omnilink.testing import ChannelConformance, LoopbackKit, LoopbackPlugin


class TestLoopbackConformance(LoopbackKit, ChannelConformance):
    channel = "loopback"
    plugin = LoopbackPlugin()
