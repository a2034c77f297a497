"""Raw MIME → the canonical inbound item (a customer message, or a bounce's delivery failure)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser
from typing import Any

import nh3

from omnilink import (
    DeliveryStatus,
    HtmlPart,
    InboundDelivery,
    InboundMessage,
    MediaPart,
    OmnilinkError,
    Part,
    TextPart,
    html_to_text,
)

from ._mime import (
    NotAnEmailError,
    addresses,
    decode_bytes,
    decode_words,
    header_text,
    message_ids,
    parse_date,
    safe_filename,
    synthetic_message_id,
)
from ._quotes import strip_quoted
from ._subject import subject_key
from ._tokens import conversation_from_address, conversation_from_message_id

__all__ = ["attachment_bytes", "parse_inbound", "parse_message", "sanitize_html"]

_MAX_DEPTH = 40
_PARSER = BytesParser(policy=policy.compat32)
_URL_SCHEMES = set(nh3.ALLOWED_URL_SCHEMES) | {"cid"}
_AUTOMATIC_PRECEDENCE = {"bulk", "auto_reply", "junk", "auto-reply"}
_DAEMONS = {"mailer-daemon", "postmaster"}


def sanitize_html(html: str) -> str:
    """HTML safe to render: scripts, event handlers and unknown schemes removed (nh3).

    ``cid:`` URLs are kept so inline images still resolve against the message's parts.
    """
    return nh3.clean(html, url_schemes=_URL_SCHEMES)


@dataclass
class _Attachment:
    data: bytes
    content_type: str
    filename: str | None
    content_id: str | None
    inline: bool


@dataclass
class _Walk:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[_Attachment] = field(default_factory=list)
    delivery_status: list[Message] = field(default_factory=list)
    returned_headers: list[Message] = field(default_factory=list)


def _parse(raw: bytes) -> Message:
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise NotAnEmailError(f"expected the message as bytes, got {type(raw).__name__}")
    if not bytes(raw).strip():
        raise NotAnEmailError("empty input is not an email message")
    # The MIME tree is read with compat32: every header we use is decoded by ``header_text``
    # (encoded words, tolerant of junk), so policy.default's header objects would only add
    # cost (~5 ms a message in header parsing) and exceptions on malformed headers.
    return _PARSER.parsebytes(bytes(raw))


def _nested_bytes(msg: Message) -> bytes:
    try:
        return msg.as_bytes(policy=policy.compat32.clone(linesep="\r\n"))
    except (ValueError, TypeError, LookupError, UnicodeError, AttributeError, KeyError):
        return msg.as_string(policy=policy.compat32).encode("utf-8", "surrogateescape")


def _leaf_bytes(part: Message) -> bytes:
    data = part.get_payload(decode=True)
    if isinstance(data, bytes):
        return data
    payload = part.get_payload()
    return payload.encode("utf-8", "surrogateescape") if isinstance(payload, str) else b""


def _content_type(part: Message) -> str:
    value = header_text(part, "content-type")
    if not value:
        return part.get_default_type()
    ctype = value.split(";", 1)[0].strip().lower()
    return ctype if ctype.count("/") == 1 and " " not in ctype else "text/plain"


def _filename(part: Message) -> str | None:
    try:
        name = part.get_filename()
    except (ValueError, TypeError, LookupError, UnicodeError, IndexError):
        return None
    if name and "=?" in name:
        name = decode_words(name)  # RFC 2047 in a parameter: not allowed, but common
    return name


def _walk(part: Message, walk: _Walk, depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        return
    ctype = _content_type(part)
    if ctype in ("message/rfc822", "message/global"):
        inner = part.get_payload()
        inner_msg = inner[0] if isinstance(inner, list) and inner else None
        if isinstance(inner_msg, Message):
            walk.returned_headers.append(inner_msg)
            nested_name = _filename(part) or f"{header_text(inner_msg, 'subject') or 'message'}.eml"
            walk.attachments.append(
                _Attachment(_nested_bytes(inner_msg), "message/rfc822", nested_name, None, False)
            )
        return
    if ctype == "message/delivery-status":
        blocks = part.get_payload()
        if isinstance(blocks, list):
            walk.delivery_status.extend(b for b in blocks if isinstance(b, Message))
        else:
            text = decode_bytes(_leaf_bytes(part), "utf-8")
            for chunk in text.replace("\r\n", "\n").split("\n\n"):
                if chunk.strip():
                    walk.delivery_status.append(HeaderParser(policy=policy.compat32).parsestr(chunk))
        return
    if ctype == "text/rfc822-headers":
        text = decode_bytes(_leaf_bytes(part), part.get_content_charset())
        walk.returned_headers.append(HeaderParser(policy=policy.compat32).parsestr(text))
        return
    if part.is_multipart():
        children = part.get_payload()
        if isinstance(children, list):
            for child in children:
                if isinstance(child, Message):
                    _walk(child, walk, depth + 1)
        return
    disposition = (header_text(part, "content-disposition") or "").split(";", 1)[0].strip().lower()
    filename = _filename(part)
    data = _leaf_bytes(part)
    if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
        try:
            charset = part.get_content_charset()
        except (ValueError, LookupError, UnicodeError):
            charset = None
        text = decode_bytes(data, charset).replace("\r\n", "\n").replace("\r", "\n")
        (walk.plain if ctype == "text/plain" else walk.html).append(text)
        return
    content_id = header_text(part, "content-id")
    walk.attachments.append(
        _Attachment(
            data=data,
            content_type=ctype,
            filename=filename,
            content_id=content_id.strip().strip("<>").strip() or None if content_id else None,
            inline=disposition == "inline" or (content_id is not None and disposition != "attachment"),
        )
    )


def _media(walk: _Walk) -> list[MediaPart]:
    out: list[MediaPart] = []
    for index, item in enumerate(walk.attachments, 1):
        out.append(
            MediaPart(
                url=f"attachment:{hashlib.sha256(item.data).hexdigest()}",
                content_type=item.content_type,
                size=len(item.data),
                filename=safe_filename(item.filename, item.content_type, index),
                content_id=item.content_id,
            )
        )
    return out


def _body_parts(walk: _Walk) -> list[Part]:
    plain = "\n".join(walk.plain).rstrip("\n") if walk.plain else None
    if walk.html:
        clean = sanitize_html("\n".join(walk.html).rstrip("\n"))
        return [HtmlPart(html=clean, text=plain if plain is not None else html_to_text(clean))]
    if plain is not None:
        return [TextPart(text=plain)]
    return []


def _is_automatic(msg: Message, ctype: str, sender: str) -> bool:
    auto_submitted = (header_text(msg, "auto-submitted") or "").split(";", 1)[0].strip().lower()
    if auto_submitted and auto_submitted != "no":
        return True
    if header_text(msg, "x-autoreply") is not None or header_text(msg, "x-autorespond") is not None:
        return True
    if (header_text(msg, "precedence") or "").strip().lower() in _AUTOMATIC_PRECEDENCE:
        return True
    if ctype == "multipart/report":
        return True
    if (header_text(msg, "return-path") or "").strip() == "<>":
        return True
    return sender.split("@", 1)[0] in _DAEMONS


def _recipient_account(msg: Message) -> str:
    for _name, addr in addresses(msg, "delivered-to", "x-original-to", "to", "cc"):
        local, _, domain = addr.rpartition("@")
        return f"{local.split('+', 1)[0]}@{domain}"
    return ""


def _conversation_hint(msg: Message, refs: list[str], secret: str | bytes, prefix: str) -> str | None:
    recipients = addresses(msg, "to", "cc", "delivered-to", "x-original-to", "envelope-to")
    for _name, addr in recipients:
        found = conversation_from_address(secret, addr, prefix)
        if found:
            return found
    for ref in reversed(refs):
        found = conversation_from_message_id(secret, ref)
        if found:
            return found
    return None


def _delivery(
    msg: Message, walk: _Walk, account: str, at: datetime, summary: dict[str, Any]
) -> InboundDelivery | None:
    report_type = ""
    content_type = header_text(msg, "content-type") or ""
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "report-type":
            report_type = value.strip().strip('"').lower()
    if report_type != "delivery-status" or not walk.delivery_status:
        return None
    original: str | None = None
    for block in walk.delivery_status:
        ids = message_ids(header_text(block, "original-message-id"))
        original = original or (ids[0] if ids else None)
    for headers in walk.returned_headers:
        ids = message_ids(header_text(headers, "message-id"))
        original = original or (ids[0] if ids else None)
    if original is None:
        return None
    actions: list[str] = []
    errors: list[str] = []
    for block in walk.delivery_status:
        action = (header_text(block, "action") or "").strip().lower()
        if action:
            actions.append(action)
            detail = " ".join(
                v for v in (header_text(block, "status"), header_text(block, "diagnostic-code")) if v
            )
            recipient = header_text(block, "final-recipient") or header_text(block, "original-recipient")
            errors.append(f"{recipient}: {detail}" if recipient else detail)
    if "failed" in actions:
        status = DeliveryStatus.FAILED
    elif actions and all(a in ("delivered", "expanded") for a in actions):
        status = DeliveryStatus.DELIVERED
    elif actions and all(a in ("delivered", "expanded", "relayed") for a in actions):
        status = DeliveryStatus.SENT  # relayed onward to a system that sends no reports
    else:
        return None  # "delayed": nothing final to record; kept as an automatic message
    error = "; ".join(e for e in errors if e) or None if status is DeliveryStatus.FAILED else None
    return InboundDelivery(
        account=account, status=status, provider_message_id=original, error=error, at=at, raw=summary
    )


def parse_inbound(
    raw: bytes,
    *,
    account: str | None = None,
    token_secret: str | bytes | None = None,
    reply_prefix: str = "reply",
    received_at: datetime | None = None,
) -> InboundMessage | InboundDelivery:
    """Parse a raw message; a delivery-status report (RFC 3464) about one of our messages
    becomes an ``InboundDelivery`` (Action ``failed`` → FAILED, ``delivered``/``expanded`` →
    DELIVERED, ``relayed`` → SENT), anything else an ``InboundMessage`` (see
    ``parse_message``); a ``delayed`` report stays an automatic message.
    """
    return _guarded(raw, account, token_secret, reply_prefix, received_at, detect_delivery=True)


def _guarded(
    raw: bytes,
    account: str | None,
    token_secret: str | bytes | None,
    reply_prefix: str,
    received_at: datetime | None,
    *,
    detect_delivery: bool,
) -> InboundMessage | InboundDelivery:
    try:
        return _parse_inbound(raw, account, token_secret, reply_prefix, received_at, detect_delivery)
    except OmnilinkError:
        raise
    except Exception as exc:  # the boundary: malformed input must end in a typed error
        raise NotAnEmailError(f"unreadable email message: {exc!r}") from exc


def _parse_inbound(
    raw: bytes,
    account: str | None,
    token_secret: str | bytes | None,
    reply_prefix: str,
    received_at: datetime | None,
    detect_delivery: bool,
) -> InboundMessage | InboundDelivery:
    raw = bytes(raw)
    msg = _parse(raw)
    senders = addresses(msg, "from") or addresses(msg, "sender") or addresses(msg, "return-path")
    if not senders:
        raise NotAnEmailError("not an email message: no sender address (From)")
    sender_name, sender = senders[0]
    ctype = _content_type(msg)
    walk = _Walk()
    _walk(msg, walk)

    ids = message_ids(header_text(msg, "message-id"))
    provider_message_id = ids[0] if ids else synthetic_message_id(raw)
    refs = message_ids(header_text(msg, "references"))
    in_reply_to = message_ids(header_text(msg, "in-reply-to"))
    if in_reply_to and in_reply_to[0] not in refs:
        refs.append(in_reply_to[0])
    refs = [r for r in refs if r != provider_message_id][-100:]
    subject = header_text(msg, "subject")
    now = received_at or datetime.now(UTC)
    sent_at = parse_date(header_text(msg, "date")) or now
    mailbox = (account or _recipient_account(msg) or "unknown@invalid").lower()

    parts = _body_parts(walk)
    parts.extend(_media(walk))
    if not parts:
        parts = [TextPart(text="")]
    body = parts[0]
    display_text = (
        body.text if isinstance(body, TextPart) else body.text if isinstance(body, HtmlPart) else ""
    )

    summary: dict[str, Any] = {
        "message_id": provider_message_id,
        "from": sender,
        "to": [a for _, a in addresses(msg, "to")],
        "cc": [a for _, a in addresses(msg, "cc")],
        "reply_to": [a for _, a in addresses(msg, "reply-to")],
        "date": header_text(msg, "date"),
        "subject": subject,
        "content_type": ctype,
        "size": len(raw),
        "stripped_text": strip_quoted(display_text or ""),
    }
    for name in ("auto-submitted", "x-autoreply", "x-autorespond", "precedence", "list-id"):
        value = header_text(msg, name)
        if value is not None:
            summary[name] = value

    delivery = _delivery(msg, walk, mailbox, sent_at, summary) if detect_delivery else None
    if delivery is not None:
        return delivery

    hint = _conversation_hint(msg, refs, token_secret, reply_prefix) if token_secret else None
    return InboundMessage(
        account=mailbox,
        thread_key=sender,
        sender=sender,
        sender_name=sender_name or None,
        provider_message_id=provider_message_id,
        parts=tuple(parts),
        sent_at=sent_at,
        subject=subject,
        subject_key=subject_key(subject),
        references=tuple(refs),
        reply_to_provider_id=in_reply_to[0] if in_reply_to else (refs[-1] if refs else None),
        conversation_hint=hint,
        automatic=_is_automatic(msg, ctype, sender),
        raw=summary,
    )


def parse_message(
    raw: bytes,
    *,
    account: str | None = None,
    token_secret: str | bytes | None = None,
    reply_prefix: str = "reply",
    received_at: datetime | None = None,
) -> InboundMessage:
    """Parse a raw RFC 5322 message into the canonical inbound message.

    ``account`` is our mailbox (default: the first of Delivered-To, X-Original-To, To, Cc,
    without its ``+tag``); ``thread_key`` and ``sender`` are the From address, lower-cased.
    ``provider_message_id`` is the Message-ID without ``<>`` (a hash of the bytes when it is
    missing). Bodies become a ``TextPart``, or an ``HtmlPart`` (sanitised, with the plain
    alternative or a rendering as its text); attachments and inline images become
    ``MediaPart``s whose ``url`` is ``attachment:<sha256 of the bytes>`` (see
    ``attachment_bytes``). With ``token_secret``, a reply address or Message-ID we signed
    gives ``conversation_hint``. Auto-replies and bounces are flagged ``automatic``.

    Raises ``NotAnEmailError`` (a ``PayloadError``) for input that is not an email.
    """
    item = _guarded(raw, account, token_secret, reply_prefix, received_at, detect_delivery=False)
    assert isinstance(item, InboundMessage)
    return item


def attachment_bytes(raw: bytes) -> dict[str, bytes]:
    """The bytes of every attachment of a raw message, keyed by its ``MediaPart.url``."""
    walk = _Walk()
    _walk(_parse(bytes(raw)), walk)
    return {f"attachment:{hashlib.sha256(a.data).hexdigest()}": a.data for a in walk.attachments}
