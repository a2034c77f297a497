"""Provider wire facts shared by the channel and the fakes: keywords, statuses, error codes."""

from __future__ import annotations

import email.utils
import json
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from omnilink import (
    CredentialsError,
    DeliveryStatus,
    PermanentSendError,
    RateLimitedError,
    RecipientUnavailableError,
    RetryableSendError,
    SendError,
)

OPT_OUT_KEYWORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"})
OPT_IN_KEYWORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_KEYWORDS = frozenset({"HELP", "INFO"})

TWILIO_STATUS: dict[str, DeliveryStatus] = {
    "queued": DeliveryStatus.QUEUED,
    "accepted": DeliveryStatus.QUEUED,
    "scheduled": DeliveryStatus.QUEUED,
    "sending": DeliveryStatus.SENT,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "read": DeliveryStatus.READ,
    "undelivered": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "canceled": DeliveryStatus.FAILED,
}
"""Twilio MessageStatus → canonical status (``received``/``receiving`` are inbound-only)."""

VONAGE_RECEIPT_STATUS: dict[str, DeliveryStatus] = {
    "accepted": DeliveryStatus.SENT,
    "buffered": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "expired": DeliveryStatus.UNDELIVERED,
    "failed": DeliveryStatus.FAILED,
    "rejected": DeliveryStatus.FAILED,
}
"""Vonage delivery-receipt status → canonical status (``unknown`` is ignored)."""

TWIML_EMPTY = b'<?xml version="1.0" encoding="UTF-8"?><Response/>'


def keyword_of(body: str) -> str:
    """The body as a compliance keyword: trimmed and upper-cased (STOP, START, HELP …)."""
    return body.strip().upper()


def twiml(message: str | None = None) -> bytes:
    """A TwiML answer: empty, or one reply message."""
    if message is None:
        return TWIML_EMPTY
    return (
        b'<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
        + escape(message).encode("utf-8")
        + b"</Message></Response>"
    )


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Parse a Retry-After header: delta seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def twilio_error(
    status: int,
    body: bytes,
    *,
    channel: str,
    recipient: str,
    retry_after: float | None,
    request_id: str | None,
    sender: str = "",
) -> SendError:
    """Map a Twilio error response to the SendError the dispatcher acts on."""
    code: str | None = None
    message = ""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if isinstance(data, dict):
        code = str(data["code"]) if data.get("code") is not None else None
        message = str(data.get("message") or "")
    detail = f"Twilio {status}" + (f" error {code}" if code else "") + (f": {message}" if message else "")
    common = {"channel": channel, "provider_code": code, "request_id": request_id}
    if status == 401 or code == "20003":
        return CredentialsError(f"{detail} (check account SID, auth token or API key)", **common)
    if status == 429 or code == "20429":
        return RateLimitedError(detail, retry_after=retry_after, **common)
    if status >= 500:
        return RetryableSendError(detail, retry_after=retry_after, **common)
    if code in {"21211", "21614", "21408"}:
        what = {
            "21211": "is not a valid To number",
            "21614": "is not a mobile number",
            "21408": "is in a region this account may not send to",
        }[code]
        return PermanentSendError(f"{recipient} {what} ({detail})", **common)
    if code == "21610":
        return RecipientUnavailableError(
            f"{recipient} opted out of this sender (replied STOP) and must text START first ({detail})",
            **common,
        )
    if code == "21606":
        return PermanentSendError(
            f"{sender or 'the From number'} is not a message-capable number of this account ({detail})",
            **common,
        )
    return PermanentSendError(detail, **common)


VONAGE_ERRORS: dict[str, str] = {
    "1": "throttled",
    "2": "missing parameters",
    "3": "invalid parameters",
    "4": "invalid credentials",
    "5": "internal error",
    "6": "invalid message",
    "7": "number barred",
    "8": "partner account barred",
    "9": "partner quota exceeded",
    "15": "invalid sender address",
}


def vonage_error(
    status: str, text: str, *, channel: str, recipient: str, request_id: str | None
) -> SendError:
    """Map a non-zero Vonage message status to a SendError."""
    label = VONAGE_ERRORS.get(status, "error")
    detail = f"Vonage status {status} ({label})" + (f": {text}" if text else "")
    common = {"channel": channel, "provider_code": status, "request_id": request_id}
    if status == "1":
        return RateLimitedError(detail, retry_after=1.0, **common)
    if status in {"4", "14"}:
        return CredentialsError(detail, **common)
    if status in {"5", "9"}:
        return RetryableSendError(detail, retry_after=60.0 if status == "9" else None, **common)
    if status == "7":
        return RecipientUnavailableError(f"{recipient} is barred from receiving ({detail})", **common)
    return PermanentSendError(f"{detail} (to {recipient})", **common)
