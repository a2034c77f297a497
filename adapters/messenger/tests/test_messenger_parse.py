"""Parsing webhook bodies: every entry and every event, each kind of event, in time order."""

from __future__ import annotations

import json
import random
from collections import Counter
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from messenger_support import PAGE, Clock, make_fake

from omnilink import (
    DeliveryStatus,
    InboundDelivery,
    InboundMessage,
    InboundReaction,
    LocationPart,
    MediaPart,
    PayloadError,
    PostbackPart,
    TextPart,
    UnknownPart,
)
from omnilink_messenger import parse_payload
from omnilink_messenger._parse import to_ms
from omnilink_messenger.testing import FakeEvent, FakeGraphAPI

PSID = "6000000000000001"


def parse(fake: FakeGraphAPI, events: list[FakeEvent], **kw: object) -> list[object]:
    request = fake.webhook_request(events)
    return list(parse_payload(request.body, **kw))  # type: ignore[arg-type]


def test_text_message_becomes_an_inbound_message_on_the_page_thread(fake: FakeGraphAPI, clock: Clock) -> None:
    [item] = parse(fake, [fake.message_event(PAGE, PSID, "Hallo Müller 👋", mid="m_1")])
    assert isinstance(item, InboundMessage)
    assert (item.account, item.thread_key, item.sender) == (PAGE, PSID, PSID)
    assert item.provider_message_id == "m_1"
    assert item.parts == (TextPart(text="Hallo Müller 👋"),)
    assert item.sent_at == clock()
    assert not item.echo
    assert item.raw is not None
    assert item.raw["message"]["mid"] == "m_1"


def test_quick_reply_tap_becomes_a_postback_part_titled_with_the_text(fake: FakeGraphAPI) -> None:
    [item] = parse(fake, [fake.message_event(PAGE, PSID, "Yes please", quick_reply_payload="CONFIRM")])
    assert isinstance(item, InboundMessage)
    assert item.parts == (PostbackPart(title="Yes please", payload="CONFIRM"),)


def test_reply_to_carries_the_quoted_message_id(fake: FakeGraphAPI) -> None:
    [item] = parse(fake, [fake.message_event(PAGE, PSID, "this one", reply_to="m_earlier")])
    assert isinstance(item, InboundMessage)
    assert item.reply_to_provider_id == "m_earlier"


def test_every_documented_attachment_type_is_kept(fake: FakeGraphAPI) -> None:
    attachments = [
        {"type": "image", "payload": {"url": "https://cdn.fb.example/p/photo.jpg"}},
        {"type": "audio", "payload": {"url": "https://cdn.fb.example/a/clip.mp4"}},
        {"type": "video", "payload": {"url": "https://cdn.fb.example/v/clip"}},
        {"type": "file", "payload": {"url": "https://cdn.fb.example/f/invoice.pdf"}},
        {
            "type": "image",
            "payload": {"url": "https://cdn.fb.example/s/thumb.png", "sticker_id": 369239263222822},
        },
        {"type": "sticker", "payload": {"url": "https://cdn.fb.example/s/2.png"}},
        {
            "type": "reel",
            "payload": {"url": "https://cdn.fb.example/r/1", "title": "A reel", "reel_video_id": 5},
        },
        {"type": "fallback", "payload": {"url": "https://example.com/article"}, "title": "An article"},
        {"type": "location", "payload": {"coordinates": {"lat": 52.52, "long": 13.405}}},
        {"type": "post", "payload": {"url": "https://facebook.com/p/1", "title": "A post"}},
        {"type": "hologram", "payload": {"beam": 3}},
    ]
    [item] = parse(fake, [fake.message_event(PAGE, PSID, attachments=attachments)])
    assert isinstance(item, InboundMessage)
    parts = item.parts
    assert len(parts) == len(attachments)
    image, audio, video, file, sticker_image, sticker, reel, fallback, location, post, unknown = parts
    assert isinstance(image, MediaPart)
    assert image.content_type == "image/jpeg"
    assert image.media_type == "image"
    assert isinstance(audio, MediaPart)
    assert audio.media_type == "audio"
    assert isinstance(video, MediaPart)
    assert video.content_type == "video/*"
    assert video.media_type == "video"
    assert isinstance(file, MediaPart)
    assert file.media_type == "file"
    assert file.filename == "invoice.pdf"
    assert isinstance(sticker_image, MediaPart)
    assert sticker_image.media_type == "image"
    assert isinstance(sticker, MediaPart)
    assert sticker.media_type == "image"
    assert isinstance(reel, MediaPart)
    assert reel.media_type == "video"
    assert reel.caption == "A reel"
    assert isinstance(fallback, UnknownPart)
    assert fallback.provider_type == "fallback"
    assert fallback.data == {"url": "https://example.com/article", "title": "An article"}
    assert isinstance(location, LocationPart)
    assert (location.latitude, location.longitude) == (52.52, 13.405)
    assert isinstance(post, UnknownPart)
    assert post.provider_type == "post"
    assert isinstance(unknown, UnknownPart)
    assert unknown.data == {"beam": 3}


def test_text_with_attachment_keeps_both(fake: FakeGraphAPI) -> None:
    att = [{"type": "image", "payload": {"url": "https://cdn.fb.example/x.png"}}]
    [item] = parse(fake, [fake.message_event(PAGE, PSID, "look", attachments=att)])
    assert isinstance(item, InboundMessage)
    assert [p.kind for p in item.parts] == ["text", "media"]


def test_postback_becomes_a_postback_part(fake: FakeGraphAPI) -> None:
    [item] = parse(fake, [fake.postback_event(PAGE, PSID, "Talk to a human", "HUMAN")])
    assert isinstance(item, InboundMessage)
    assert item.parts == (PostbackPart(title="Talk to a human", payload="HUMAN"),)
    assert item.provider_message_id


def test_postback_without_mid_gets_a_stable_id(fake: FakeGraphAPI) -> None:
    ev = fake.postback_event(PAGE, PSID, "Start", "GET_STARTED")
    del ev.event["postback"]["mid"]
    first = parse(fake, [ev])[0]
    again = parse(fake, [ev])[0]
    assert isinstance(first, InboundMessage)
    assert isinstance(again, InboundMessage)
    assert first.provider_message_id == again.provider_message_id


def test_reactions_and_unreactions(fake: FakeGraphAPI) -> None:
    react, unreact = parse(
        fake,
        [fake.reaction_event(PAGE, PSID, "m_9"), fake.reaction_event(PAGE, PSID, "m_9", action="unreact")],
    )
    assert isinstance(react, InboundReaction)
    assert isinstance(unreact, InboundReaction)
    assert react.provider_message_id == "m_9"
    assert react.reaction.emoji == "\u2764\ufe0f"
    assert react.reaction.action == "react"
    assert unreact.reaction.action == "unreact"
    assert (react.account, react.thread_key, react.sender) == (PAGE, PSID, PSID)


def test_delivery_with_mids_gives_one_item_per_mid_and_a_watermark(fake: FakeGraphAPI, clock: Clock) -> None:
    mark = clock() - timedelta(seconds=5)
    items = parse(fake, [fake.delivery_event(PAGE, PSID, mids=["m_a", "m_b"], watermark=mark)])
    assert all(isinstance(i, InboundDelivery) and i.status is DeliveryStatus.DELIVERED for i in items)
    by_mid = [i for i in items if isinstance(i, InboundDelivery) and i.provider_message_id]
    marks = [i for i in items if isinstance(i, InboundDelivery) and i.watermark]
    assert sorted(i.provider_message_id or "" for i in by_mid) == ["m_a", "m_b"]
    assert len(marks) == 1
    assert marks[0].watermark == mark
    assert marks[0].thread_key == PSID


def test_delivery_without_mids_is_a_watermark_only(fake: FakeGraphAPI) -> None:
    [item] = parse(fake, [fake.delivery_event(PAGE, PSID)])
    assert isinstance(item, InboundDelivery)
    assert item.provider_message_id is None
    assert item.watermark is not None
    assert item.thread_key == PSID


def test_delivery_without_event_timestamp_uses_the_entry_time(fake: FakeGraphAPI) -> None:
    ev = fake.delivery_event(PAGE, PSID)
    del ev.event["timestamp"]
    [item] = parse(fake, [ev])
    assert isinstance(item, InboundDelivery)


def test_read_is_a_watermark(fake: FakeGraphAPI, clock: Clock) -> None:
    [item] = parse(fake, [fake.read_event(PAGE, PSID)])
    assert isinstance(item, InboundDelivery)
    assert item.status is DeliveryStatus.READ
    assert item.watermark == clock()
    assert item.thread_key == PSID


def test_echo_of_our_own_send_names_the_omnilink_message(fake: FakeGraphAPI) -> None:
    ev = fake._echo(PAGE, PSID, "m_echo", fake.now(), {"text": "hi", "metadata": "msg_abc"}, fake.app_id)
    [item] = parse(fake, [ev], app_id=fake.app_id)
    assert isinstance(item, InboundMessage)
    assert item.echo
    assert item.echo_of == "msg_abc"
    assert (item.account, item.thread_key, item.sender) == (PAGE, PSID, PSID)


def test_echo_from_another_app_is_never_taken_as_ours(fake: FakeGraphAPI) -> None:
    ev = fake._echo(PAGE, PSID, "m_x", fake.now(), {"text": "hi", "metadata": "msg_abc"}, "999")
    [item] = parse(fake, [ev], app_id=fake.app_id)
    assert isinstance(item, InboundMessage)
    assert item.echo
    assert item.echo_of is None


def test_echo_of_a_page_inbox_message_is_an_echo_of_nothing(fake: FakeGraphAPI) -> None:
    [item] = parse(fake, [fake.inbox_echo_event(PAGE, PSID, "sent from the inbox")])
    assert isinstance(item, InboundMessage)
    assert item.echo
    assert item.echo_of is None
    assert item.parts == (TextPart(text="sent from the inbox"),)


def test_standby_events_are_parsed_and_marked(fake: FakeGraphAPI) -> None:
    ev = fake.message_event(PAGE, PSID, "while another app owns the thread", standby=True)
    body = fake.payload([ev])
    assert "standby" in body["entry"][0]
    assert "messaging" not in body["entry"][0]
    [item] = parse_payload(json.dumps(body).encode())
    assert isinstance(item, InboundMessage)
    assert item.raw is not None
    assert item.raw["omnilink_standby"] is True


def test_unknown_event_kinds_are_skipped(fake: FakeGraphAPI) -> None:
    ev = FakeEvent(
        PAGE, {"sender": {"id": PSID}, "recipient": {"id": PAGE}, "timestamp": 1, "optin": {"ref": "x"}}
    )
    assert parse(fake, [ev, fake.message_event(PAGE, PSID, "still here")])[0].kind == "message"  # type: ignore[attr-defined]


def test_deleted_messages_are_skipped(fake: FakeGraphAPI) -> None:
    ev = fake.message_event(PAGE, PSID, "x")
    ev.event["message"]["is_deleted"] = True
    assert parse(fake, [ev]) == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"object":"page"}',
        b'{"object":"instagram","entry":[]}',
        b'{"object":"page","entry":[{"id":"1","messaging":[{"recipient":{"id":"1"},"timestamp":1}]}]}',
        b'{"object":"page","entry":[{"id":"1","messaging":[{"sender":{"id":"2"},"recipient":{"id":"1"},'
        b'"timestamp":1,"message":{"text":"no mid"}}]}]}',
    ],
)
def test_bodies_meta_would_not_send_raise_payload_error(body: bytes) -> None:
    with pytest.raises(PayloadError):
        parse_payload(body)


def test_items_come_out_in_event_time_order(fake: FakeGraphAPI, clock: Clock) -> None:
    late = fake.message_event(PAGE, PSID, "second", at=clock() + timedelta(seconds=2))
    early = fake.message_event(PAGE, PSID, "first", at=clock())
    items = parse(fake, [late, early])
    assert [i.parts[0].text for i in items if isinstance(i, InboundMessage)] == ["first", "second"]  # type: ignore[union-attr]


def _item_key(item: object) -> tuple[str, ...]:
    if isinstance(item, InboundMessage):
        return ("message", item.account, item.provider_message_id)
    if isinstance(item, InboundReaction):
        return ("reaction", item.account, item.provider_message_id, item.reaction.action)
    assert isinstance(item, InboundDelivery)
    return (
        "delivery",
        item.account,
        item.status.value,
        item.provider_message_id or "",
        item.thread_key or "",
        str(item.watermark),
    )


@st.composite
def batches(draw: st.DrawFn) -> tuple[FakeGraphAPI, list[list[FakeEvent]], list[FakeEvent], int]:
    clock = Clock()
    fake = make_fake(clock)
    n_entries = draw(st.integers(1, 20))
    entries: list[list[FakeEvent]] = []
    unique: list[FakeEvent] = []
    for e in range(n_entries):
        page = draw(st.sampled_from([PAGE, "1002"]))
        events: list[FakeEvent] = []
        for i in range(draw(st.integers(1, 20))):
            psid = f"60000000000{draw(st.integers(0, 5))}"
            at = clock() + timedelta(milliseconds=draw(st.integers(-(10**6), 10**6)))
            kind = draw(
                st.sampled_from(["text", "qr", "postback", "reaction", "delivery", "read", "echo", "media"])
            )
            standby = draw(st.booleans())
            if kind == "text":
                ev = fake.message_event(page, psid, draw(st.text(max_size=30)), at=at, standby=standby)
            elif kind == "qr":
                ev = fake.message_event(page, psid, "Yes", quick_reply_payload=f"P{i}", at=at)
            elif kind == "media":
                ev = fake.message_event(
                    page,
                    psid,
                    attachments=[{"type": "image", "payload": {"url": f"https://x.example/{e}/{i}.png"}}],
                    at=at,
                )
            elif kind == "postback":
                ev = fake.postback_event(page, psid, "T", f"P{e}-{i}", at=at)
            elif kind == "reaction":
                ev = fake.reaction_event(page, psid, f"m_target_{e}_{i}", at=at)
            elif kind == "delivery":
                ev = fake.delivery_event(page, psid, mids=[f"m_d_{e}_{i}"], at=at)
            elif kind == "read":
                ev = fake.read_event(page, psid, at=at)
            else:
                ev = fake._echo(
                    page, psid, f"m_echo_{e}_{i}", at, {"text": "e", "metadata": f"msg_{e}_{i}"}, fake.app_id
                )
            events.append(ev)
            unique.append(ev)
        entries.append(events)
    seed = draw(st.integers(0, 2**16))
    return fake, entries, unique, seed


def _expected_keys(events: list[FakeEvent]) -> list[tuple[str, ...]]:
    """What parsing must yield for each event, independently of the parser."""
    from omnilink_messenger._parse import from_ms

    keys: list[tuple[str, ...]] = []
    for ev in events:
        body, page = ev.event, ev.page_id
        if ev.kind in ("message", "echo", "postback"):
            keys.append(("message", page, str(ev.mid)))
        elif ev.kind == "reaction":
            keys.append(("reaction", page, body["reaction"]["mid"], body["reaction"]["action"]))
        elif ev.kind == "delivery":
            psid = body["sender"]["id"]
            keys.extend(
                ("delivery", page, "delivered", mid, psid, "None") for mid in body["delivery"]["mids"]
            )
            keys.append(
                ("delivery", page, "delivered", "", psid, str(from_ms(body["delivery"]["watermark"])))
            )
        elif ev.kind == "read":
            keys.append(
                ("delivery", page, "read", "", body["sender"]["id"], str(from_ms(body["read"]["watermark"])))
            )
    return keys


@given(batch=batches(), redeliver=st.integers(1, 3))
@settings(max_examples=30)  # up to 400 events per example: slow
def test_random_shuffled_redelivered_batches_parse_every_event_once(
    batch: tuple[FakeGraphAPI, list[list[FakeEvent]], list[FakeEvent], int], redeliver: int
) -> None:
    fake, entries, unique, seed = batch
    rng = random.Random(seed)
    payload = {"object": "page", "entry": []}  # type: dict[str, object]
    entry_list: list[dict[str, object]] = []
    for events in entries:
        shuffled = list(events)
        rng.shuffle(shuffled)
        by_key: dict[str, list[dict[str, object]]] = {}
        for ev in shuffled:
            by_key.setdefault("standby" if ev.standby else "messaging", []).append(ev.event)
        entry_list.append({"id": events[0].page_id, "time": to_ms(fake.now()), **by_key})
    rng.shuffle(entry_list)
    payload["entry"] = entry_list
    request = fake.signed_request(payload)
    first = parse_payload(request.body, app_id=fake.app_id)
    keys = [_item_key(i) for i in first]
    assert Counter(keys) == Counter(_expected_keys(unique)), "an event was lost or parsed twice"
    mids = {ev.mid for ev in unique if ev.mid}
    assert mids <= {i.provider_message_id for i in first if isinstance(i, InboundMessage)}
    times = [i.sent_at if isinstance(i, InboundMessage) else None for i in first]
    ordered = [t for t in times if t is not None]
    assert ordered == sorted(ordered)
    for _ in range(redeliver):
        again = parse_payload(request.body, app_id=fake.app_id)
        assert sorted(_item_key(i) for i in again) == sorted(keys)


def test_batch_request_helper_duplicates_and_shuffles(fake: FakeGraphAPI) -> None:
    events = [fake.message_event(PAGE, PSID, f"m{i}", mid=f"m_{i}") for i in range(30)]
    request = fake.batch_request(events, seed=3, entry_size=4, duplicates=0.5)
    items = parse_payload(request.body)
    assert len(items) > 30
    assert {i.provider_message_id for i in items if isinstance(i, InboundMessage)} == {
        f"m_{i}" for i in range(30)
    }
    assert len(json.loads(request.body)["entry"]) > 1
