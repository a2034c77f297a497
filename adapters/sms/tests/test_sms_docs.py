"""The claims docs/adapters/sms.md makes about segments and settings hold."""

from __future__ import annotations

from pathlib import Path

from omnilink_sms import SmsConfig, segments

GUIDE = Path(__file__).resolve().parents[3] / "docs" / "adapters" / "sms.md"


def test_guide_segment_examples_are_true() -> None:
    s = segments("Your code is 1234 €")
    assert (s.encoding, s.count, s.units, s.parts) == ("GSM-7", 1, 20, ("Your code is 1234 €",))
    assert segments("Thanks 😀").encoding == "UCS-2"
    s = segments("“Hi” – it’s ready…", smart_encoding=True)
    assert s.text == '"Hi" - it\'s ready...'
    assert s.replacements["“"] == '"'


def test_guide_documents_every_setting() -> None:
    guide = GUIDE.read_text(encoding="utf-8")
    for name in SmsConfig.model_fields:
        assert f"`{name}`" in guide, f"setting {name!r} is not documented in {GUIDE.name}"
