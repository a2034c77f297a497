"""Verification of Meta's webhook signature (``X-Hub-Signature-256``)."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "x-hub-signature-256"
_PREFIX = "sha256="


def sign(app_secret: str | bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` header value Meta sends for ``body``."""
    key = app_secret.encode() if isinstance(app_secret, str) else app_secret
    return _PREFIX + hmac.new(key, body, hashlib.sha256).hexdigest()


def verify_signature(app_secret: str | bytes, body: bytes, header: str | None) -> bool:
    """Whether ``header`` is the correct ``X-Hub-Signature-256`` of the raw ``body``.

    The HMAC is computed over the bytes exactly as received (Meta escapes non-ASCII as
    ``\\u00e4`` before signing, so re-serialised JSON would not match) and compared in constant
    time. A missing header, another algorithm or a malformed digest is simply ``False``.
    """
    if header is None:
        return False
    value = header.strip()
    if value[: len(_PREFIX)].lower() != _PREFIX:
        return False
    try:
        given = value[len(_PREFIX) :].lower().encode("ascii")
    except UnicodeEncodeError:
        return False
    expected = sign(app_secret, body)[len(_PREFIX) :].encode("ascii")
    return hmac.compare_digest(expected, given)
