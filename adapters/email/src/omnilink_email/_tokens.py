"""Reply tokens and Message-IDs that carry a conversation id nobody else can forge.

A reply token is ``<conversation id>.<mac>`` where the mac is a truncated HMAC-SHA256 of the
conversation id under the channel's secret, in lower-case base32 (mail systems may change the
case of local parts). It travels in ``Reply-To: reply+<token>@<inbound domain>``; our
Message-IDs are ``<omnilink.<conversation id>.<nonce>.<mac>@<domain>>`` with the mac over
``conversation id.nonce``, so a reply that kept only ``In-Reply-To`` still finds its
conversation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

_SAFE_ID = re.compile(r"^[a-z0-9_\-]{1,40}$")
_MAC_CHARS = 16  # 80 bits


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _mac(secret: str | bytes, message: str) -> str:
    digest = hmac.new(_key(secret), message.encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().lower()[:_MAC_CHARS]


def _encode_id(conversation_id: str) -> str:
    if _SAFE_ID.match(conversation_id):
        return conversation_id
    # Anything else is carried as lower-case base32, marked by a leading "x-".
    return "x-" + base64.b32encode(conversation_id.encode()).decode().rstrip("=").lower()


def _decode_id(encoded: str) -> str | None:
    if encoded.startswith("x-"):
        body = encoded[2:].upper()
        try:
            return base64.b32decode(body + "=" * (-len(body) % 8)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
    return encoded


def reply_token(secret: str | bytes, conversation_id: str) -> str:
    """The signed token for ``conversation_id`` (safe in the local part of an address)."""
    encoded = _encode_id(conversation_id)
    return f"{encoded}.{_mac(secret, encoded)}"


def verify_reply_token(secret: str | bytes, token: str) -> str | None:
    """The conversation id a token names, or None when it is not one we signed."""
    token = token.strip().lower()
    encoded, _, mac = token.rpartition(".")
    if not encoded or not hmac.compare_digest(mac, _mac(secret, encoded)):
        return None
    return _decode_id(encoded)


def reply_address(secret: str | bytes, conversation_id: str, domain: str, prefix: str = "reply") -> str:
    """``<prefix>+<token>@<domain>``."""
    return f"{prefix}+{reply_token(secret, conversation_id)}@{domain}"


def conversation_from_address(secret: str | bytes, address: str, prefix: str = "reply") -> str | None:
    """The conversation id of a reply address we issued, or None."""
    local, _, _domain = address.rpartition("@")
    head, plus, token = local.partition("+")
    if not plus or head.lower() != prefix.lower():
        return None
    return verify_reply_token(secret, token)


def make_message_id(
    secret: str | bytes, conversation_id: str, domain: str, *, stable_key: str | None = None
) -> str:
    """A Message-ID (without angle brackets) that carries the conversation id.

    With ``stable_key`` (e.g. the send's idempotency key) the id is the same on every retry,
    so a recipient's mail system can drop a duplicate delivery; otherwise it is random.
    """
    encoded = _encode_id(conversation_id)
    if stable_key is None:
        nonce = secrets.token_hex(8)
    else:
        nonce = hmac.new(_key(secret), f"message-id:{stable_key}".encode(), hashlib.sha256).hexdigest()[:16]
    return f"omnilink.{encoded}.{nonce}.{_mac(secret, f'{encoded}.{nonce}')}@{domain}"


def conversation_from_message_id(secret: str | bytes, message_id: str) -> str | None:
    """The conversation id of a Message-ID we made, or None."""
    local = message_id.strip("<> ").rpartition("@")[0].lower()
    if not local.startswith("omnilink."):
        return None
    pieces = local[len("omnilink.") :].rsplit(".", 2)
    if len(pieces) != 3:
        return None
    encoded, nonce, mac = pieces
    if not hmac.compare_digest(mac, _mac(secret, f"{encoded}.{nonce}")):
        return None
    return _decode_id(encoded)
