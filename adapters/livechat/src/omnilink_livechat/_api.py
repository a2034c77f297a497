"""The visitor API without a transport: what the socket and the HTTP fallback both do.

Every function takes plain values (headers, query, body) and returns ``(status, json)`` or
raises ``Refused``, so the same code answers Starlette requests and ``Channel.handle_webhook``
(the Hub's generic webhook route, which the conformance suite drives).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from omnilink import DeliveryStatus

from ._frames import MessageFrame, OfflineEmailFrame, stored_message_frame
from ._tokens import TokenError

if TYPE_CHECKING:
    from ._channel import LivechatChannel, Visitor


class Refused(Exception):
    """A visitor request refused with an error code, a reason and an HTTP status."""

    def __init__(self, code: str, detail: str, status: int = 400) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.detail}


def origin_allowed(channel: LivechatChannel, headers: Mapping[str, str]) -> bool:
    """Browsers always send Origin; a page on another site must be listed to talk to us.

    Without an Origin header (a server-side client) the request is allowed: Origin protects
    visitors' browsers, it does not authenticate anyone (the tokens do).
    """
    origin = headers.get("origin")
    if origin is None:
        return True
    allowed = channel.settings.allowed_origins
    if "*" in allowed or origin.lower() in allowed:
        return True
    return urlsplit(origin).netloc.lower() == headers.get("host", "").lower()


def first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first.get("loc", ()))
    return f"{where}: {first.get('msg', 'invalid')}" if where else str(first.get("msg", "invalid"))


def opt_str(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


async def accept(
    channel: LivechatChannel, visitor: Visitor, client_id: str, text: str, upload: str | None, base: str
) -> dict[str, Any]:
    """Check and store one visitor message; the ack carries the stored message id."""
    limit = channel.settings.max_text_chars
    if len(text) > limit:
        raise Refused("too_long", f"messages are at most {limit} characters", 413)
    if not text.strip() and not upload:
        raise Refused("empty", "a message needs text or an upload")
    try:
        return await channel.accept_message(visitor, client_id, text, upload, base)
    except TokenError as exc:
        raise Refused("bad_upload", str(exc)) from exc


async def offline_email(
    channel: LivechatChannel, visitor: Visitor, frame: OfflineEmailFrame, base: str
) -> dict[str, Any]:
    """The offline form: store the visitor's message, then hand the conversation to email."""
    from ._channel import normalize_email

    email = normalize_email(frame.email)
    if email is None:
        raise Refused("bad_email", "that does not look like an email address")
    if frame.text.strip():
        await accept(channel, visitor, frame.client_id or secrets.token_hex(8), frame.text, None, base)
    conversation_id = await channel.conversation_of(visitor)
    if conversation_id is None:
        raise Refused("nothing_to_continue", "write a message first")
    if channel.on_offline_email is None:
        raise Refused("email_unavailable", "this site does not continue chats on email", 501)
    from ._channel import OfflineEmail

    transcript = await channel.transcript(visitor.session_id)
    await channel.on_offline_email(
        OfflineEmail(conversation_id, email, visitor.session_id, visitor.visitor_id, transcript)
    )
    return {"type": "offline_email_ok", "email": email, "conversation": conversation_id}


def json_body(channel: LivechatChannel, raw: bytes) -> dict[str, Any]:
    if len(raw) > channel.settings.max_frame_bytes:
        raise Refused("too_big", f"bodies are at most {channel.settings.max_frame_bytes} bytes", 413)
    try:
        body = json.loads(raw or b"{}")
    except ValueError as exc:
        raise Refused("bad_json", "the body must be a JSON object") from exc
    if not isinstance(body, dict):
        raise Refused("bad_json", "the body must be a JSON object")
    return body


async def visitor_of(
    channel: LivechatChannel, headers: Mapping[str, str], query: Mapping[str, str], body: Mapping[str, Any]
) -> Visitor:
    """The visitor a request's ``Authorization: Bearer <token>`` names, in their session."""
    if not origin_allowed(channel, headers):
        raise Refused("origin", "origin not allowed", 403)
    auth = headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
    if not token:
        raise Refused("unauthorized", "a Bearer visitor token is required", 401)
    session = opt_str(body.get("session")) or query.get("session")
    try:
        return await channel.start(
            token,
            session,
            identity=opt_str(body.get("identity")),
            identity_hash=opt_str(body.get("identity_hash")),
        )
    except TokenError as exc:
        raise Refused("unauthorized", str(exc), 401) from exc


async def call(
    channel: LivechatChannel,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    raw: bytes,
    base: str,
) -> tuple[int, dict[str, Any]]:
    """Answer one HTTP API request (``path`` relative to the mount point)."""
    try:
        return await _route(channel, method.upper(), path, headers, query, raw, base)
    except Refused as exc:
        return exc.status, exc.body()


async def _route(
    channel: LivechatChannel,
    method: str,
    path: str,
    headers: Mapping[str, str],
    query: Mapping[str, str],
    raw: bytes,
    base: str,
) -> tuple[int, dict[str, Any]]:
    if (method, path) == ("POST", "/api/session"):
        return 200, await session(channel, headers, json_body(channel, raw))
    if (method, path) == ("POST", "/api/messages"):
        body = json_body(channel, raw)
        visitor = await visitor_of(channel, headers, query, body)
        try:
            frame = MessageFrame.model_validate({**body, "type": "message"})
        except ValidationError as exc:
            raise Refused("bad_frame", first_error(exc)) from exc
        ack = await accept(channel, visitor, frame.client_id, frame.text, frame.upload, base)
        return 200, {**ack, "session": visitor.session_token}
    if (method, path) == ("GET", "/api/messages"):
        visitor = await visitor_of(channel, headers, query, {})
        messages = await channel.history(visitor, query.get("since"))
        return 200, {
            "session": visitor.session_token,
            "messages": [stored_message_frame(m, visitor.visitor_id) for m in messages],
        }
    if (method, path) == ("POST", "/api/receipts"):
        body = json_body(channel, raw)
        visitor = await visitor_of(channel, headers, query, body)
        await receipt(channel, visitor, body)
        return 200, {"ok": True}
    if (method, path) == ("POST", "/api/offline-email"):
        body = json_body(channel, raw)
        visitor = await visitor_of(channel, headers, query, body)
        try:
            form = OfflineEmailFrame.model_validate({**body, "type": "offline_email"})
        except ValidationError as exc:
            raise Refused("bad_frame", first_error(exc)) from exc
        return 200, await offline_email(channel, visitor, form, base)
    raise Refused("not_found", f"no {method} {path}", 404)


async def session(
    channel: LivechatChannel, headers: Mapping[str, str], body: Mapping[str, Any]
) -> dict[str, Any]:
    """Get a visitor token (anonymous when none is given) and an open chat session."""
    if not origin_allowed(channel, headers):
        raise Refused("origin", "origin not allowed", 403)
    if body.get("site") != channel.settings.site_id:
        raise Refused("unknown_site", "unknown site", 404)
    try:
        visitor = await channel.start(
            opt_str(body.get("token")),
            opt_str(body.get("session")),
            identity=opt_str(body.get("identity")),
            identity_hash=opt_str(body.get("identity_hash")),
        )
    except TokenError as exc:
        raise Refused("unauthorized", str(exc), 401) from exc
    return {
        "visitor_id": visitor.visitor_id,
        "token": visitor.token,
        "session": visitor.session_token,
        "agents_available": channel.agents_available,
    }


async def receipt(channel: LivechatChannel, visitor: Visitor, body: Mapping[str, Any]) -> None:
    """A client without a socket acknowledges (``delivered``) or reads (``read``) an agent message.

    Only messages of the visitor's own session are accepted; the Hub keeps statuses monotonic.
    """
    provider_id = opt_str(body.get("provider_id"))
    try:
        status = DeliveryStatus(str(body.get("status", "delivered")))
    except ValueError as exc:
        raise Refused("bad_status", "status is delivered or read") from exc
    if provider_id is None or status not in (
        DeliveryStatus.SENT,
        DeliveryStatus.DELIVERED,
        DeliveryStatus.READ,
    ):
        raise Refused("bad_receipt", "a receipt names a provider_id and a status of delivered or read")
    messages = await channel.history(visitor, None)
    target = next((m for m in messages if provider_id in m.provider_ids), None)
    if target is None:
        raise Refused("unknown_message", "no such message in this session", 404)
    if status is DeliveryStatus.READ:
        await channel.accept_read(visitor, target.id)
    else:
        await channel.accept_status(provider_id, status)
