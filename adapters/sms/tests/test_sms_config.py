"""SmsConfig validation: numbers in E.164, providers present, one default sender."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from omnilink_sms import SmsConfig

TWILIO: dict[str, Any] = {"account_sid": "AC" + "0" * 32, "auth_token": "t"}


def config(**kw: Any) -> SmsConfig:
    return SmsConfig.model_validate({"twilio": TWILIO, **kw})


def test_sender_numbers_are_stored_in_e164() -> None:
    parsed = config(senders=[{"number": "(415) 555-0100"}], default_region="US")
    assert parsed.senders[0].number == "+14155550100"
    assert parsed.senders[0].account == "+14155550100"


BAD: list[dict[str, Any]] = [
    {"senders": []},
    {"senders": [{"number": "12345"}]},
    {"senders": [{"number": "4155550100"}]},  # national format without default_region
    {"senders": [{"number": "+14155550100"}, {"number": "+1 415 555 0100"}]},
    {"senders": [{"number": "+14155550100", "messaging_service_sid": "MG" + "a" * 32}]},
    {"senders": [{"number": "+14155550100", "provider": "vonage"}]},
    {"senders": [{"number": "+14155550100"}], "default_sender": "+14155550101"},
    {"senders": [{"number": "+14155550100"}], "twilio": TWILIO | {"api_key_sid": "SK" + "1" * 32}},
    {"senders": [{"number": "+14155550100"}], "signature_mode": "off"},
]


@pytest.mark.parametrize("bad", BAD)
def test_invalid_settings_are_refused(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        config(**bad)


def test_default_sender_may_be_written_in_any_format() -> None:
    parsed = config(senders=[{"number": "+14155550100"}, {"number": "+14155550101"}],
                    default_sender="+1 (415) 555-0101")  # fmt: skip
    assert parsed.default_sender == "+1 (415) 555-0101"
