"""Map Graph API error bodies to omnilink's send errors."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from omnilink import (
    CredentialsError,
    PermanentSendError,
    RateLimitedError,
    RecipientUnavailableError,
    RetryableSendError,
    SendError,
)

CHANNEL = "messenger"
DEFAULT_RATE_LIMIT_BACKOFF = 60.0
"""Seconds to wait after a rate limit when Meta gives no hint."""

OUTSIDE_WINDOW = (10, 2018278)
UNAVAILABLE = (10, 2018108)
THREAD_OWNED_BY_OTHER_APP = (10, 2018300)
NO_MATCHING_USER = (100, 2018001)
ATTACHMENT_TOO_LARGE = (100, 2018109)


def _retry_after(headers: Mapping[str, str]) -> float:
    value = headers.get("retry-after")
    if value:
        try:
            return max(float(value), 0.0)
        except ValueError:
            pass
    usage = headers.get("x-business-use-case-usage")
    if usage:
        try:
            doc = json.loads(usage)
            minutes = max(
                float(item.get("estimated_time_to_regain_access", 0))
                for items in doc.values()
                for item in items
            )
            if minutes > 0:
                return minutes * 60.0
        except (ValueError, TypeError, AttributeError):
            pass
    return DEFAULT_RATE_LIMIT_BACKOFF


def error_from_response(status: int, body: bytes, headers: Mapping[str, str]) -> SendError:
    """The SendError for a failed Send API response (``status`` ≥ 400)."""
    err: dict[str, Any] = {}
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and isinstance(doc.get("error"), dict):
            err = doc["error"]
    except ValueError:
        pass
    code = err.get("code") if isinstance(err.get("code"), int) else None
    sub = err.get("error_subcode") if isinstance(err.get("error_subcode"), int) else None
    trace = err.get("fbtrace_id") or headers.get("x-fb-trace-id")
    request_id = str(trace) if trace else None
    text = str(err.get("message") or f"HTTP {status}")
    provider_code = None if code is None else (f"{code}/{sub}" if sub is not None else str(code))
    kw: dict[str, Any] = {"channel": CHANNEL, "provider_code": provider_code, "request_id": request_id}
    pair = (code, sub)
    if pair == OUTSIDE_WINDOW:
        return PermanentSendError(f"outside the messaging window: {text}", **kw)
    if code == 551 or pair in (UNAVAILABLE, NO_MATCHING_USER):
        return RecipientUnavailableError(f"the person cannot receive messages from this page: {text}", **kw)
    if pair == ATTACHMENT_TOO_LARGE:
        return PermanentSendError(f"attachment too large: {text}", **kw)
    if code in (4, 613, 17, 32) or status == 429:
        return RateLimitedError(f"rate limited: {text}", retry_after=_retry_after(headers), **kw)
    if code == 190:
        return CredentialsError(f"page access token invalid or expired: {text}", **kw)
    if code == 200 or (code is not None and 200 <= code < 300):
        return CredentialsError(f"permission missing: {text}", **kw)
    if code in (1, 2) or status >= 500 or err.get("is_transient") is True:
        return RetryableSendError(f"temporary Graph API error: {text}", **kw)
    return PermanentSendError(f"refused by Messenger: {text}", **kw)
