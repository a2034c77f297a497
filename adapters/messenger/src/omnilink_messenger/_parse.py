"""Turn a verified Messenger webhook body into omnilink ``Inbound`` items, every event of it.

Threads: ``account`` is the page id, ``thread_key`` and the contact's handle address are the
customer's page-scoped id (PSID). Times are epoch milliseconds on the wire.
"""

from __future__ import annotations

import json
import logging
import mimetypes
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError

from omnilink import (
    DeliveryStatus,
    Inbound,
    InboundDelivery,
    InboundMessage,
    InboundReaction,
    LocationPart,
    MediaPart,
    Part,
    PayloadError,
    PostbackPart,
    Reaction,
    TextPart,
    UnknownPart,
)

from ._wire import WireAttachment, WireEvent, WireMessage, WirePayload

log = logging.getLogger("omnilink.channel.messenger")

_MEDIA_TYPES = {"image", "audio", "video", "file"}
_VIDEO_LIKE = {"reel", "ig_reel"}


def from_ms(ms: int) -> datetime:
    """An aware UTC datetime from epoch milliseconds."""
    return datetime.fromtimestamp(ms / 1000, UTC)


def to_ms(at: datetime) -> int:
    """Epoch milliseconds of an aware datetime."""
    return round(at.timestamp() * 1000)


def _content_type(kind: str, url: str | None) -> str:
    guessed = mimetypes.guess_type(urlsplit(url).path)[0] if url else None
    if kind == "file":
        return guessed or "application/octet-stream"
    if guessed and guessed.startswith(kind + "/"):
        return guessed
    # Meta names the kind but not the format; a wildcard keeps MediaPart.media_type right.
    return f"{kind}/*"


def attachment_part(att: WireAttachment) -> Part:
    """One attachment as a part: media by URL, a location, or kept as an unknown part."""
    payload = att.payload or {}
    url = payload.get("url")
    kind = att.type
    if isinstance(url, str) and url:
        if kind in _MEDIA_TYPES:
            return MediaPart(url=url, content_type=_content_type(kind, url), filename=_filename(url, kind))
        if kind == "sticker":
            return MediaPart(url=url, content_type=_content_type("image", url))
        if kind in _VIDEO_LIKE:
            title = payload.get("title")
            return MediaPart(
                url=url,
                content_type=_content_type("video", url),
                caption=title if isinstance(title, str) and title else None,
            )
    coords = payload.get("coordinates")
    if kind == "location" and isinstance(coords, dict):
        try:
            return LocationPart(latitude=float(coords["lat"]), longitude=float(coords["long"]))
        except (KeyError, TypeError, ValueError):
            pass
    data: dict[str, Any] = dict(payload)
    if att.title is not None:
        data.setdefault("title", att.title)
    return UnknownPart(provider_type=kind, data=data)


def _filename(url: str, kind: str) -> str | None:
    if kind != "file":
        return None
    name = urlsplit(url).path.rsplit("/", 1)[-1]
    return name or None


def message_parts(message: WireMessage) -> tuple[Part, ...]:
    """The parts of one message; a quick-reply tap becomes a PostbackPart (title = text)."""
    parts: list[Part] = []
    if message.quick_reply is not None:
        parts.append(PostbackPart(title=message.text or "", payload=message.quick_reply.payload))
    elif message.text is not None:
        parts.append(TextPart(text=message.text))
    parts.extend(attachment_part(att) for att in message.attachments)
    if not parts:
        kind = "unsupported" if message.is_unsupported else "empty"
        parts.append(UnknownPart(provider_type=kind, data={}))
    return tuple(parts)


class _Batch:
    """Collects the items of one payload with their event times, to sort them at the end."""

    def __init__(self, app_id: str | None) -> None:
        self.app_id = app_id
        self.items: list[tuple[int, int, Inbound]] = []

    def add(self, ms: int, item: Inbound) -> None:
        self.items.append((ms, len(self.items), item))

    def event(
        self, page_id: str, entry_ms: int | None, ev: WireEvent, raw: dict[str, Any], standby: bool
    ) -> None:
        ms = ev.timestamp if ev.timestamp is not None else entry_ms
        if ms is None:
            raise PayloadError("a Messenger event has neither a timestamp nor an entry time")
        at = from_ms(ms)
        if standby:
            raw = {**raw, "omnilink_standby": True}
        if ev.message is not None:
            self.message(page_id, ms, at, ev, ev.message, raw)
        elif ev.postback is not None:
            psid = ev.sender.id
            pb = ev.postback
            mid = pb.mid or f"postback:{psid}:{ms}:{pb.payload}"
            parts: tuple[Part, ...] = (PostbackPart(title=pb.title, payload=pb.payload),)
            self.add(
                ms,
                InboundMessage(
                    account=page_id,
                    thread_key=psid,
                    sender=psid,
                    provider_message_id=mid,
                    parts=parts,
                    sent_at=at,
                    raw=raw,
                ),
            )
        elif ev.reaction is not None:
            r = ev.reaction
            action = "unreact" if r.action == "unreact" else "react"
            self.add(
                ms,
                InboundReaction(
                    account=page_id,
                    thread_key=ev.sender.id,
                    sender=ev.sender.id,
                    provider_message_id=r.mid,
                    reaction=Reaction(emoji=r.emoji or r.reaction or "", action=action),
                ),
            )
        elif ev.delivery is not None:
            psid = ev.sender.id
            mark = from_ms(ev.delivery.watermark)
            for mid in ev.delivery.mids or ():
                self.add(
                    ms,
                    InboundDelivery(
                        account=page_id,
                        status=DeliveryStatus.DELIVERED,
                        provider_message_id=mid,
                        thread_key=psid,
                        at=at,
                        raw=raw,
                    ),
                )
            self.add(
                ms,
                InboundDelivery(
                    account=page_id,
                    status=DeliveryStatus.DELIVERED,
                    thread_key=psid,
                    watermark=mark,
                    at=at,
                    raw=raw,
                ),
            )
        elif ev.read is not None:
            self.add(
                ms,
                InboundDelivery(
                    account=page_id,
                    status=DeliveryStatus.READ,
                    thread_key=ev.sender.id,
                    watermark=from_ms(ev.read.watermark),
                    at=at,
                    raw=raw,
                ),
            )
        else:
            known = sorted(k for k in raw if k not in {"sender", "recipient", "timestamp"})
            log.info("messenger: ignoring an event of kind %s on page %s", known, page_id)

    def message(
        self, page_id: str, ms: int, at: datetime, ev: WireEvent, msg: WireMessage, raw: dict[str, Any]
    ) -> None:
        if msg.is_deleted:
            log.info("messenger: ignoring a deleted message %s on page %s", msg.mid, page_id)
            return
        reply_to = msg.reply_to.mid if msg.reply_to is not None else None
        # An echo was sent by the page: sender is the page, recipient the customer.
        psid = ev.recipient.id if msg.is_echo else ev.sender.id
        ours = msg.is_echo and msg.metadata is not None and (self.app_id is None or msg.app_id == self.app_id)
        self.add(
            ms,
            InboundMessage(
                account=page_id,
                thread_key=psid,
                sender=psid,
                provider_message_id=msg.mid,
                parts=message_parts(msg),
                sent_at=at,
                reply_to_provider_id=reply_to,
                echo=bool(msg.is_echo),
                echo_of=msg.metadata if ours else None,
                raw=raw,
            ),
        )

    def sorted(self) -> list[Inbound]:
        # Meta does not guarantee order: hand items over in event-time order (stable).
        return [item for _, _, item in sorted(self.items, key=lambda t: (t[0], t[1]))]


def parse_document(doc: Any, *, app_id: str | None = None) -> list[Inbound]:
    """Items for every event of every entry (``messaging`` and ``standby``) of a decoded body."""
    try:
        payload = WirePayload.model_validate(doc)
    except ValidationError as exc:
        raise PayloadError(f"not a Messenger webhook payload: {_first_error(exc)}") from exc
    return _items(payload, doc, app_id)


def parse_payload(body: bytes, *, app_id: str | None = None) -> list[Inbound]:
    """Items for every event of a webhook body (already verified). Raises PayloadError."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PayloadError("the webhook body is not JSON") from exc
    # Validating the decoded document measured faster than validating the bytes again.
    return parse_document(doc, app_id=app_id)


def _items(payload: WirePayload, doc: Any, app_id: str | None) -> list[Inbound]:
    if payload.object != "page":
        raise PayloadError(f"webhook object is {payload.object!r}, expected 'page'")
    raw_entries: Sequence[dict[str, Any]] = doc["entry"]
    batch = _Batch(app_id)
    for entry, raw_entry in zip(payload.entry, raw_entries, strict=True):
        for key, events, standby in (("messaging", entry.messaging, False), ("standby", entry.standby, True)):
            raws: Sequence[dict[str, Any]] = raw_entry.get(key) or ()
            for ev, raw in zip(events, raws, strict=True):
                batch.event(entry.id, entry.time, ev, raw, standby)
    return batch.sorted()


def _first_error(exc: ValidationError) -> str:
    err = exc.errors()[0]
    where = ".".join(str(p) for p in err["loc"])
    return f"{where}: {err['msg']}"
