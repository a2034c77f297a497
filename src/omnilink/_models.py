"""The canonical model: contacts, conversations, messages, their parts and delivery states.

Every model is a frozen pydantic v2 model; every member of a union carries a literal ``kind``
tag so unions are discriminated and JSON round-trips are exact. ``SCHEMA_VERSION`` names the
version of this model that stored rows and exported JSON schemas carry.
"""

from __future__ import annotations

import enum
import os
import time
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, field_validator

SCHEMA_VERSION = 1
"""Version of the canonical model. Bumped on any incompatible change."""


def new_id(prefix: str) -> str:
    """Return a new unique id such as ``msg_019ab3…`` (prefix, underscore, 32 hex digits).

    The first 12 digits are the creation time in milliseconds since the epoch, the other 20
    are random (80 bits, from ``os.urandom``), like a UUIDv7: ids made later sort later, so a
    store's unique index on ids grows at its end instead of at a random page per insert, which
    keeps the cost of an insert flat as the tables grow.
    """
    return f"{prefix}_{time.time_ns() // 1_000_000:012x}{os.urandom(10).hex()}"


def utcnow() -> datetime:
    """The current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Model(BaseModel):
    """Base of every canonical model: frozen, strict about unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)


def _require_aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware (use UTC)")
    return value


# --------------------------------------------------------------------------- parts


class TextPart(Model):
    """Plain text."""

    kind: Literal["text"] = "text"
    text: str
    """The text, as the person wrote it."""


class HtmlPart(Model):
    """Rich text as HTML, with a plain-text rendering for channels without markup."""

    kind: Literal["html"] = "html"
    html: str
    """The HTML source. Never rendered as HTML without sanitising."""
    text: str | None = None
    """A plain-text rendering; derived from ``html`` when absent."""


class MediaPart(Model):
    """An image, audio, video or any other file, by URL."""

    kind: Literal["media"] = "media"
    url: str
    """Where the file can be fetched."""
    content_type: str = "application/octet-stream"
    """MIME type, e.g. ``image/png``."""
    size: int | None = Field(default=None, ge=0)
    """Size in bytes, when known."""
    filename: str | None = None
    """A safe file name for display and download."""
    caption: str | None = None
    """Text shown with the file, where the channel can."""
    content_id: str | None = None
    """For inline email images: the Content-ID the HTML refers to."""

    @property
    def media_type(self) -> str:
        """The top-level type: ``image``, ``audio``, ``video`` or ``file``."""
        top = self.content_type.split("/", 1)[0].lower()
        return top if top in {"image", "audio", "video"} else "file"


class LocationPart(Model):
    """A geographic location."""

    kind: Literal["location"] = "location"
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    name: str | None = None
    address: str | None = None


class QuickReply(Model):
    """One suggested answer the recipient can tap."""

    title: str = Field(min_length=1)
    """What the button shows."""
    payload: str
    """What comes back when it is tapped."""


class QuickRepliesPart(Model):
    """A prompt with suggested answers."""

    kind: Literal["quick_replies"] = "quick_replies"
    text: str
    """The prompt shown above the answers."""
    replies: tuple[QuickReply, ...] = Field(min_length=1)


class Button(Model):
    """A button that either posts back a payload or opens a URL."""

    title: str = Field(min_length=1)
    payload: str | None = None
    url: str | None = None


class ButtonsPart(Model):
    """Text with buttons under it."""

    kind: Literal["buttons"] = "buttons"
    text: str
    buttons: tuple[Button, ...] = Field(min_length=1)


class PostbackPart(Model):
    """The recipient tapped a button or a quick reply; ``payload`` says which."""

    kind: Literal["postback"] = "postback"
    title: str
    payload: str


class TemplatePart(Model):
    """A provider-side template, named, with parameters."""

    kind: Literal["template"] = "template"
    name: str
    language: str | None = None
    params: dict[str, str] = Field(default_factory=dict)
    fallback_text: str | None = None
    """What to show on channels without this template."""


class UnknownPart(Model):
    """Something the provider sent that we cannot model; kept, not dropped."""

    kind: Literal["unknown"] = "unknown"
    provider_type: str
    """The provider's own name for the thing."""
    data: dict[str, Any] = Field(default_factory=dict)


Part = Annotated[
    TextPart
    | HtmlPart
    | MediaPart
    | LocationPart
    | QuickRepliesPart
    | ButtonsPart
    | PostbackPart
    | TemplatePart
    | UnknownPart,
    Field(discriminator="kind"),
]
"""Any message part; the union is discriminated by ``kind``."""

PARTS_ADAPTER: TypeAdapter[list[Part]] = TypeAdapter(list[Part])


def text_of(parts: tuple[Part, ...] | list[Part]) -> str:
    """A plain-text view of parts, for previews, logs and keyword checks."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, TextPart | PostbackPart):
            out.append(part.text if isinstance(part, TextPart) else part.title)
        elif isinstance(part, HtmlPart):
            out.append(part.text or part.html)
        elif isinstance(part, QuickRepliesPart | ButtonsPart):
            out.append(part.text)
        elif isinstance(part, MediaPart) and part.caption:
            out.append(part.caption)
        elif isinstance(part, TemplatePart) and part.fallback_text:
            out.append(part.fallback_text)
    return "\n".join(out)


# --------------------------------------------------------------------------- contacts


class Handle(Model):
    """An address of a contact on one channel: a phone number, a PSID, an email address …

    A handle is unique: one (channel, address) belongs to at most one contact.
    """

    channel: str = Field(min_length=1)
    address: str = Field(min_length=1)
    """Normalised by the channel (E.164, lower-cased email …)."""


class Contact(Model):
    """One customer, reachable through one or more handles."""

    id: str = Field(default_factory=lambda: new_id("con"))
    display_name: str | None = None
    handles: tuple[Handle, ...] = ()
    created_at: datetime = Field(default_factory=utcnow)
    schema_version: int = SCHEMA_VERSION

    _aware = field_validator("created_at")(_require_aware)


class LinkStrength(enum.StrEnum):
    """How strong the evidence is that two contacts are one person."""

    STRONG = "strong"
    """Verified (a signed identity, a confirmed address): the link takes effect."""
    WEAK = "weak"
    """Suggestive only (same name, similar address): recorded as a suggestion, never applied."""


class ContactLink(Model):
    """A recorded claim that two contacts are the same person, with why we believe it."""

    id: str = Field(default_factory=lambda: new_id("lnk"))
    contact_id: str
    other_contact_id: str
    reason: str
    """A short machine-readable reason, e.g. ``livechat.verified_identity``."""
    evidence: dict[str, str] = Field(default_factory=dict)
    """What supports the claim, e.g. the verified email address."""
    strength: LinkStrength
    applied: bool
    """Whether the link takes effect (strong evidence, or confirmed by a person)."""
    created_at: datetime = Field(default_factory=utcnow)
    undone_at: datetime | None = None
    """When the link was undone; an undone link has no effect."""


# --------------------------------------------------------------------------- conversations


class ConversationStatus(enum.StrEnum):
    """Where a conversation stands in the helpdesk's workflow."""

    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"


class ThreadRef(Model):
    """How one channel identifies a conversation's thread.

    ``account`` is the business side (an SMS number, a Messenger page, a mailbox) and ``key``
    the customer side (the customer's number, a PSID, a DM conversation id, a chat session).
    """

    channel: str
    account: str
    key: str


class ThreadLink(Model):
    """Why a thread belongs to a conversation: the rule that added it, and when."""

    ref: ThreadRef
    rule: str
    """``new_conversation``, ``continuity_window``, ``continue_on``, ``start_conversation`` …"""
    detail: str = ""
    linked_at: datetime = Field(default_factory=utcnow)


class ThreadDecision(Model):
    """Why a message was put into its conversation."""

    rule: str
    """The rule that decided: ``token``, ``reference``, ``thread_ref``, ``subject``,
    ``continuity_window``, ``continue_on``, ``new_conversation`` or an adapter's own."""
    detail: str = ""
    """What the rule matched, in words."""
    strength: LinkStrength = LinkStrength.STRONG


class Conversation(Model):
    """One customer issue, across every channel it moves through."""

    id: str = Field(default_factory=lambda: new_id("cnv"))
    contact_id: str
    status: ConversationStatus = ConversationStatus.OPEN
    subject: str | None = None
    subject_key: str | None = None
    """The subject reduced for comparison (prefixes stripped, case folded)."""
    threads: tuple[ThreadRef, ...] = ()
    """Every channel thread of the conversation, in the order they joined it."""
    thread_links: tuple[ThreadLink, ...] = ()
    """For each thread, the rule that linked it (same order as ``threads``)."""
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    first_inbound_at: datetime | None = None
    first_response_at: datetime | None = None
    """The first outbound message from a person after the first inbound one."""
    last_inbound_at: datetime | None = None
    last_outbound_at: datetime | None = None
    last_channel: str | None = None
    """The channel of the latest inbound message: where a reply goes by default."""
    last_thread: ThreadRef | None = None
    """The thread of the latest inbound message (or of the latest hand-over): a reply on
    ``last_channel`` goes there."""
    schema_version: int = SCHEMA_VERSION

    @property
    def awaiting_reply(self) -> bool:
        """True when the customer wrote last and nobody answered yet."""
        if self.last_inbound_at is None:
            return False
        return self.last_outbound_at is None or self.last_outbound_at < self.last_inbound_at

    def thread_for(self, channel: str) -> ThreadRef | None:
        """The most recently added thread on ``channel``, if the conversation has one."""
        for ref in reversed(self.threads):
            if ref.channel == channel:
                return ref
        return None


# --------------------------------------------------------------------------- messages


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class DeliveryStatus(enum.StrEnum):
    """Delivery state of a message. States only move forward; see ``can_advance``."""

    RECEIVED = "received"
    """An inbound message (not subject to delivery tracking)."""
    QUEUED = "queued"
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    UNDELIVERED = "undelivered"
    UNKNOWN = "unknown"
    """We could not tell whether the provider accepted the send (e.g. a crash mid-request)."""

    @property
    def is_final(self) -> bool:
        return self in _FINAL


_RANK: dict[DeliveryStatus, int] = {
    DeliveryStatus.QUEUED: 0,
    DeliveryStatus.UNKNOWN: 0,
    DeliveryStatus.SENT: 1,
    DeliveryStatus.DELIVERED: 2,
    DeliveryStatus.READ: 3,
}
_FINAL = frozenset({DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED, DeliveryStatus.READ})


def can_advance(current: DeliveryStatus, new: DeliveryStatus) -> bool:
    """Whether a message in ``current`` may move to ``new``.

    queued → sent → delivered → read, strictly forward; failed and undelivered end a message
    that was not yet delivered; read, failed and undelivered are final. ``unknown`` (a send
    whose outcome we lost) may still learn any outcome.
    """
    if current in _FINAL or current is DeliveryStatus.RECEIVED or new is DeliveryStatus.RECEIVED:
        return False
    if new in (DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED):
        return current in (DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.UNKNOWN)
    if new is DeliveryStatus.UNKNOWN:
        return current is DeliveryStatus.QUEUED
    return _RANK[new] > _RANK[current]


class AuthorKind(enum.StrEnum):
    CONTACT = "contact"
    AGENT = "agent"
    AUTOMATION = "automation"
    """A bot or an automatic message (never counts as a first response)."""
    BUSINESS = "business"
    """Sent from the business account by another tool (e.g. the provider's own inbox)."""


class Author(Model):
    kind: AuthorKind
    id: str | None = None
    """The contact id, or the helpdesk's agent id."""
    name: str | None = None


class Reaction(Model):
    """A reaction to a message."""

    emoji: str
    action: Literal["react", "unreact"] = "react"


class Message(Model):
    """One message, inbound or outbound, on one channel, in one conversation."""

    id: str = Field(default_factory=lambda: new_id("msg"))
    conversation_id: str
    contact_id: str
    direction: Direction
    channel: str
    account: str
    """The business side of the thread (number, page, mailbox …)."""
    thread_key: str
    """The customer side of the thread on this channel."""
    author: Author
    parts: tuple[Part, ...]
    subject: str | None = None
    provider_message_id: str | None = None
    """The provider's id; with (channel, account) the dedupe key of inbound messages."""
    provider_ids: tuple[str, ...] = ()
    """Every provider id this message went out as (a long text may be sent as several)."""
    reply_to_id: str | None = None
    """The id of the message this one answers, when the channel says so."""
    reaction_to_id: str | None = None
    reaction: Reaction | None = None
    status: DeliveryStatus
    status_updated_at: datetime | None = None
    error: str | None = None
    """Why delivery failed, in the provider's words."""
    threading: ThreadDecision | None = None
    automatic: bool = False
    """An automatic message (auto-reply, bounce): never a customer response, never answered."""
    send_options: dict[str, str] = Field(default_factory=dict)
    """What the channel chose for an outbound message (e.g. Messenger's messaging_type/tag)."""
    send_details: dict[str, str] = Field(default_factory=dict)
    """What the provider said of the send (e.g. SMS ``segments``); keys of later pieces of a
    split message carry their index (``segments.1``)."""
    degradations: tuple[str, ...] = ()
    """How the planner changed the content to fit the channel."""
    sent_at: datetime = Field(default_factory=utcnow)
    """When it was written: the provider's time for inbound, enqueue time for outbound."""
    raw: dict[str, Any] | None = None
    """The provider's payload for audit."""
    deleted_at: datetime | None = None
    """When its author deleted it on the provider; its content is gone from the store."""
    schema_version: int = SCHEMA_VERSION

    @property
    def text(self) -> str:
        return text_of(self.parts)


# --------------------------------------------------------------------------- events


class MessageReceived(Model):
    """A new inbound message was stored."""

    kind: Literal["message_received"] = "message_received"
    message: Message
    conversation: Conversation
    new_conversation: bool


class MessageQueued(Model):
    """An outbound message was stored and queued for dispatch."""

    kind: Literal["message_queued"] = "message_queued"
    message: Message


class DeliveryUpdated(Model):
    """An outbound message changed delivery state."""

    kind: Literal["delivery_updated"] = "delivery_updated"
    message_id: str
    conversation_id: str
    channel: str
    status: DeliveryStatus
    previous: DeliveryStatus
    error: str | None = None
    at: datetime


class StaleDeliveryUpdate(Model):
    """A delivery update arrived that would move a status backwards; recorded, not applied."""

    kind: Literal["stale_delivery_update"] = "stale_delivery_update"
    message_id: str
    channel: str
    current: DeliveryStatus
    ignored: DeliveryStatus
    at: datetime


class Typing(Model):
    """Someone started or stopped typing. Ephemeral: never stored."""

    kind: Literal["typing"] = "typing"
    channel: str
    account: str
    thread_key: str
    on: bool
    by: AuthorKind = AuthorKind.CONTACT


class ReactionReceived(Model):
    """A contact reacted to a message."""

    kind: Literal["reaction_received"] = "reaction_received"
    channel: str
    message_id: str | None
    provider_message_id: str
    reaction: Reaction
    contact_id: str | None = None


class OptChanged(Model):
    """A contact opted out of (or back into) messages on a channel."""

    kind: Literal["opt_changed"] = "opt_changed"
    channel: str
    account: str
    address: str
    opted_out: bool
    keyword: str | None = None
    contact_id: str | None = None


class HealthState(enum.StrEnum):
    OK = "ok"
    CREDENTIALS_INVALID = "credentials_invalid"
    PERMISSION_REVOKED = "permission_revoked"
    RATE_LIMITED = "rate_limited"
    USAGE_CAPPED = "usage_capped"
    WEBHOOK_LOST = "webhook_lost"
    DISCONNECTED = "disconnected"


class MessageDeleted(Model):
    """Its author deleted a stored message on the provider; its content was removed."""

    kind: Literal["message_deleted"] = "message_deleted"
    message_id: str
    conversation_id: str
    channel: str
    provider_message_id: str
    at: datetime


class AdapterHealth(Model):
    """A channel's health changed; the helpdesk should show it to an administrator."""

    kind: Literal["adapter_health"] = "adapter_health"
    channel: str
    account: str | None = None
    state: HealthState
    detail: str = ""
    at: datetime = Field(default_factory=utcnow)


Event = Annotated[
    MessageReceived
    | MessageQueued
    | DeliveryUpdated
    | StaleDeliveryUpdate
    | Typing
    | ReactionReceived
    | OptChanged
    | MessageDeleted
    | AdapterHealth,
    Field(discriminator="kind"),
]
"""Anything the Hub publishes to subscribers."""

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
