"""Test helpers for the live-chat channel: a scripted visitor that needs no browser."""

from ._visitor import ScriptedVisitor, SocketClosed

__all__ = ["ScriptedVisitor", "SocketClosed"]
