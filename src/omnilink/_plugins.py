"""The plugin host: one pluggy manager per Hub, entry-point loading, typed hook calls.

Nothing is loaded at import time. A plugin that fails to import or registers something
invalid is reported as a ``BrokenPlugin`` (or raised as ``PluginError`` in strict mode);
other plugins keep working.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any

import pluggy

from . import hookspecs
from ._channel import ChannelSpec, SendContext
from ._errors import PluginError, PolicyRefusal

if TYPE_CHECKING:
    from .testing._kit import AdapterKit

log = logging.getLogger("omnilink.plugins")

ENTRY_POINT_GROUP = hookspecs.PROJECT_NAME
HOOK_PREFIX = "omnilink_"


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be used, and why."""

    name: str
    distribution: str | None
    error: str


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that only accepts hooks named ``omnilink_*``."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT_NAME)
        self.add_hookspecs(hookspecs)

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is not None and not name.startswith(HOOK_PREFIX):
            raise PluginError(f"hook {name!r} of plugin {plugin!r} must start with {HOOK_PREFIX!r}")
        return opts


class PluginHost:
    """Loads plugins and calls their hooks with types; the only user of ``pm.hook``."""

    def __init__(self, *, strict: bool = False) -> None:
        self.strict = strict
        self.pm = PluginManager()
        self.broken: list[BrokenPlugin] = []
        self._distribution: dict[int, str | None] = {}

    def _fail(self, name: str, distribution: str | None, error: str) -> None:
        if self.strict:
            raise PluginError(
                f"plugin {name!r} ({distribution or 'no distribution'}): {error}", distribution=distribution
            )
        log.warning("plugin %s (%s) is broken: %s", name, distribution, error)
        self.broken.append(BrokenPlugin(name, distribution, error))

    def register(self, plugin: object, *, name: str | None = None, distribution: str | None = None) -> None:
        """Register a plugin object (a module or an instance with ``omnilink_*`` hooks)."""
        label = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        try:
            self.pm.register(plugin, name=label)
        except (PluginError, ValueError, pluggy.PluginValidationError) as exc:
            self._fail(label, distribution, str(exc))
            return
        self._distribution[id(plugin)] = distribution

    def load_entry_points(self, eps: Iterable[EntryPoint] | None = None) -> None:
        """Load every plugin published under the ``omnilink`` entry-point group."""
        for ep in eps if eps is not None else entry_points(group=ENTRY_POINT_GROUP):
            dist = ep.dist.name if ep.dist is not None else None
            if self.pm.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # a broken plugin must not break the host
                self._fail(ep.name, dist, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self.register(plugin, name=ep.name, distribution=dist)

    def channel_specs(self) -> dict[str, ChannelSpec]:
        """Every registered channel by name; duplicates and invalid specs reported."""
        specs: dict[str, ChannelSpec] = {}
        for impl in self.pm.hook.omnilink_channels.get_hookimpls():
            dist = self._distribution.get(id(impl.plugin))
            try:
                result: Any = impl.function()
            except Exception as exc:
                self._fail(impl.plugin_name, dist, f"omnilink_channels failed: {type(exc).__name__}: {exc}")
                continue
            for spec in result or ():
                if not isinstance(spec, ChannelSpec):
                    self._fail(
                        impl.plugin_name, dist, f"omnilink_channels returned {spec!r}, not a ChannelSpec"
                    )
                    continue
                if spec.name in specs:
                    other = specs[spec.name].distribution
                    self._fail(
                        impl.plugin_name,
                        dist,
                        f"channel {spec.name!r} is already registered by {other or 'another plugin'}",
                    )
                    continue
                specs[spec.name] = replace(spec, distribution=spec.distribution or dist)
        return specs

    def event_handlers(self) -> list[hookspecs.EventHandler]:
        handlers: list[hookspecs.EventHandler] = []
        for result in self.pm.hook.omnilink_event_handlers():
            handlers.extend(result or ())
        return handlers

    def adapter_kits(self) -> dict[str, AdapterKit]:
        """Every registered adapter kit by channel name (first registration wins)."""
        kits: dict[str, AdapterKit] = {}
        for impl in self.pm.hook.omnilink_adapter_kits.get_hookimpls():
            try:
                result: Any = impl.function()
            except Exception as exc:
                self._fail(
                    impl.plugin_name,
                    self._distribution.get(id(impl.plugin)),
                    f"omnilink_adapter_kits failed: {type(exc).__name__}: {exc}",
                )
                continue
            for kit in result or ():
                kits.setdefault(kit.channel, kit)
        return kits

    def send_policy(self, context: SendContext) -> PolicyRefusal | None:
        refusals: Sequence[PolicyRefusal | None] = self.pm.hook.omnilink_send_policy(context=context)
        for refusal in refusals:
            if refusal is not None:
                return refusal
        return None
