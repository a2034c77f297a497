"""Visitor, session and upload tokens, and the verified-identity check.

Every token is ``<fields>.<signature>`` where the signature is an HMAC-SHA256 of a purpose
label and the fields, keyed with the site's secret. The purpose label keeps a token of one
kind from being accepted as another; a session or upload token also names its visitor, so it
cannot be used by anyone holding a different visitor token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_VERSION = "v1"
_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")


class TokenError(ValueError):
    """A token is malformed, forged, expired or belongs to another visitor."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _sign(secret: str, purpose: str, *fields: str) -> str:
    message = "\x00".join((f"omnilink-livechat/{purpose}/{_VERSION}", *fields)).encode()
    return _b64(hmac.new(secret.encode(), message, hashlib.sha256).digest())


def _new_id(prefix: str) -> str:
    return f"{prefix}_{_b64(secrets.token_bytes(16))}"


def new_visitor_id() -> str:
    """A fresh random visitor id, such as ``vis_3q2-…``."""
    return _new_id("vis")


def new_session_id() -> str:
    return _new_id("ses")


@dataclass(frozen=True)
class VisitorClaims:
    visitor_id: str
    issued_at: datetime


def issue_visitor_token(secret: str, visitor_id: str, issued_at: datetime) -> str:
    """An anonymous visitor token the widget keeps: ``v1.<visitor id>.<issued at>.<signature>``."""
    if not _ID.match(visitor_id):
        raise ValueError(f"invalid visitor id {visitor_id!r}")
    stamp = str(int(issued_at.timestamp()))
    return f"{_VERSION}.{visitor_id}.{stamp}.{_sign(secret, 'visitor', visitor_id, stamp)}"


def verify_visitor_token(
    secret: str, token: str, *, now: datetime, max_age: timedelta = timedelta(days=365)
) -> VisitorClaims:
    """The visitor a token names; TokenError when it is malformed, forged, expired or future."""
    pieces = token.split(".")
    if len(pieces) != 4 or pieces[0] != _VERSION or not _ID.match(pieces[1]) or not pieces[2].isdigit():
        raise TokenError("malformed visitor token")
    _, visitor_id, stamp, signature = pieces
    if not hmac.compare_digest(signature, _sign(secret, "visitor", visitor_id, stamp)):
        raise TokenError("visitor token signature does not match")
    issued_at = datetime.fromtimestamp(int(stamp), UTC)
    if issued_at - now > timedelta(minutes=5):
        raise TokenError("visitor token issued in the future")
    if now - issued_at > max_age:
        raise TokenError("visitor token expired")
    return VisitorClaims(visitor_id, issued_at)


def issue_session_token(secret: str, visitor_id: str, session_id: str) -> str:
    """A chat session token ``<session id>.<signature>``, bound to one visitor."""
    return f"{session_id}.{_sign(secret, 'session', visitor_id, session_id)}"


def verify_session_token(secret: str, token: str, *, visitor_id: str) -> str:
    """The session id of a token issued to ``visitor_id``; TokenError otherwise."""
    session_id, _, signature = token.partition(".")
    if not _ID.match(session_id) or not signature:
        raise TokenError("malformed session token")
    if not hmac.compare_digest(signature, _sign(secret, "session", visitor_id, session_id)):
        raise TokenError("session token was not issued to this visitor")
    return session_id


def issue_upload_token(secret: str, visitor_id: str, upload_id: str) -> str:
    return f"{upload_id}.{_sign(secret, 'upload', visitor_id, upload_id)}"


def verify_upload_token(secret: str, token: str, *, visitor_id: str) -> str:
    upload_id, _, signature = token.partition(".")
    if not _ID.match(upload_id) or not signature:
        raise TokenError("malformed upload token")
    if not hmac.compare_digest(signature, _sign(secret, "upload", visitor_id, upload_id)):
        raise TokenError("upload token was not issued to this visitor")
    return upload_id


def identity_hash(identity_secret: str, identifier: str) -> str:
    """What the site's backend computes for a verified identity: hex HMAC-SHA256(secret, identifier).

    The same recipe as other chat widgets' "identity verification": the site signs the
    logged-in user's email address server-side and prints the hash into the page.
    """
    return hmac.new(identity_secret.encode(), identifier.encode(), hashlib.sha256).hexdigest()


def verify_identity(identity_secret: str, identifier: str, given_hash: str) -> bool:
    """Whether ``given_hash`` is the site's HMAC of ``identifier`` (constant-time)."""
    return hmac.compare_digest(identity_hash(identity_secret, identifier), given_hash.strip().lower())
