"""Account Activity webhook security: CRC answers and body signatures (HMAC-SHA256, base64)."""

from __future__ import annotations

import base64
import hashlib
import hmac

from omnilink import SignatureError

SIGNATURE_HEADER = "x-twitter-webhooks-signature"


def _digest(secret: str, data: bytes) -> str:
    mac = hmac.new(secret.encode(), data, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(mac).decode("ascii")


def crc_response_token(consumer_secret: str, crc_token: str) -> str:
    """The ``response_token`` answering X's CRC challenge ``GET ?crc_token=T``."""
    return _digest(consumer_secret, crc_token.encode())


def sign_body(consumer_secret: str, body: bytes) -> str:
    """The ``x-twitter-webhooks-signature`` header value X sends with ``body``."""
    return _digest(consumer_secret, body)


def verify_signature(consumer_secret: str, body: bytes, header: str | None, *, channel: str) -> None:
    """Raise SignatureError unless ``header`` signs the raw ``body`` (constant-time compare)."""
    if not header:
        raise SignatureError(f"missing {SIGNATURE_HEADER} header", channel=channel)
    expected = sign_body(consumer_secret, body)
    if not hmac.compare_digest(expected.encode(), header.strip().encode()):
        raise SignatureError(f"{SIGNATURE_HEADER} does not match the body", channel=channel)
