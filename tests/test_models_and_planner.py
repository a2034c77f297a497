"""Canonical models round-trip exactly; the planner fits content to capabilities losslessly."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

import omnilink
from omnilink import (
    Capabilities,
    ChoiceCapabilities,
    ContentError,
    DeliveryStatus,
    HtmlPart,
    LocationPart,
    MediaCapabilities,
    MediaPart,
    Message,
    QuickRepliesPart,
    QuickReply,
    TemplatePart,
    TextPart,
    UnknownPart,
    can_advance,
    graphemes,
    html_to_text,
    plan,
    split_text,
)
from omnilink._capabilities import strip_numbering
from omnilink._models import PARTS_ADAPTER
from omnilink.testing import strategies


@given(st.lists(strategies.parts(), max_size=6))
def test_parts_round_trip_through_json(parts: list[omnilink.Part]) -> None:
    dumped = PARTS_ADAPTER.dump_json(parts)
    assert PARTS_ADAPTER.validate_json(dumped) == parts


@given(strategies.messages())
def test_messages_round_trip_through_json(message: Message) -> None:
    assert Message.model_validate_json(message.model_dump_json()) == message


def test_models_are_frozen_and_export_json_schema() -> None:
    part = TextPart(text="hi")
    with pytest.raises(Exception, match="frozen"):
        part.text = "changed"  # type: ignore[misc]
    schema = Message.model_json_schema()
    assert "parts" in schema["properties"]
    assert json.dumps(schema)


def test_unknown_fields_and_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="extra"):
        TextPart.model_validate({"kind": "text", "text": "x", "colour": "red"})
    from datetime import datetime

    with pytest.raises(ValueError, match="timezone-aware"):
        omnilink.Contact(created_at=datetime(2026, 1, 1))


_ORDER = [DeliveryStatus.QUEUED, DeliveryStatus.SENT, DeliveryStatus.DELIVERED, DeliveryStatus.READ]


@given(st.lists(st.sampled_from(list(DeliveryStatus)), max_size=12))
def test_delivery_status_never_moves_backwards(updates: list[DeliveryStatus]) -> None:
    status = DeliveryStatus.QUEUED
    for new in updates:
        if can_advance(status, new):
            if status in _ORDER and new in _ORDER:
                assert _ORDER.index(new) > _ORDER.index(status)
            status = new
    if status in (DeliveryStatus.READ, DeliveryStatus.FAILED, DeliveryStatus.UNDELIVERED):
        assert not any(can_advance(status, s) for s in DeliveryStatus)


@given(st.text(max_size=2000), st.integers(min_value=4, max_value=300))
def test_split_text_reassembles_and_respects_limit_and_graphemes(text: str, limit: int) -> None:
    try:
        pieces = split_text(text, limit)
    except ContentError:
        assert any(len(g) > limit for g in graphemes(text))
        return
    assert "".join(pieces) == text
    assert all(len(p) <= limit for p in pieces)
    boundaries = set()
    offset = 0
    for g in graphemes(text):
        offset += len(g)
        boundaries.add(offset)
    cut = 0
    for piece in pieces[:-1]:
        cut += len(piece)
        assert cut in boundaries, "a grapheme cluster was split"


def test_split_prefers_sentence_and_word_boundaries() -> None:
    text = "First sentence here. Second sentence is a bit longer than the first one."
    pieces = split_text(text, 30)
    assert pieces[0] == "First sentence here. "
    assert all(not p.startswith(" ") for p in pieces)


@given(st.text(min_size=1, max_size=1500))
def test_numbered_plan_pieces_fit_and_reassemble(text: str) -> None:
    caps = Capabilities(text_max=60, split_numbering=True, max_messages_per_send=100)
    if not text.strip():
        return
    try:
        result = plan([TextPart(text=text)], caps)
    except ContentError:
        return
    pieces = [m.parts[0] for m in result.messages]
    assert all(isinstance(p, TextPart) and len(p.text) <= 60 for p in pieces)
    assert "".join(strip_numbering(p.text) for p in pieces if isinstance(p, TextPart)) == text


def test_plan_degrades_what_the_channel_cannot_show() -> None:
    caps = Capabilities(text_max=1000, media=MediaCapabilities(max_count=0))
    parts = [
        HtmlPart(
            html="<p>Hello <b>there</b></p><script>x()</script><p><a href='https://x.test/a'>link</a></p>"
        ),
        MediaPart(url="https://files.test/a.pdf", content_type="application/pdf", filename="invoice.pdf"),
        QuickRepliesPart(text="Pick one", replies=(QuickReply(title="A", payload="a"),)),
        LocationPart(latitude=48.85, longitude=2.35, name="Office"),
        UnknownPart(provider_type="sticker"),
    ]
    result = plan(parts, caps)
    [message] = result.messages
    [text] = message.parts
    assert isinstance(text, TextPart)
    assert "Hello there" in text.text
    assert "link (https://x.test/a)" in text.text
    assert "x()" not in text.text
    assert "invoice.pdf: https://files.test/a.pdf" in text.text
    assert "1. A" in text.text
    kinds = [d.kind for d in result.degradations]
    assert kinds == [
        "html_to_text",
        "media_to_link",
        "quick_replies_to_text",
        "location_to_text",
        "unknown_dropped",
    ]


def test_plan_keeps_supported_choices_and_media() -> None:
    caps = Capabilities(
        text_max=200,
        quick_replies=ChoiceCapabilities(max_count=3, title_max=5),
        media=MediaCapabilities(max_count=1, types=frozenset({"image"}), with_text=False, max_bytes=10),
    )
    image = MediaPart(url="https://i.test/1.png", content_type="image/png", size=5)
    choices = QuickRepliesPart(text="Ok?", replies=(QuickReply(title="Yes", payload="y"),))
    result = plan([TextPart(text="Here"), image, choices], caps)
    assert result.degradations == ()
    assert [type(p).__name__ for m in result.messages for p in m.parts] == ["MediaPart", "QuickRepliesPart"]
    with pytest.raises(ContentError, match="at most 10"):
        plan([image.model_copy(update={"size": 11})], caps)
    with pytest.raises(ContentError, match="empty"):
        plan([UnknownPart(provider_type="x")], caps)
    with pytest.raises(ContentError, match="fallback"):
        plan([TemplatePart(name="t")], caps)


def test_html_to_text_keeps_structure() -> None:
    assert html_to_text("<div>a</div><div>b<br>c</div>&amp;") == "a\n\nb\nc\n&"


def test_choices_with_a_short_prompt_limit_send_the_rest_first() -> None:
    caps = Capabilities(text_max=2000, buttons=ChoiceCapabilities(max_count=3, title_max=20, text_max=40))
    long_text = "word " * 30
    buttons = omnilink.ButtonsPart(
        text=long_text.strip(), buttons=(omnilink.Button(title="Ok", payload="ok"),)
    )
    result = plan([buttons], caps)
    *head, last = result.messages
    assert head
    assert isinstance(last.parts[0], omnilink.ButtonsPart)
    assert len(last.parts[0].text) <= 40
    joined = "".join(p.text for m in head for p in m.parts if isinstance(p, TextPart)) + last.parts[0].text
    assert joined == long_text.strip()


def test_captions_move_into_text_where_attachments_have_none() -> None:
    caps = Capabilities(media=MediaCapabilities(max_count=1, types=frozenset({"image"}), captions=False))
    image = MediaPart(url="https://i.test/a.png", content_type="image/png", caption="Our new shop")
    result = plan([image], caps)
    parts = [p for m in result.messages for p in m.parts]
    assert any(isinstance(p, TextPart) and p.text == "Our new shop" for p in parts)
    assert all(p.caption is None for p in parts if isinstance(p, MediaPart))
    assert [d.kind for d in result.degradations] == ["caption_to_text"]


def test_html_channels_get_one_html_part_with_its_text_rendering() -> None:
    caps = Capabilities(markup="html")
    result = plan([TextPart(text="Hi <Ana>"), HtmlPart(html="<p>Your <b>order</b></p>")], caps)
    [message] = result.messages
    [part] = message.parts
    assert isinstance(part, HtmlPart)
    assert "<p>Hi &lt;Ana&gt;</p>" in part.html
    assert "<b>order</b>" in part.html
    assert part.text == "Hi <Ana>\n\nYour order"
    assert result.degradations == ()
