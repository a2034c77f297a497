"""Inbound-parse webhooks (Mailgun, SendGrid, Postmark) turned back into raw MIME.

Each provider posts a parsed view of the message; we rebuild one MIME message from it (same
headers, text, HTML and attachments, deterministic boundaries) and run it through
``parse_inbound``, so a webhook gives the same canonical message the raw MIME would.
Multipart form bodies are read with the standard library's email parser.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email import policy
from email.encoders import encode_base64
from email.header import Header
from email.message import Message
from email.mime.base import MIMEBase
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.parser import BytesParser, HeaderParser
from email.utils import formataddr
from typing import Any
from urllib.parse import parse_qsl

from omnilink import PayloadError

__all__ = [
    "Attachment",
    "FormField",
    "basic_auth",
    "mailgun_mime",
    "mailgun_signature",
    "parse_form",
    "postmark_mime",
    "rebuild_mime",
    "sendgrid_mime",
]

_SKIPPED = {"content-type", "content-transfer-encoding", "mime-version", "content-disposition"}


@dataclass(frozen=True)
class FormField:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Attachment:
    filename: str | None
    content_type: str
    data: bytes
    content_id: str | None = None


def parse_form(content_type: str | None, body: bytes) -> dict[str, FormField]:
    """Fields of an ``application/x-www-form-urlencoded`` or ``multipart/form-data`` body."""
    ctype = (content_type or "").split(";", 1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        text = body.decode("utf-8", errors="replace")
        return {k: FormField(k, v.encode()) for k, v in parse_qsl(text, keep_blank_values=True)}
    if ctype != "multipart/form-data" or "\r" in (content_type or "") or "\n" in (content_type or ""):
        raise PayloadError(f"expected a form body, got {content_type!r}")
    envelope = b"Content-Type: " + (content_type or "").encode("latin-1", "replace") + b"\r\n\r\n"
    msg = BytesParser(policy=policy.HTTP).parsebytes(envelope + body)
    if not msg.is_multipart():
        raise PayloadError("a multipart/form-data body without parts")
    fields: dict[str, FormField] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            data = b""
        has_type = part.get("content-type") is not None
        fields[name] = FormField(
            name, data, part.get_filename(), part.get_content_type() if has_type else None
        )
    return fields


def basic_auth(header: str | None) -> tuple[str, str] | None:
    """(user, password) from an ``Authorization: Basic …`` header."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


def mailgun_signature(signing_key: str, timestamp: str, token: str) -> str:
    """Mailgun's webhook signature: hex HMAC-SHA256(signing key, timestamp + token)."""
    return hmac.new(signing_key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()


def _header_value(value: str) -> str | Header:
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    value = " ".join(value.replace("\r", " ").replace("\n", " ").split())
    return value if value.isascii() else Header(value, "utf-8")


def rebuild_mime(
    headers: Iterable[tuple[str, str]],
    *,
    text: str | None,
    html: str | None,
    attachments: Sequence[Attachment] = (),
) -> bytes:
    """One MIME message from a provider's parsed view; identical input gives identical bytes."""
    headers = [(k, v) for k, v in headers if k and k.lower() not in _SKIPPED]
    seed = hashlib.sha256(
        json.dumps([headers, text, html, [hashlib.sha256(a.data).hexdigest() for a in attachments]]).encode()
    ).hexdigest()
    body: Message
    if text is not None and html is not None:
        body = MIMEMultipart("alternative", boundary=f"omnilink-alt-{seed[:24]}")
        body.attach(MIMEText(text, "plain", "utf-8"))
        body.attach(MIMEText(html, "html", "utf-8"))
    elif html is not None:
        body = MIMEText(html, "html", "utf-8")
    else:
        body = MIMEText(text or "", "plain", "utf-8")
    root = body
    if attachments:
        root = MIMEMultipart("mixed", boundary=f"omnilink-mixed-{seed[24:48]}")
        root.attach(body)
        for index, item in enumerate(attachments, 1):
            maintype, _, subtype = item.content_type.partition("/")
            if not subtype or any(c in item.content_type for c in "\r\n;"):
                maintype, subtype = "application", "octet-stream"
            part = MIMEBase(maintype, subtype)
            part.set_payload(item.data)
            encode_base64(part)
            filename = (item.filename or f"attachment-{index}").replace("\r", "").replace("\n", "")
            disposition = "inline" if item.content_id else "attachment"
            part.add_header("Content-Disposition", disposition, filename=("utf-8", "", filename))
            if item.content_id:
                part["Content-ID"] = f"<{item.content_id.strip('<> ')}>"
            root.attach(part)
    target: Any = root
    for name, value in headers:
        target[name] = _header_value(value)
    return root.as_bytes(policy=policy.compat32.clone(linesep="\r\n"))


def _with_envelope(headers: list[tuple[str, str]], recipients: Sequence[str]) -> list[tuple[str, str]]:
    """Add envelope recipients the headers do not show (Bcc, aliases) as X-Original-To, so a
    reply token in the envelope is still found."""
    shown = " ".join(
        v for k, v in headers if k.lower() in ("to", "cc", "delivered-to", "x-original-to")
    ).lower()
    for recipient in recipients:
        recipient = recipient.strip()
        if recipient and "@" in recipient and recipient.lower() not in shown:
            headers.append(("X-Original-To", recipient))
    return headers


def _field(form: dict[str, FormField], name: str) -> str | None:
    found = form.get(name)
    return found.text if found is not None else None


def mailgun_mime(form: dict[str, FormField]) -> bytes:
    """The message a Mailgun route posted (``body-mime`` when the route asked for raw MIME)."""
    raw = form.get("body-mime")
    if raw is not None:
        return raw.data
    try:
        pairs = json.loads(_field(form, "message-headers") or "[]")
        headers = [(str(k), str(v)) for k, v in pairs]
    except (ValueError, TypeError) as exc:
        raise PayloadError(f"message-headers is not a JSON list of pairs: {exc}") from exc
    present = {k.lower() for k, _ in headers}
    for name, key in (("From", "from"), ("To", "recipient"), ("Subject", "subject")):
        value = _field(form, key)
        if name.lower() not in present and value:
            headers.append((name, value))
    headers = _with_envelope(headers, (_field(form, "recipient") or "").split(","))
    try:
        count = int(_field(form, "attachment-count") or "0")
    except ValueError as exc:
        raise PayloadError("attachment-count is not a number") from exc
    try:
        cid_map = json.loads(_field(form, "content-id-map") or "{}")
        cids = {str(v): str(k).strip("<> ") for k, v in cid_map.items()}
    except (ValueError, TypeError, AttributeError) as exc:
        raise PayloadError(f"content-id-map is not a JSON object: {exc}") from exc
    attachments: list[Attachment] = []
    for index in range(1, count + 1):
        key = f"attachment-{index}"
        item = form.get(key)
        if item is None:
            raise PayloadError(f"{key} is missing")
        attachments.append(
            Attachment(
                item.filename, item.content_type or "application/octet-stream", item.data, cids.get(key)
            )
        )
    return rebuild_mime(
        headers, text=_field(form, "body-plain"), html=_field(form, "body-html"), attachments=attachments
    )


def _decoded(form: dict[str, FormField], name: str, charsets: dict[str, Any]) -> str | None:
    found = form.get(name)
    if found is None:
        return None
    from ._mime import decode_bytes

    charset = charsets.get(name)
    return decode_bytes(found.data, charset if isinstance(charset, str) else "utf-8")


def sendgrid_mime(form: dict[str, FormField]) -> bytes:
    """The message SendGrid's Inbound Parse posted, in raw mode (``email``) or parsed mode."""
    raw = form.get("email")
    if raw is not None:
        return raw.data
    try:
        charsets = json.loads(_field(form, "charsets") or "{}")
        info = json.loads(_field(form, "attachment-info") or "{}")
        if not isinstance(charsets, dict) or not isinstance(info, dict):
            raise TypeError("expected JSON objects")
    except (ValueError, TypeError) as exc:
        raise PayloadError(f"charsets/attachment-info are not JSON objects: {exc}") from exc
    block = _decoded(form, "headers", charsets) or ""
    parsed = HeaderParser(policy=policy.compat32).parsestr(block.replace("\r\n", "\n").strip() + "\n\n")
    headers = [(k, str(v)) for k, v in parsed.items()]
    present = {k.lower() for k, _ in headers}
    for name in ("from", "to", "cc", "subject"):
        value = _decoded(form, name, charsets)
        if name not in present and value:
            headers.append((name.capitalize(), value))
    try:
        envelope = json.loads(_field(form, "envelope") or "{}")
        envelope_to = envelope.get("to") if isinstance(envelope, dict) else None
    except ValueError as exc:
        raise PayloadError(f"envelope is not JSON: {exc}") from exc
    if isinstance(envelope_to, list):
        headers = _with_envelope(headers, [str(r) for r in envelope_to])
    attachments: list[Attachment] = []
    try:
        count = int(_field(form, "attachments") or "0")
    except ValueError as exc:
        raise PayloadError("attachments is not a number") from exc
    for index in range(1, count + 1):
        key = f"attachment{index}"
        item = form.get(key)
        if item is None:
            raise PayloadError(f"{key} is missing")
        found = info.get(key)
        meta: dict[str, Any] = found if isinstance(found, dict) else {}
        attachments.append(
            Attachment(
                meta.get("filename") or item.filename,
                meta.get("type") or item.content_type or "application/octet-stream",
                item.data,
                meta.get("content-id"),
            )
        )
    return rebuild_mime(
        headers,
        text=_decoded(form, "text", charsets),
        html=_decoded(form, "html", charsets),
        attachments=attachments,
    )


def _address(entry: Any) -> str | None:
    if isinstance(entry, dict) and entry.get("Email"):
        return formataddr((str(entry.get("Name") or ""), str(entry["Email"])))
    return None


def postmark_mime(payload: Any) -> bytes:
    """The message Postmark's inbound webhook posted as JSON."""
    if not isinstance(payload, dict):
        raise PayloadError("a Postmark inbound payload is a JSON object")
    try:
        headers: list[tuple[str, str]] = []
        sender = _address(payload.get("FromFull")) or payload.get("From")
        if sender:
            headers.append(("From", str(sender)))
        to = [a for a in map(_address, payload.get("ToFull") or []) if a] or (
            [payload["To"]] if payload.get("To") else []
        )
        if to:
            headers.append(("To", ", ".join(map(str, to))))
        cc = [a for a in map(_address, payload.get("CcFull") or []) if a] or (
            [payload["Cc"]] if payload.get("Cc") else []
        )
        if cc:
            headers.append(("Cc", ", ".join(map(str, cc))))
        for name, key in (("Subject", "Subject"), ("Date", "Date"), ("Reply-To", "ReplyTo")):
            if payload.get(key):
                headers.append((name, str(payload[key])))
        present = {k.lower() for k, _ in headers}
        for item in payload.get("Headers") or []:
            name, value = str(item["Name"]), str(item["Value"])
            if name.lower() not in present:
                headers.append((name, value))
        if payload.get("OriginalRecipient"):
            headers = _with_envelope(headers, [str(payload["OriginalRecipient"])])
        attachments = [
            Attachment(
                a.get("Name"),
                a.get("ContentType") or "application/octet-stream",
                base64.b64decode(a.get("Content") or "", validate=False),
                a.get("ContentID") or None,
            )
            for a in payload.get("Attachments") or []
        ]
    except (KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise PayloadError(f"not a Postmark inbound payload: {exc!r}") from exc
    text = payload.get("TextBody")
    html = payload.get("HtmlBody")
    return rebuild_mime(
        headers,
        text=str(text) if text else None,
        html=str(html) if html else None,
        attachments=attachments,
    )
