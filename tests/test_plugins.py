"""The plugin host: entry points, broken plugins, duplicates, strict mode, documented hooks."""

from __future__ import annotations

import inspect
from dataclasses import replace
from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import omnilink
from omnilink import ChannelSpec, PluginError, hookimpl, hookspecs
from omnilink._plugins import PluginHost
from omnilink.testing import LoopbackPlugin
from omnilink.testing._loopback import LOOPBACK_SPEC

ROOT = Path(__file__).resolve().parents[1]


class Duplicate:
    @hookimpl
    def omnilink_channels(self) -> list[ChannelSpec]:
        return [replace(LOOPBACK_SPEC, summary="impostor")]


class Exploding:
    @hookimpl
    def omnilink_channels(self) -> list[ChannelSpec]:
        raise RuntimeError("boom")


class WrongReturn:
    @hookimpl
    def omnilink_channels(self) -> list[object]:
        return ["not a spec"]


class BadPrefix:
    @hookimpl
    def channels(self) -> list[ChannelSpec]:
        return []


def _entry_point(name: str, value: str) -> EntryPoint:
    return EntryPoint(name=name, value=value, group="omnilink")


def test_broken_plugins_are_reported_and_others_keep_working() -> None:
    host = PluginHost()
    host.register(LoopbackPlugin(), name="loopback")
    for plugin in (Duplicate(), Exploding(), WrongReturn()):
        host.register(plugin)
    host.load_entry_points([_entry_point("missing", "omnilink_no_such_module:plugin")])
    specs = host.channel_specs()
    assert list(specs) == ["loopback"]
    assert specs["loopback"].summary != "impostor"
    errors = " | ".join(b.error for b in host.broken)
    assert "already registered" in errors
    assert "boom" in errors
    assert "not a ChannelSpec" in errors
    assert "import failed" in errors


def test_strict_mode_makes_a_broken_plugin_fatal() -> None:
    host = PluginHost(strict=True)
    with pytest.raises(PluginError, match="import failed"):
        host.load_entry_points([_entry_point("missing", "omnilink_no_such_module:plugin")])
    host = PluginHost(strict=True)
    host.register(LoopbackPlugin(), name="loopback")
    host.register(Duplicate())
    with pytest.raises(PluginError, match="already registered"):
        host.channel_specs()


def test_hooks_must_use_the_prefix() -> None:
    host = PluginHost()
    host.register(BadPrefix())
    assert any("must start with 'omnilink_'" in b.error for b in host.broken)


def test_nothing_is_loaded_at_import_and_each_host_is_separate() -> None:
    first, second = PluginHost(), PluginHost()
    first.register(LoopbackPlugin(), name="loopback")
    assert "loopback" in first.channel_specs()
    assert second.channel_specs() == {}


def test_every_hook_is_documented_in_code_and_in_docs() -> None:
    guide = (ROOT / "docs" / "plugins.md").read_text()
    hooks = [
        name for name, _ in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("omnilink_")
    ]
    assert hooks, "no hooks found"
    for name in hooks:
        doc = inspect.getdoc(getattr(hookspecs, name)) or ""
        assert "None" in doc, f"{name} must say what returning None means"
        assert name in guide, f"{name} is not in docs/plugins.md"


def test_public_names_match_all() -> None:
    assert len(set(omnilink.__all__)) == len(omnilink.__all__)
    for name in omnilink.__all__:
        assert hasattr(omnilink, name), name
    public = {
        name
        for name, value in vars(omnilink).items()
        if not name.startswith("_") and not inspect.ismodule(value) and name not in {"annotations"}
    }
    assert public == set(omnilink.__all__)
