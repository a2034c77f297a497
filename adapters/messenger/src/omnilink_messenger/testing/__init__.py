"""Test kit for the Messenger channel: a fake Graph API that enforces Meta's rules."""

from ._fake import (
    GRAPH_HOST,
    FakeEvent,
    FakeGraphAPI,
    FakePage,
    SentMessage,
    graph_error,
    rate_limit_fault,
    server_error_fault,
)
from ._kit import MessengerKit

__all__ = [
    "GRAPH_HOST",
    "FakeEvent",
    "FakeGraphAPI",
    "FakePage",
    "MessengerKit",
    "SentMessage",
    "graph_error",
    "rate_limit_fault",
    "server_error_fault",
]
