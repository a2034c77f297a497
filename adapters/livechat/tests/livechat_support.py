"""Shared constants and helpers of the live-chat tests."""

from __future__ import annotations

from typing import Any

SITE = "shop"
SECRET = "test-secret-0123456789abcdef"
IDENTITY_SECRET = "identity-secret-0123456789"


def livechat_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "site_id": SITE,
        "secret": SECRET,
        "identity_secret": IDENTITY_SECRET,
        "allowed_origins": ["https://shop.example"],
    }
    config.update(overrides)
    return config
