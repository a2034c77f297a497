"""Test helpers for the live-chat channel: a scripted visitor that needs no browser, and the
adapter kit the conformance suite and ``omnilink demo`` drive."""

from ._kit import LivechatKit, LiveVisitors
from ._visitor import ScriptedVisitor, SocketClosed

__all__ = ["LiveVisitors", "LivechatKit", "ScriptedVisitor", "SocketClosed"]
