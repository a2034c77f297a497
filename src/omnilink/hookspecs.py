"""The hooks a plugin may implement. Every hook is synchronous and registers things.

Implement them with the ``omnilink.hookimpl`` marker in a module or class published under the
entry-point group ``omnilink``::

    [project.entry-points.omnilink]
    sms = "omnilink_sms.plugin"

Hooks never do I/O and are never ``async def``: the objects they return (channel specs,
event handlers) do the async work, driven by the Hub under anyio.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import pluggy

if TYPE_CHECKING:
    from ._channel import ChannelSpec, SendContext
    from ._errors import PolicyRefusal
    from ._models import Event
    from .testing._kit import AdapterKit

PROJECT_NAME = "omnilink"
"""The pluggy project name, which is also the entry-point group plugins are published under."""

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


class EventHandler(Protocol):
    """An object that wants every event the Hub publishes.

    ``handle`` is awaited in the Hub's task group, one event at a time, in publish order; an
    exception it raises is logged and does not stop the Hub or other handlers.
    """

    async def handle(self, event: Event) -> None: ...


@hookspec
def omnilink_channels() -> Sequence[ChannelSpec] | None:
    """Register channels.

    Return a sequence of ``ChannelSpec`` (one per channel this plugin provides), or ``None``
    to register none. Channel names must be unique across all plugins of a Hub; a duplicate is
    reported as a broken plugin (fatal in strict mode).
    """


@hookspec
def omnilink_event_handlers() -> Sequence[EventHandler] | None:
    """Register event handlers.

    Return objects with an ``async def handle(event)`` method; the Hub delivers every
    published event to each, in order. Return ``None`` to register none. Called once per
    Hub, when it opens.
    """


@hookspec
def omnilink_send_policy(context: SendContext) -> PolicyRefusal | None:
    """Answer a policy question before a send: may this message go out?

    ``context`` describes the conversation, the chosen channel thread, the author and the
    time. Return a ``PolicyRefusal`` (not raise it) to refuse the send with remedies, or
    ``None`` to allow it. Every implementation is asked; the first refusal wins. Must be pure
    and fast: no I/O.
    """


@hookspec
def omnilink_adapter_kits() -> Sequence[AdapterKit] | None:
    """Register test kits: how to drive a channel against its bundled fakes.

    Return ``omnilink.testing.AdapterKit`` instances (one per channel), or ``None``. The demo
    (``omnilink demo``) runs every installed channel that has a kit against its fakes served
    on 127.0.0.1; the kit's methods are also what the conformance suite asks of an adapter.
    """
