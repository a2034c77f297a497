"""The public surface: a sorted ``__all__`` that names exactly the public attributes."""

from __future__ import annotations

import types

import pytest

import omnilink_messenger
import omnilink_messenger.testing


@pytest.mark.parametrize("module", [omnilink_messenger, omnilink_messenger.testing])
def test_all_is_sorted_and_matches_the_public_names(module: types.ModuleType) -> None:
    exported = list(module.__all__)
    # isort-style order, as ruff keeps it: CONSTANTS, then Classes, then functions.
    assert exported == sorted(exported, key=lambda n: (0 if n.isupper() else 1 if n[0].isupper() else 2, n))
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert public == set(exported)


def test_plugin_registers_the_channel_and_its_kit() -> None:
    from omnilink_messenger import _plugin

    [spec] = _plugin.omnilink_channels()
    assert spec.name == "messenger"
    assert spec.config_model is omnilink_messenger.MessengerConfig
    [kit] = _plugin.omnilink_adapter_kits()
    assert kit.channel == "messenger"
