"""The channel's webhook entry point, config validation and the Graph error table, unit level."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest
from messenger_support import PAGE, Clock, open_channel
from pydantic import ValidationError

from omnilink import (
    AddressError,
    CredentialsError,
    InboundMessage,
    PermanentSendError,
    RateLimitedError,
    RecipientUnavailableError,
    RetryableSendError,
    SendError,
    SignatureError,
    WebhookError,
    WebhookRequest,
)
from omnilink_messenger import MessengerConfig
from omnilink_messenger._errors import error_from_response
from omnilink_messenger.testing import FakeGraphAPI

PSID = "6700000000000007"
URL = "https://hd.example/webhooks/messenger"


@pytest.mark.anyio
async def test_signed_post_yields_items_and_event_received(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_channel(fake, clock) as channel:
        result = await channel.handle_webhook(fake.user_message(PAGE, PSID, "hi"))
    assert result.response.status == 200
    [item] = result.items
    assert isinstance(item, InboundMessage)


@pytest.mark.anyio
async def test_mis_signed_post_raises_signature_error_403(fake: FakeGraphAPI, clock: Clock) -> None:
    request = fake.user_message(PAGE, PSID, "hi")
    forged = replace(request, headers={**request.headers, "x-hub-signature-256": "sha256=" + "0" * 64})
    async with open_channel(fake, clock) as channel:
        with pytest.raises(SignatureError) as info:
            await channel.handle_webhook(forged)
    assert info.value.status == 403


@pytest.mark.anyio
async def test_post_signed_with_another_app_secret_is_refused(clock: Clock) -> None:
    other = FakeGraphAPI(app_secret="someone-else")
    ours = FakeGraphAPI()
    async with open_channel(ours, clock) as channel:
        with pytest.raises(SignatureError):
            await channel.handle_webhook(other.user_message("1001", PSID, "hi"))


@pytest.mark.anyio
async def test_handshake_answers_the_challenge_as_plain_text(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_channel(fake, clock) as channel:
        result = await channel.handle_webhook(fake.verification_request(challenge="CHALLENGE_ACCEPTED"))
        with pytest.raises(SignatureError):
            await channel.handle_webhook(fake.verification_request(token="guess"))
        with pytest.raises(SignatureError):
            await channel.handle_webhook(WebhookRequest.build("GET", URL, {}))
    assert result.response.status == 200
    assert result.response.body == b"CHALLENGE_ACCEPTED"
    assert result.response.content_type.startswith("text/plain")
    assert result.items == ()


@pytest.mark.anyio
async def test_other_methods_are_refused(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_channel(fake, clock) as channel:
        with pytest.raises(WebhookError) as info:
            await channel.handle_webhook(WebhookRequest.build("PUT", URL, {}))
    assert info.value.status == 405


@pytest.mark.anyio
async def test_psids_are_digits(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_channel(fake, clock) as channel:
        assert channel.normalize_address(" 6700000000000007 ") == PSID
        for bad in ("", "abc", "+4912345", "١٢٣"):
            with pytest.raises(AddressError):
                channel.normalize_address(bad)


@pytest.mark.parametrize(
    "config",
    [
        {"pages": []},
        {"pages": [{"page_id": "1", "access_token": "a"}, {"page_id": "1", "access_token": "b"}]},
        {"pages": [{"page_id": "1", "access_token": "a"}], "graph_version": "21"},
        {"pages": [{"page_id": "x1", "access_token": "a"}]},
    ],
)
def test_invalid_configs_are_refused(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        MessengerConfig.model_validate({"app_secret": "s", "verify_token": "t", **config})


def test_secrets_do_not_leak_into_config_repr() -> None:
    config = MessengerConfig.model_validate(
        {
            "app_secret": "APPSECRET",
            "verify_token": "VT",
            "pages": [{"page_id": "1", "access_token": "PAGETOKEN"}],
        }
    )
    assert "APPSECRET" not in repr(config)
    assert "PAGETOKEN" not in repr(config)
    assert config.graph_base_url == "https://graph.facebook.com"


def _err(code: int | None, sub: int | None = None, status: int = 400, **extra: Any) -> bytes:
    err: dict[str, Any] = {"message": "m", "type": "OAuthException", "fbtrace_id": "TRACE", **extra}
    if code is not None:
        err["code"] = code
    if sub is not None:
        err["error_subcode"] = sub
    return json.dumps({"error": err}).encode()


@pytest.mark.parametrize(
    ("status", "body", "expected", "code"),
    [
        (400, _err(10, 2018278), PermanentSendError, "10/2018278"),
        (400, _err(10, 2018108), RecipientUnavailableError, "10/2018108"),
        (400, _err(551), RecipientUnavailableError, "551"),
        (400, _err(100, 2018001), RecipientUnavailableError, "100/2018001"),
        (400, _err(100, 2018109), PermanentSendError, "100/2018109"),
        (400, _err(100), PermanentSendError, "100"),
        (400, _err(10, 2018300), PermanentSendError, "10/2018300"),
        (400, _err(613), RateLimitedError, "613"),
        (400, _err(4), RateLimitedError, "4"),
        (401, _err(190), CredentialsError, "190"),
        (403, _err(200), CredentialsError, "200"),
        (500, _err(2), RetryableSendError, "2"),
        (503, b"<html>Service Unavailable</html>", RetryableSendError, None),
        (400, _err(1, is_transient=True), RetryableSendError, "1"),
    ],
)
def test_graph_errors_map_to_typed_send_errors(
    status: int, body: bytes, expected: type[SendError], code: str | None
) -> None:
    error = error_from_response(status, body, {})
    assert type(error) is expected
    assert error.provider_code == code
    assert error.channel == "messenger"
    if code is not None:
        assert error.request_id == "TRACE"


def test_window_refusal_is_not_retryable_and_rate_limits_carry_a_backoff() -> None:
    window = error_from_response(400, _err(10, 2018278), {})
    assert not isinstance(window, RetryableSendError)
    limited = error_from_response(400, _err(613), {"retry-after": "12"})
    assert isinstance(limited, RateLimitedError)
    assert limited.retry_after == 12.0
    default = error_from_response(400, _err(4), {})
    assert isinstance(default, RateLimitedError)
    assert default.retry_after == 60.0


def test_trace_header_is_used_when_the_body_has_none() -> None:
    error = error_from_response(502, b"", {"x-fb-trace-id": "HDRTRACE"})
    assert error.request_id == "HDRTRACE"
