"""Helpers for the SMS adapter's tests: fakes and a Hub wired to them (imported, not a conftest)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from omnilink import Hub, MemoryStore
from omnilink.testing import FakeProvider, hub_target, routing_transport
from omnilink_sms import _plugin
from omnilink_sms.testing import FakeTwilio, FakeVonage

PUBLIC_URL = "https://helpdesk.example"
CUSTOMER = "+14155550123"
OTHER_CUSTOMER = "+14155550124"


def twilio_settings(fake: FakeTwilio) -> dict[str, Any]:
    return {"account_sid": fake.account_sid, "auth_token": fake.auth_token}


def twilio_config(fake: FakeTwilio, **extra: Any) -> dict[str, Any]:
    return {"senders": [{"number": n} for n in fake.numbers], "twilio": twilio_settings(fake), **extra}


def vonage_config(fake: FakeVonage, **extra: Any) -> dict[str, Any]:
    settings: dict[str, Any] = {"api_key": fake.api_key, "api_secret": fake.api_secret}
    if fake.webhook_token:
        settings["webhook_token"] = fake.webhook_token
    return {
        "senders": [{"number": n, "provider": "vonage"} for n in fake.numbers],
        "vonage": settings,
        **extra,
    }


@asynccontextmanager
async def open_hub(
    config: dict[str, Any],
    *fakes: FakeProvider,
    public_url: str | None = PUBLIC_URL,
    clock: Callable[[], datetime] | None = None,
) -> AsyncIterator[Hub]:
    hub = Hub(
        store=MemoryStore(),
        channels={"sms": config},
        plugins=[_plugin],
        load_entry_points=False,
        transport=routing_transport(*fakes),
        public_url=public_url,
        clock=clock,
    )
    async with hub:
        for fake in fakes:
            fake.target = hub_target(hub, "sms")
        yield hub
