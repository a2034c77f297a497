"""Account Activity webhooks: CRC, signatures, and every event kind parsed into inbound items."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import replace

import pytest
from twitter_harness import Harness

from omnilink import (
    DeliveryStatus,
    InboundDeletion,
    InboundDelivery,
    InboundMessage,
    InboundTyping,
    MediaPart,
    PayloadError,
    SignatureError,
    TextPart,
    WebhookRequest,
)
from omnilink_twitter import crc_response_token, dm_conversation_id, snowflake_time

pytestmark = pytest.mark.anyio


def test_crc_token_is_base64_hmac_sha256_of_the_token() -> None:
    expected = base64.b64encode(hmac.new(b"secret", b"T", hashlib.sha256).digest()).decode()
    assert crc_response_token("secret", "T") == "sha256=" + expected


def test_dm_conversation_id_compares_ids_as_integers() -> None:
    assert dm_conversation_id("999", "1000") == "999-1000"
    assert dm_conversation_id("1000", "999") == "999-1000"


async def test_crc_challenge_is_answered_with_response_token(harness: Harness) -> None:
    result = await harness.channel.handle_webhook(harness.fake.crc_request("abc"))
    assert result.response.status == 200
    assert result.response.content_type == "application/json"
    secret = harness.fake.settings.consumer_secret
    assert json.loads(result.response.body) == {"response_token": crc_response_token(secret, "abc")}
    assert result.items == ()


async def test_get_without_crc_token_is_refused(harness: Harness) -> None:
    with pytest.raises(PayloadError):
        await harness.channel.handle_webhook(
            WebhookRequest.build("GET", "https://h.example/webhooks/twitter", {})
        )


async def test_customer_dm_becomes_inbound_message(harness: Harness) -> None:
    fake = harness.fake
    event = fake.customer_dm("2000000001", "my order is late")
    result = await harness.channel.handle_webhook(fake.dm_webhook(event))
    [item] = result.items
    assert isinstance(item, InboundMessage)
    assert item.account == fake.settings.user_id
    assert item.thread_key == f"dm:{fake.settings.user_id}-2000000001"
    assert item.sender == "2000000001"
    assert item.sender_name == "Customer 2000000001"
    assert item.provider_message_id == event.id
    assert item.parts == (TextPart(text="my order is late"),)
    assert item.sent_at == event.created_at.replace(microsecond=event.created_at.microsecond // 1000 * 1000)
    assert not item.echo


async def test_dm_with_photo_has_media_part(harness: Harness) -> None:
    event = harness.fake.customer_dm("2000000001", "see this", photo_url="https://pbs.twimg.com/dm/1.jpg")
    [item] = (await harness.channel.handle_webhook(harness.fake.dm_webhook(event))).items
    assert isinstance(item, InboundMessage)
    assert item.parts[1] == MediaPart(url="https://pbs.twimg.com/dm/1.jpg", content_type="image/jpeg")


async def test_tampered_body_is_refused(harness: Harness) -> None:
    request = harness.fake.dm_webhook(harness.fake.customer_dm("2000000001", "hi"))
    with pytest.raises(SignatureError):
        await harness.channel.handle_webhook(replace(request, body=request.body.replace(b"hi", b"ho")))


async def test_missing_signature_is_refused(harness: Harness) -> None:
    request = harness.fake.dm_webhook(harness.fake.customer_dm("2000000001", "hi"))
    headers = {k: v for k, v in request.headers.items() if k != "x-twitter-webhooks-signature"}
    with pytest.raises(SignatureError):
        await harness.channel.handle_webhook(replace(request, headers=headers))


async def test_signature_with_another_secret_is_refused(harness: Harness) -> None:
    fake = harness.fake
    request = fake.signed_request(fake.activity(dms=[fake.customer_dm("2000000001", "hi")]), secret="wrong")
    with pytest.raises(SignatureError):
        await harness.channel.handle_webhook(request)


async def test_signed_garbage_is_a_payload_error(harness: Harness) -> None:
    fake = harness.fake
    request = fake.signed_request({"for_user_id": fake.settings.user_id, "direct_message_events": [{"x": 1}]})
    request = replace(request)
    with pytest.raises(PayloadError):
        await harness.channel.handle_webhook(
            replace(
                request,
                body=b"{",
                headers={**request.headers, "x-twitter-webhooks-signature": _sig(fake, b"{")},
            )
        )


def _sig(fake: object, body: bytes) -> str:
    from omnilink_twitter import sign_body
    from omnilink_twitter.testing import FakeX

    assert isinstance(fake, FakeX)
    return sign_body(fake.settings.consumer_secret, body)


async def test_every_event_of_a_batch_is_parsed_in_order(harness: Harness) -> None:
    fake = harness.fake
    first = fake.customer_dm("2000000001", "one")
    second = fake.customer_dm("2000000002", "two")
    post = fake.customer_post("2000000003", "@acmehelp help!")
    request = fake.signed_request(
        fake.activity(
            dms=[second, first], posts=[post], typing=["2000000001"], reads=[("2000000002", second.id)]
        )
    )
    items = (await harness.channel.handle_webhook(request)).items
    kinds = [type(i).__name__ for i in items]
    assert kinds == ["InboundMessage", "InboundMessage", "InboundMessage", "InboundTyping", "InboundDelivery"]
    assert [i.provider_message_id for i in items[:3] if isinstance(i, InboundMessage)] == [
        second.id,
        first.id,
        post.id,
    ]


async def test_typing_event_becomes_inbound_typing(harness: Harness) -> None:
    fake = harness.fake
    [item] = (
        await harness.channel.handle_webhook(fake.signed_request(fake.activity(typing=["2000000001"])))
    ).items
    assert item == InboundTyping(
        account=fake.settings.user_id, thread_key=f"dm:{fake.settings.user_id}-2000000001", on=True
    )


async def test_read_event_is_a_read_receipt_with_a_watermark(harness: Harness) -> None:
    fake = harness.fake
    event = fake.customer_dm("2000000001", "hello")
    request = fake.signed_request(fake.activity(reads=[("2000000001", event.id)]))
    [item] = (await harness.channel.handle_webhook(request)).items
    assert isinstance(item, InboundDelivery)
    assert item.status is DeliveryStatus.READ
    assert item.provider_message_id == event.id
    assert item.thread_key == f"dm:{fake.settings.user_id}-2000000001"
    assert item.watermark == snowflake_time(event.id)
    assert item.watermark is not None
    assert abs((item.watermark - event.created_at).total_seconds()) < 0.002


async def test_our_own_read_marks_are_ignored(harness: Harness) -> None:
    fake = harness.fake
    event = fake.customer_dm("2000000001", "hello")
    request = fake.signed_request(
        fake.activity(reads=[(fake.settings.user_id, event.id)], typing=[fake.settings.user_id])
    )
    assert (await harness.channel.handle_webhook(request)).items == ()


async def test_activity_for_another_user_is_acknowledged_and_ignored(harness: Harness) -> None:
    fake = harness.fake
    payload = fake.activity(dms=[fake.customer_dm("2000000001", "hi")])
    payload["for_user_id"] = "42"
    result = await harness.channel.handle_webhook(fake.signed_request(payload))
    assert result.response.status == 200
    assert result.items == ()


async def test_mention_starts_a_post_thread_rooted_at_itself(harness: Harness) -> None:
    post = harness.fake.customer_post("2000000003", "@acmehelp my package?")
    [item] = (await harness.channel.handle_webhook(harness.fake.post_webhook(post))).items
    assert isinstance(item, InboundMessage)
    assert item.thread_key == f"post:{post.id}"
    assert item.sender == "2000000003"
    assert item.references == ()


async def test_reply_to_a_known_post_joins_its_root_thread(harness: Harness) -> None:
    fake = harness.fake
    root = fake.customer_post("2000000003", "@acmehelp my package?")
    await harness.channel.handle_webhook(fake.post_webhook(root))
    middle = fake.customer_post("2000000003", "@acmehelp order 123", in_reply_to=root.id)
    last = fake.customer_post("2000000003", "@acmehelp still waiting", in_reply_to=middle.id)
    items = (await harness.channel.handle_webhook(fake.post_webhook(middle, last))).items
    assert [i.thread_key for i in items if isinstance(i, InboundMessage)] == [f"post:{root.id}"] * 2
    assert [i.references for i in items if isinstance(i, InboundMessage)] == [(root.id,), (middle.id,)]


async def test_echo_of_our_dm_is_marked_echo_with_the_customer_as_sender(harness: Harness) -> None:
    fake = harness.fake
    fake.add_user("2000000001")
    from omnilink_twitter.testing import DmEvent

    me = fake.settings.user_id
    ours = DmEvent(
        "1600000000000000001", me, dm_conversation_id(me, "2000000001"), "we sent this", fake.now()
    )
    [item] = (await harness.channel.handle_webhook(fake.dm_webhook(ours))).items
    assert isinstance(item, InboundMessage)
    assert item.echo
    assert item.echo_of is None
    assert item.sender == "2000000001"
    assert item.provider_message_id == ours.id


async def test_retweets_are_ignored(harness: Harness) -> None:
    fake = harness.fake
    post = fake.customer_post("2000000003", "RT @acmehelp: news")
    payload = fake.activity(posts=[post])
    payload["tweet_create_events"][0]["retweeted_status"] = {"id_str": "1"}
    assert (await harness.channel.handle_webhook(fake.signed_request(payload))).items == ()


@pytest.mark.parametrize(
    "payload",
    [
        {"for_user_id": "1000000001", "direct_message_events": ["not an object"]},
        {"for_user_id": "1000000001", "direct_message_events": [{"type": "message_create", "id": "1"}]},
        {"for_user_id": "1000000001", "tweet_create_events": [{"id_str": "5"}]},
        {"for_user_id": "1000000001", "direct_message_mark_read_events": [{"sender_id": "2"}]},
    ],
)
async def test_signed_but_malformed_events_are_payload_errors(
    harness: Harness, payload: dict[str, object]
) -> None:
    with pytest.raises(PayloadError):
        await harness.channel.handle_webhook(harness.fake.signed_request(payload))


async def test_tweet_delete_events_become_deletions(harness: Harness) -> None:
    fake = harness.fake
    post = fake.customer_post("2000000001", "@acmehelp oops")
    result = await harness.channel.handle_webhook(fake.delete_post(post))
    [item] = result.items
    assert isinstance(item, InboundDeletion)
    assert (item.account, item.provider_message_id) == (fake.settings.user_id, post.id)
    assert item.at == fake.now().replace(microsecond=(fake.now().microsecond // 1000) * 1000)
