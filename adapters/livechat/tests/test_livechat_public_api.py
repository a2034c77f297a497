"""The distribution's public surface: exports, plugin registration, and the widget's safety rules."""

from __future__ import annotations

from importlib import resources

import omnilink_livechat
import omnilink_livechat.testing
from omnilink import Capabilities
from omnilink_livechat import _plugin


def test_all_is_sorted_and_every_name_exists() -> None:
    for module in (omnilink_livechat, omnilink_livechat.testing):
        assert module.__all__ == sorted(module.__all__)
        for name in module.__all__:
            assert hasattr(module, name), name


def test_plugin_registers_the_livechat_channel_and_its_kit() -> None:
    (spec,) = _plugin.omnilink_channels()
    assert spec.name == "livechat"
    assert spec.config_model is omnilink_livechat.LivechatConfig
    assert isinstance(spec.capabilities, Capabilities)
    assert spec.capabilities.typing
    assert spec.capabilities.read_receipts
    (kit,) = _plugin.omnilink_adapter_kits()
    assert kit.channel == "livechat"


def test_widget_never_inserts_markup() -> None:
    source = resources.files("omnilink_livechat").joinpath("static/widget.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
        assert sink not in source, sink
    assert "textContent" in source
