"""Phone numbers in E.164, the form every SMS handle and account is stored in."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from omnilink import AddressError

__all__ = ["to_e164"]


def to_e164(address: str, region: str | None = None, *, channel: str = "sms") -> str:
    """``address`` as E.164 (``+15551234567``); AddressError when it is not a valid number.

    National formats need ``region`` (an ISO country code such as ``US``).
    """
    return _to_e164(address, region, channel)


@lru_cache(maxsize=4096)
def _to_e164(address: str, region: str | None, channel: str) -> str:
    # Cached: every webhook parses the business and the customer number.
    raw = address.strip()
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        hint = "" if raw.startswith("+") or region else " (no default_region is configured)"
        raise AddressError(
            f"{address!r} is not a phone number{hint}: {exc}", channel=channel, address=address
        ) from exc
    if not phonenumbers.is_valid_number(number):
        raise AddressError(f"{address!r} is not a valid phone number", channel=channel, address=address)
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
