"""Build the inbound-parse webhook requests Mailgun, SendGrid and Postmark would send."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from typing import Any

from omnilink import WebhookRequest

from .._webhooks import mailgun_signature

__all__ = ["encode_form", "mailgun_request", "postmark_request", "sendgrid_request"]

BASE_URL = "https://helpdesk.example/webhooks/email"
_CONTENT = {"content-type", "content-transfer-encoding", "mime-version"}


@dataclass(frozen=True)
class _File:
    filename: str
    content_type: str
    data: bytes
    content_id: str | None


@dataclass(frozen=True)
class _View:
    """The parsed view providers post: headers, text, HTML and files."""

    headers: list[tuple[str, str]]
    text: str | None
    html: str | None
    files: list[_File]


def _view(raw: bytes) -> _View:
    msg = BytesParser(policy=policy.compat32).parsebytes(raw)
    headers = [(k, str(v)) for k, v in msg.items() if k.lower() not in _CONTENT]
    text: str | None = None
    html: str | None = None
    files: list[_File] = []
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        data = part.get_payload(decode=True)
        data = data if isinstance(data, bytes) else b""
        disposition = (part.get("content-disposition") or "").split(";")[0].strip().lower()
        filename = part.get_filename()
        if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
            decoded = data.decode(part.get_content_charset() or "utf-8", errors="replace")
            if ctype == "text/plain" and text is None:
                text = decoded
            elif ctype == "text/html" and html is None:
                html = decoded
            continue
        cid = part.get("content-id")
        files.append(
            _File(filename or f"file{len(files) + 1}", ctype, data, str(cid).strip("<> ") if cid else None)
        )
    return _View(headers, text, html, files)


def encode_form(fields: list[tuple[str, bytes | str, str | None, str | None]]) -> tuple[str, bytes]:
    """A multipart/form-data body from (name, value, filename, content type); returns
    (content type header, body)."""
    boundary = "----omnilink" + secrets.token_hex(12)
    out = bytearray()
    for name, value, filename, content_type in fields:
        data = value.encode() if isinstance(value, str) else value
        out += f"--{boundary}\r\n".encode()
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"Content-Disposition: {disposition}\r\n".encode()
        if content_type:
            out += f"Content-Type: {content_type}\r\n".encode()
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return f"multipart/form-data; boundary={boundary}", bytes(out)


def _first_header(headers: list[tuple[str, str]], name: str) -> str:
    return next((v for k, v in headers if k.lower() == name), "")


def mailgun_request(
    raw: bytes,
    *,
    signing_key: str,
    recipient: str = "support@acme.test",
    timestamp: float | None = None,
    token: str | None = None,
    signature: str | None = None,
    mime: bool = False,
    url: str = BASE_URL,
) -> WebhookRequest:
    """What a Mailgun route that forwards to our URL posts for ``raw``, signed with
    ``signing_key`` (``mime=True``: the raw-MIME variant with ``body-mime``)."""
    ts = str(int(timestamp if timestamp is not None else time.time()))
    tok = token or secrets.token_hex(25)
    sig = signature if signature is not None else mailgun_signature(signing_key, ts, tok)
    view = _view(raw)
    fields: list[tuple[str, bytes | str, str | None, str | None]] = [
        ("recipient", recipient, None, None),
        ("sender", _first_header(view.headers, "from"), None, None),
        ("from", _first_header(view.headers, "from"), None, None),
        ("subject", _first_header(view.headers, "subject"), None, None),
    ]
    if mime:
        fields.append(("body-mime", raw, None, None))
    else:
        if view.text is not None:
            fields.append(("body-plain", view.text, None, None))
        if view.html is not None:
            fields.append(("body-html", view.html, None, None))
        fields.append(("message-headers", json.dumps([[k, v] for k, v in view.headers]), None, None))
        fields.append(("attachment-count", str(len(view.files)), None, None))
        cid_map = {}
        for index, item in enumerate(view.files, 1):
            fields.append((f"attachment-{index}", item.data, item.filename, item.content_type))
            if item.content_id:
                cid_map[f"<{item.content_id}>"] = f"attachment-{index}"
        if cid_map:
            fields.append(("content-id-map", json.dumps(cid_map), None, None))
    fields += [("timestamp", ts, None, None), ("token", tok, None, None), ("signature", sig, None, None)]
    content_type, body = encode_form(fields)
    return WebhookRequest.build(
        "POST", f"{url}/mailgun", {"content-type": content_type}, body, path="/mailgun"
    )


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def sendgrid_request(
    raw: bytes,
    *,
    secret: str,
    raw_mode: bool = False,
    via: str = "path",
    url: str = BASE_URL,
) -> WebhookRequest:
    """What SendGrid's Inbound Parse posts for ``raw``; the secret goes in the path
    (``via="path"``) or basic auth (``via="basic"``)."""
    view = _view(raw)
    fields: list[tuple[str, bytes | str, str | None, str | None]] = []
    if raw_mode:
        fields.append(("email", raw, None, None))
    else:
        block = "".join(f"{k}: {v}\n" for k, v in view.headers)
        fields += [
            ("headers", block, None, None),
            ("from", _first_header(view.headers, "from"), None, None),
            ("to", _first_header(view.headers, "to"), None, None),
            ("subject", _first_header(view.headers, "subject"), None, None),
        ]
        if view.text is not None:
            fields.append(("text", view.text, None, None))
        if view.html is not None:
            fields.append(("html", view.html, None, None))
        charsets = {"headers": "UTF-8", "text": "utf-8", "html": "utf-8", "subject": "UTF-8", "from": "UTF-8"}
        fields.append(("charsets", json.dumps(charsets), None, None))
        info: dict[str, Any] = {}
        for index, item in enumerate(view.files, 1):
            key = f"attachment{index}"
            fields.append((key, item.data, item.filename, item.content_type))
            info[key] = {"filename": item.filename, "name": item.filename, "type": item.content_type}
            if item.content_id:
                info[key]["content-id"] = item.content_id
        fields += [
            ("attachments", str(len(view.files)), None, None),
            ("attachment-info", json.dumps(info), None, None),
        ]
    fields.append(("envelope", json.dumps({"to": [], "from": ""}), None, None))
    content_type, body = encode_form(fields)
    headers = {"content-type": content_type}
    path = "/sendgrid"
    if via == "path":
        path = f"/sendgrid/{secret}"
    else:
        headers["authorization"] = _basic("sendgrid", secret)
    return WebhookRequest.build("POST", f"{url}{path}", headers, body, path=path)


def _address_full(value: str) -> list[dict[str, str]]:
    from email.utils import getaddresses

    return [{"Email": addr, "Name": name, "MailboxHash": ""} for name, addr in getaddresses([value]) if addr]


def postmark_request(raw: bytes, *, username: str, password: str, url: str = BASE_URL) -> WebhookRequest:
    """What Postmark's inbound webhook posts (JSON, basic auth in the URL) for ``raw``."""
    view = _view(raw)
    msg: Message = BytesParser(policy=policy.compat32).parsebytes(raw)
    from_value = str(msg.get("from", ""))
    to_value = str(msg.get("to", ""))
    cc_value = str(msg.get("cc", ""))
    from_full = _address_full(from_value)
    payload = {
        "From": from_full[0]["Email"] if from_full else "",
        "FromName": from_full[0]["Name"] if from_full else "",
        "FromFull": from_full[0] if from_full else {},
        "To": to_value,
        "ToFull": _address_full(to_value),
        "Cc": cc_value,
        "CcFull": _address_full(cc_value),
        "Subject": str(msg.get("subject", "")),
        "MessageID": hashlib.sha256(raw).hexdigest()[:36],
        "Date": str(msg.get("date", "")),
        "MailboxHash": "",
        "TextBody": view.text or "",
        "HtmlBody": view.html or "",
        "StrippedTextReply": "",
        "Headers": [
            {"Name": k, "Value": v}
            for k, v in view.headers
            if k.lower() not in {"from", "to", "cc", "subject", "date"}
        ],
        "Attachments": [
            {
                "Name": f.filename,
                "Content": base64.b64encode(f.data).decode(),
                "ContentType": f.content_type,
                "ContentLength": len(f.data),
                "ContentID": f.content_id or "",
            }
            for f in view.files
        ],
    }
    headers = {"content-type": "application/json", "authorization": _basic(username, password)}
    return WebhookRequest.build(
        "POST", f"{url}/postmark", headers, json.dumps(payload).encode(), path="/postmark"
    )
