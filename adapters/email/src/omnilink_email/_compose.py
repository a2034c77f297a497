"""Canonical outbound parts → an RFC 5322 message (text + HTML alternative, attachments)."""

from __future__ import annotations

import html as html_lib
from collections.abc import Mapping
from datetime import datetime
from email import policy
from email.errors import HeaderParseError
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, formataddr

from omnilink import (
    AddressError,
    ContentError,
    HtmlPart,
    MediaPart,
    OutboundMessage,
    TextPart,
    html_to_text,
)

from ._subject import reply_subject

__all__ = ["HeaderInjectionError", "compose_message", "validate_address"]

_MAX_REFERENCES = 20


class HeaderInjectionError(ContentError):
    """A header value we were asked to write contains CR or LF (header injection)."""


def _clean(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise HeaderInjectionError(f"refusing a {name} header containing CR or LF: {value[:80]!r}")
    return value


def validate_address(address: str, *, channel: str = "email") -> str:
    """A bare ``local@domain`` address, lower-cased; AddressError when it is not one."""
    if "\r" in address or "\n" in address:
        raise AddressError("an email address must not contain CR or LF", channel=channel, address=address)
    candidate = address.strip()
    if candidate.lower().startswith("mailto:"):
        candidate = candidate[len("mailto:") :]
    if not candidate or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in candidate):
        raise AddressError(f"not an email address: {address!r}", channel=channel, address=address)
    try:
        parsed = Address(addr_spec=candidate)
    except (ValueError, IndexError, TypeError, HeaderParseError) as exc:
        raise AddressError(f"not an email address: {address!r}", channel=channel, address=address) from exc
    if not parsed.username or not parsed.domain or "." not in parsed.domain.strip("."):
        raise AddressError(f"not an email address: {address!r}", channel=channel, address=address)
    return parsed.addr_spec.lower()


def _references(outbound: OutboundMessage) -> list[str]:
    refs = [r for r in outbound.references if r]
    if outbound.reply_to_provider_id and outbound.reply_to_provider_id not in refs:
        refs.append(outbound.reply_to_provider_id)
    if len(refs) > _MAX_REFERENCES:
        # RFC 5322 lets us trim; keep the thread's root and the most recent ones.
        refs = refs[:1] + refs[-(_MAX_REFERENCES - 1) :]
    return refs


def compose_message(
    outbound: OutboundMessage,
    *,
    from_address: str,
    from_name: str | None,
    message_id: str,
    date: datetime,
    reply_to: str | None = None,
    default_subject: str = "Your message",
    attachments: Mapping[str, bytes] | None = None,
) -> EmailMessage:
    """Build the message for one planned send.

    Text parts and HTML parts become ``text/plain`` (with a ``text/html`` alternative when
    there is HTML); media parts become attachments, or inline ``multipart/related`` images
    when they carry a ``content_id``; ``attachments`` maps each media URL to its bytes.
    Replies get ``In-Reply-To``, ``References`` and exactly one ``Re:``; automatic messages
    ``Auto-Submitted: auto-replied``. Raises HeaderInjectionError for CR/LF in any header.
    """
    attachments = attachments or {}
    texts: list[str] = []
    htmls: list[str] = []
    media: list[MediaPart] = []
    for part in outbound.parts:
        if isinstance(part, TextPart):
            texts.append(part.text)
            htmls.append(f"<p>{html_lib.escape(part.text).replace(chr(10), '<br>')}</p>")
        elif isinstance(part, HtmlPart):
            texts.append(part.text if part.text is not None else html_to_text(part.html))
            htmls.append(part.html)
        elif isinstance(part, MediaPart):
            media.append(part)
    has_html = any(isinstance(p, HtmlPart) for p in outbound.parts)

    msg = EmailMessage(policy=policy.SMTP)
    recipient = validate_address(outbound.recipient)
    sender = validate_address(from_address)
    msg["From"] = formataddr((_clean("From", from_name), sender)) if from_name else sender
    msg["To"] = recipient
    is_reply = bool(outbound.reply_to_provider_id or outbound.references)
    subject = outbound.subject if outbound.subject is not None else default_subject
    _clean("Subject", subject)
    msg["Subject"] = reply_subject(subject) if is_reply else subject
    msg["Date"] = format_datetime(date)
    msg["Message-ID"] = f"<{_clean('Message-ID', message_id)}>"
    if reply_to:
        msg["Reply-To"] = validate_address(reply_to)
    if outbound.reply_to_provider_id:
        msg["In-Reply-To"] = f"<{_clean('In-Reply-To', outbound.reply_to_provider_id)}>"
    refs = _references(outbound)
    if refs:
        msg["References"] = " ".join(f"<{_clean('References', r)}>" for r in refs)
    if outbound.automatic:
        msg["Auto-Submitted"] = "auto-replied"

    msg.set_content("\n\n".join(texts) if texts else "")
    if has_html:
        msg.add_alternative("\n".join(htmls), subtype="html")
    html_body = msg.get_body(("html",)) if has_html else None
    for index, item in enumerate(media, 1):
        data = attachments.get(item.url)
        if data is None:
            raise ContentError(f"no data for attachment {item.url!r}")
        maintype, _, subtype = item.content_type.partition("/")
        if not subtype or "\n" in item.content_type or "\r" in item.content_type:
            maintype, subtype = "application", "octet-stream"
        filename = _clean("filename", item.filename or f"attachment-{index}")
        if item.content_id and isinstance(html_body, EmailMessage):
            html_body.add_related(
                data,
                maintype,
                subtype,
                cid=f"<{_clean('Content-ID', item.content_id)}>",
                filename=filename,
                disposition="inline",
            )
        elif maintype == "message":
            # RFC 2046 forbids base64 for message/*: attach the message itself (7bit/8bit).
            inner = BytesParser(policy=policy.SMTP).parsebytes(data)
            msg.add_attachment(inner, filename=filename)
        else:
            msg.add_attachment(data, maintype, subtype, filename=filename)
    return msg
