"""The test kit shipped with omnilink: provider fakes, strategies, the conformance suite.

- ``FakeProvider``: base of provider fakes (in-process transport or a real 127.0.0.1 server),
  with ``Fault`` injection; ``routing_transport`` plugs several fakes into one Hub.
- ``LoopbackChannel`` / ``FakeLoopback``: a small, complete reference channel and its fake.
- ``ChannelConformance``: the suite every adapter's tests subclass (needs pytest).
- ``omnilink.testing.strategies``: hypothesis strategies for every model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._fake import FakeProvider, Fault, WebhookTarget, hub_target, routing_transport, serve_app
from ._kit import AdapterKit
from ._loopback import (
    LOOPBACK_CAPABILITIES,
    FakeLoopback,
    LoopbackChannel,
    LoopbackConfig,
    LoopbackKit,
    LoopbackPlugin,
    sign,
)
from ._postgres import PostgresUnavailable, postgres_schema

if TYPE_CHECKING:
    from ._conformance import ChannelConformance

__all__ = [
    "LOOPBACK_CAPABILITIES",
    "AdapterKit",
    "ChannelConformance",
    "FakeLoopback",
    "FakeProvider",
    "Fault",
    "LoopbackChannel",
    "LoopbackConfig",
    "LoopbackKit",
    "LoopbackPlugin",
    "PostgresUnavailable",
    "WebhookTarget",
    "hub_target",
    "postgres_schema",
    "routing_transport",
    "serve_app",
    "sign",
]


def __getattr__(name: str) -> Any:
    # The conformance suite imports pytest; load it only when asked for.
    if name == "ChannelConformance":
        from ._conformance import ChannelConformance

        return ChannelConformance
    raise AttributeError(name)
