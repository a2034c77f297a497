"""Live chat for omnilink: the widget, its ASGI server, visitor tokens and identities."""

from ._channel import CAPABILITIES, LivechatChannel, OfflineEmail
from ._config import LivechatConfig
from ._tokens import TokenError, VisitorClaims, identity_hash, issue_visitor_token, verify_visitor_token

__all__ = [
    "CAPABILITIES",
    "LivechatChannel",
    "LivechatConfig",
    "OfflineEmail",
    "TokenError",
    "VisitorClaims",
    "identity_hash",
    "issue_visitor_token",
    "verify_visitor_token",
]
