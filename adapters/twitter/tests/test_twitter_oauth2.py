"""OAuth 2.0 user tokens: refresh once on a 401, rotate and persist, fail as CredentialsError."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from twitter_harness import Clock, dm, make_harness

from omnilink import CredentialsError
from omnilink_twitter.testing import FakeX

pytestmark = pytest.mark.anyio

CUSTOMER = "2000000001"


def oauth2_config(fake: FakeX, access: str, refresh: str | None) -> dict[str, Any]:
    return {
        "access_token": None,
        "access_token_secret": None,
        "oauth2_access_token": access,
        "oauth2_refresh_token": refresh,
        "oauth2_client_id": fake.settings.client_id,
    }


async def test_expired_token_is_refreshed_once_and_the_send_retried(fake: FakeX, clock: Clock) -> None:
    access, refresh = fake.issue_oauth2()
    fake.expire_access_tokens()
    harness, http = await make_harness(fake, clock, **oauth2_config(fake, access, refresh))
    async with http:
        fake.add_user(CUSTOMER)
        result = await harness.channel.send(dm(fake, "after refresh"))
    assert fake.refresh_count == 1
    assert result.provider_message_id == fake.sent_dms[0].id
    saved = json.loads(harness.state["oauth2_tokens"])
    assert saved["refresh_token"] == fake.refresh_token
    assert saved["access_token"] in fake.oauth2_tokens


async def test_concurrent_sends_share_one_refresh(fake: FakeX, clock: Clock) -> None:
    access, refresh = fake.issue_oauth2()
    fake.expire_access_tokens()
    harness, http = await make_harness(fake, clock, **oauth2_config(fake, access, refresh))
    async with http:
        fake.add_user(CUSTOMER)
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(harness.channel.send, dm(fake, f"concurrent {i}"))
    assert fake.refresh_count == 1
    assert len(fake.sent_dms) == 5


async def test_rotated_refresh_token_survives_a_restart(fake: FakeX, clock: Clock) -> None:
    access, refresh = fake.issue_oauth2()
    fake.expire_access_tokens()
    first, http1 = await make_harness(fake, clock, **oauth2_config(fake, access, refresh))
    async with http1:
        fake.add_user(CUSTOMER)
        await first.channel.send(dm(fake, "one"))
    fake.expire_access_tokens()
    # A new process starts from the original config, whose refresh token X has rotated away.
    second, http2 = await make_harness(fake, clock, **oauth2_config(fake, access, refresh))
    second.state.update(first.state)
    async with http2:
        await second.channel.send(dm(fake, "two"))
    assert fake.refresh_count == 2
    assert [e.text for e in fake.sent_dms] == ["one", "two"]


async def test_revoked_refresh_token_is_a_credentials_error(fake: FakeX, clock: Clock) -> None:
    access, refresh = fake.issue_oauth2()
    fake.expire_access_tokens()
    fake.revoke_refresh_token()
    harness, http = await make_harness(fake, clock, **oauth2_config(fake, access, refresh))
    async with http:
        fake.add_user(CUSTOMER)
        with pytest.raises(CredentialsError):
            await harness.channel.send(dm(fake))
    assert fake.sent_dms == []


async def test_token_without_refresh_token_is_a_credentials_error_on_401(fake: FakeX, clock: Clock) -> None:
    harness, http = await make_harness(fake, clock, **oauth2_config(fake, "stale", None))
    async with http:
        fake.add_user(CUSTOMER)
        with pytest.raises(CredentialsError):
            await harness.channel.send(dm(fake))
