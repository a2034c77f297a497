"""The JSON frames the widget and the server exchange, and how stored messages look in them.

Client frames are validated with tolerant wire models (unknown fields are ignored so older
servers accept newer widgets); server frames are plain dicts built here in one place.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from omnilink import (
    ButtonsPart,
    Direction,
    HtmlPart,
    MediaPart,
    Message,
    Part,
    QuickRepliesPart,
    TemplatePart,
    TextPart,
    html_to_text,
    text_of,
)

CLIENT_ID = r"^[A-Za-z0-9_-]{1,64}$"


class _Frame(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class HelloFrame(_Frame):
    type: Literal["hello"]
    site: str
    token: str | None = None
    session: str | None = None
    since: str | None = None
    """The id of the last message the widget saw: the server resends everything after it."""
    identity: str | None = Field(default=None, max_length=320)
    identity_hash: str | None = Field(default=None, max_length=128)
    name: str | None = Field(default=None, max_length=120)


class MessageFrame(_Frame):
    type: Literal["message"]
    client_id: str = Field(pattern=CLIENT_ID)
    text: str = ""
    upload: str | None = None
    """An upload token from the upload endpoint: the file is attached to the message."""


class TypingFrame(_Frame):
    type: Literal["typing"]
    on: bool


class ReadFrame(_Frame):
    type: Literal["read"]
    id: str = Field(max_length=128)
    """The latest agent message the visitor has seen."""


class DeliveredFrame(_Frame):
    type: Literal["delivered"]
    provider_id: str = Field(max_length=200)


class PingFrame(_Frame):
    type: Literal["ping"]


class ResyncFrame(_Frame):
    type: Literal["resync"]
    since: str | None = None


class OfflineEmailFrame(_Frame):
    type: Literal["offline_email"]
    email: str = Field(max_length=320)
    client_id: str | None = Field(default=None, pattern=CLIENT_ID)
    text: str = ""
    """A first message, when the visitor had not written yet."""


class CloseFrame(_Frame):
    type: Literal["close_session"]


ClientFrame = Annotated[
    MessageFrame
    | TypingFrame
    | ReadFrame
    | DeliveredFrame
    | PingFrame
    | ResyncFrame
    | OfflineEmailFrame
    | CloseFrame
    | HelloFrame,
    Field(discriminator="type"),
]
CLIENT_FRAME: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)


def plain_text(parts: tuple[Part, ...] | list[Part]) -> str:
    """What the widget shows as text: HTML is reduced to text here and never sent as markup."""
    pieces: list[str] = []
    for part in parts:
        if isinstance(part, HtmlPart):
            pieces.append(part.text or html_to_text(part.html))
        elif isinstance(part, QuickRepliesPart | ButtonsPart | TemplatePart | TextPart) or not isinstance(
            part, MediaPart
        ):
            pieces.append(text_of([part]))
    return "\n".join(piece for piece in pieces if piece)


def attachments(parts: tuple[Part, ...] | list[Part]) -> list[dict[str, Any]]:
    return [
        {
            "url": part.url,
            "content_type": part.content_type,
            "filename": part.filename,
            "size": part.size,
            "caption": part.caption,
        }
        for part in parts
        if isinstance(part, MediaPart)
    ]


def stored_message_frame(message: Message, visitor_id: str) -> dict[str, Any]:
    """A stored message of the thread, as the widget shows it on resync."""
    inbound = message.direction is Direction.INBOUND
    client_id = None
    provider_id = message.provider_message_id or ""
    if inbound and provider_id.startswith(f"{visitor_id}:"):
        client_id = provider_id.partition(":")[2]
    return {
        "type": "message",
        "id": message.id,
        "part": None,
        "from": "visitor" if inbound else "agent",
        "author": message.author.name,
        "client_id": client_id,
        "text": plain_text(message.parts),
        "attachments": attachments(message.parts),
        "parts": [part.model_dump(mode="json") for part in message.parts],
        "sent_at": message.sent_at.isoformat(),
        "status": message.status.value,
    }
