"""The public surface of omnilink_email: sorted, importable, registered as a plugin."""

from __future__ import annotations

import importlib.metadata

import omnilink_email
import omnilink_email.testing
from omnilink_email._plugin import omnilink_channels


def test_all_is_sorted_and_importable() -> None:
    for module in (omnilink_email, omnilink_email.testing):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert getattr(module, name) is not None


def test_plugin_registers_the_email_channel() -> None:
    (spec,) = omnilink_channels()
    assert spec.name == "email"
    assert spec.capabilities.thread_by_key is False
    assert spec.capabilities.subjects is True
    assert spec.capabilities.markup == "html"
    assert spec.capabilities.text_max is None
    assert spec.capabilities.media.max_count == 20


def test_entry_point_is_declared() -> None:
    points = importlib.metadata.entry_points(group="omnilink")
    assert any(p.name == "email" and p.value == "omnilink_email._plugin" for p in points)
