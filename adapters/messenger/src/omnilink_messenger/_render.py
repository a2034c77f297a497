"""Build Send API request bodies from planned omnilink parts."""

from __future__ import annotations

from typing import Any

from omnilink import (
    ButtonsPart,
    ContentError,
    MediaPart,
    Part,
    QuickRepliesPart,
    TextPart,
)

TEXT_MAX = 2000
"""Longest ``message.text`` the Send API accepts, in characters."""
BUTTON_TEXT_MAX = 640
"""Longest text above a button template."""
QUICK_REPLIES_MAX = 13
BUTTONS_MAX = 3
CHOICE_TITLE_MAX = 20
PAYLOAD_MAX = 1000
"""Longest quick-reply or postback payload."""
METADATA_MAX = 1000
ATTACHMENT_MAX_BYTES = 25 * 1024 * 1024
IMAGE_URL_MAX_BYTES = 8 * 1024 * 1024
"""Images fetched from a URL are refused above 8 MB (other kinds: 25 MB)."""


def button_object(title: str, payload: str | None, url: str | None) -> dict[str, str]:
    if url:
        return {"type": "web_url", "url": url, "title": title}
    return {"type": "postback", "title": title, "payload": payload if payload is not None else title}


def message_object(part: Part) -> dict[str, Any]:
    """The ``message`` object for one planned part (text, quick replies, buttons or media)."""
    if isinstance(part, TextPart):
        return {"text": part.text}
    if isinstance(part, QuickRepliesPart):
        return {
            "text": part.text,
            "quick_replies": [
                {"content_type": "text", "title": r.title, "payload": r.payload} for r in part.replies
            ],
        }
    if isinstance(part, ButtonsPart):
        return {
            "attachment": {
                "type": "template",
                "payload": {
                    "template_type": "button",
                    "text": part.text,
                    "buttons": [button_object(b.title, b.payload, b.url) for b in part.buttons],
                },
            }
        }
    if isinstance(part, MediaPart):
        return {"attachment": {"type": part.media_type, "payload": {"url": part.url, "is_reusable": True}}}
    raise ContentError(f"a {part.kind} part cannot be sent on Messenger as it is (plan it first)")


def send_body(
    recipient: str, message: dict[str, Any], options: dict[str, str], metadata: str | None
) -> dict[str, Any]:
    """A complete Send API body; ``options`` are the recorded messaging_type and tag."""
    body: dict[str, Any] = {
        "recipient": {"id": recipient},
        "messaging_type": options.get("messaging_type", "RESPONSE"),
    }
    if options.get("tag"):
        body["tag"] = options["tag"]
    msg = dict(message)
    if metadata is not None and len(metadata) <= METADATA_MAX:
        msg["metadata"] = metadata
    body["message"] = msg
    return body
