"""Hypothesis strategies for every canonical model, in one module."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from .._models import (
    AdapterHealth,
    Author,
    AuthorKind,
    Button,
    ButtonsPart,
    Contact,
    Conversation,
    ConversationStatus,
    DeliveryStatus,
    Direction,
    Handle,
    HealthState,
    HtmlPart,
    LocationPart,
    MediaPart,
    Message,
    MessageDeleted,
    OptChanged,
    Part,
    PostbackPart,
    QuickRepliesPart,
    QuickReply,
    TemplatePart,
    TextPart,
    ThreadRef,
    Typing,
    UnknownPart,
)

__all__ = [
    "aware_datetimes",
    "contacts",
    "conversations",
    "events",
    "handles",
    "messages",
    "parts",
    "texts",
    "thread_refs",
]

CHANNELS = ("sms", "messenger", "email", "twitter", "livechat", "loopback")

texts = st.text(min_size=0, max_size=300)
"""Any text, including emoji, combining marks and other planes."""

_ident = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=16)
_label = st.text(min_size=1, max_size=30).filter(lambda s: s.strip() != "")


def aware_datetimes() -> st.SearchStrategy[datetime]:
    """UTC datetimes between 2000 and 2100."""
    return st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    )


def handles(channel: str | None = None) -> st.SearchStrategy[Handle]:
    return st.builds(
        Handle, channel=st.just(channel) if channel else st.sampled_from(CHANNELS), address=_ident
    )


def thread_refs() -> st.SearchStrategy[ThreadRef]:
    return st.builds(ThreadRef, channel=st.sampled_from(CHANNELS), account=_ident, key=_ident)


def _media() -> st.SearchStrategy[MediaPart]:
    return st.builds(
        MediaPart,
        url=_ident.map(lambda s: f"https://files.example/{s}"),
        content_type=st.sampled_from(
            ["image/png", "image/jpeg", "video/mp4", "audio/ogg", "application/pdf"]
        ),
        size=st.none() | st.integers(min_value=0, max_value=50_000_000),
        filename=st.none() | _ident.map(lambda s: f"{s}.bin"),
        caption=st.none() | texts,
    )


def parts() -> st.SearchStrategy[Part]:
    """Any message part, every kind of the union."""
    strategies: list[st.SearchStrategy[Any]] = [
        st.builds(TextPart, text=texts),
        st.builds(HtmlPart, html=texts.map(lambda t: f"<p>{t}</p>"), text=st.none() | texts),
        _media(),
        st.builds(
            LocationPart,
            latitude=st.floats(min_value=-90, max_value=90),
            longitude=st.floats(min_value=-180, max_value=180),
            name=st.none() | _label,
        ),
        st.builds(
            QuickRepliesPart,
            text=texts,
            replies=st.lists(
                st.builds(QuickReply, title=_label, payload=_ident), min_size=1, max_size=15
            ).map(tuple),
        ),
        st.builds(
            ButtonsPart,
            text=texts,
            buttons=st.lists(st.builds(Button, title=_label, payload=_ident), min_size=1, max_size=4).map(
                tuple
            ),
        ),
        st.builds(PostbackPart, title=_label, payload=_ident),
        st.builds(TemplatePart, name=_ident, fallback_text=st.none() | texts),
        st.builds(UnknownPart, provider_type=_ident, data=st.dictionaries(_ident, _ident, max_size=3)),
    ]
    return st.one_of(strategies)


def contacts() -> st.SearchStrategy[Contact]:
    return st.builds(
        Contact,
        display_name=st.none() | _label,
        handles=st.lists(handles(), max_size=3, unique_by=lambda h: (h.channel, h.address)).map(tuple),
        created_at=aware_datetimes(),
    )


def conversations() -> st.SearchStrategy[Conversation]:
    return st.builds(
        Conversation,
        contact_id=_ident,
        status=st.sampled_from(list(ConversationStatus)),
        subject=st.none() | _label,
        threads=st.lists(thread_refs(), max_size=3, unique=True).map(tuple),
        created_at=aware_datetimes(),
        updated_at=aware_datetimes(),
    )


def messages() -> st.SearchStrategy[Message]:
    def build(direction: Direction, ref: ThreadRef, body: list[Part], when: datetime, pid: str) -> Message:
        inbound = direction is Direction.INBOUND
        return Message(
            conversation_id="cnv_x",
            contact_id="con_x",
            direction=direction,
            channel=ref.channel,
            account=ref.account,
            thread_key=ref.key,
            author=Author(kind=AuthorKind.CONTACT if inbound else AuthorKind.AGENT),
            parts=tuple(body),
            provider_message_id=pid,
            status=DeliveryStatus.RECEIVED if inbound else DeliveryStatus.QUEUED,
            sent_at=when,
        )

    return st.builds(
        build,
        st.sampled_from(list(Direction)),
        thread_refs(),
        st.lists(parts(), min_size=1, max_size=4),
        aware_datetimes(),
        _ident,
    )


def events() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.builds(
            Typing, channel=st.sampled_from(CHANNELS), account=_ident, thread_key=_ident, on=st.booleans()
        ),
        st.builds(
            OptChanged, channel=st.just("sms"), account=_ident, address=_ident, opted_out=st.booleans()
        ),
        st.builds(
            AdapterHealth,
            channel=st.sampled_from(CHANNELS),
            state=st.sampled_from(list(HealthState)),
            at=aware_datetimes(),
        ),
        st.builds(
            MessageDeleted,
            message_id=_ident,
            conversation_id=_ident,
            channel=st.sampled_from(CHANNELS),
            provider_message_id=_ident,
            at=aware_datetimes(),
        ),
    )


def timelines(max_events: int = 20) -> st.SearchStrategy[list[timedelta]]:
    """Sorted offsets from a start time, for window and ordering properties."""
    return st.lists(st.integers(min_value=0, max_value=14 * 24 * 3600), max_size=max_events).map(
        lambda xs: [timedelta(seconds=x) for x in sorted(xs)]
    )
