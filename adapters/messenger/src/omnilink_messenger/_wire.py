"""Meta's webhook payload as sent, tolerant of fields Meta adds later.

These models only check the envelope and the fields omnilink reads; everything else is kept
in the raw event stored with each message.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, coerce_numbers_to_str=True)


class WireParty(_Wire):
    id: str = Field(min_length=1)


class WireQuickReply(_Wire):
    payload: str = ""


class WireReplyTo(_Wire):
    mid: str | None = None


class WireAttachment(_Wire):
    type: str
    payload: dict[str, Any] | None = None
    title: str | None = None


class WireMessage(_Wire):
    mid: str = Field(min_length=1)
    text: str | None = None
    quick_reply: WireQuickReply | None = None
    reply_to: WireReplyTo | None = None
    attachments: list[WireAttachment] = Field(default_factory=list)
    is_echo: bool = False
    app_id: str | None = None
    metadata: str | None = None
    is_deleted: bool = False
    is_unsupported: bool = False


class WireDelivery(_Wire):
    mids: list[str] | None = None
    watermark: int


class WireRead(_Wire):
    watermark: int


class WirePostback(_Wire):
    title: str = ""
    payload: str = ""
    mid: str | None = None


class WireReaction(_Wire):
    reaction: str | None = None
    emoji: str | None = None
    action: str = "react"
    mid: str = Field(min_length=1)


class WireEvent(_Wire):
    sender: WireParty
    recipient: WireParty
    timestamp: int | None = None
    message: WireMessage | None = None
    delivery: WireDelivery | None = None
    read: WireRead | None = None
    postback: WirePostback | None = None
    reaction: WireReaction | None = None


class WireEntry(_Wire):
    id: str = Field(min_length=1)
    time: int | None = None
    messaging: list[WireEvent] = Field(default_factory=list)
    standby: list[WireEvent] = Field(default_factory=list)


class WirePayload(_Wire):
    object: str
    entry: list[WireEntry]
