"""Sending through the fake Graph API: bodies, limits, sender actions and error mapping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from messenger_support import AGENT_PAGE, PAGE, Clock, open_channel, plain_context

from omnilink import (
    Button,
    ButtonsPart,
    CredentialsError,
    MediaPart,
    OutboundMessage,
    OutcomeUnknownError,
    Part,
    PermanentSendError,
    QuickRepliesPart,
    QuickReply,
    RateLimitedError,
    RecipientUnavailableError,
    RetryableSendError,
    TextPart,
)
from omnilink.testing import Fault
from omnilink_messenger import MessengerChannel, MessengerConfig
from omnilink_messenger.testing import FakeGraphAPI, rate_limit_fault, server_error_fault

pytestmark = pytest.mark.anyio
PSID = "6100000000000001"


def outbound(*parts: Part, account: str = PAGE, recipient: str = PSID, **kw: Any) -> OutboundMessage:
    return OutboundMessage(
        message_id="msg_0123456789abcdef0123456789abcdef",
        conversation_id="cnv_1",
        account=account,
        thread_key=recipient,
        recipient=recipient,
        parts=parts,
        send_options=kw.pop("send_options", {"messaging_type": "RESPONSE"}),
        **kw,
    )


async def test_text_is_sent_with_metadata_and_messaging_type(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    async with open_channel(fake, clock) as channel:
        result = await channel.send(outbound(TextPart(text="Grüße 👋")))
    [sent] = fake.sent
    assert result.provider_message_id == sent.mid
    assert sent.text == "Grüße 👋"
    assert sent.metadata == "msg_0123456789abcdef0123456789abcdef"
    assert sent.messaging_type == "RESPONSE"
    assert sent.tag is None
    assert result.details["recipient_id"] == PSID


async def test_send_is_echoed_with_metadata_and_app_id(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    async with open_channel(fake, clock) as channel:
        await channel.send(outbound(TextPart(text="hello")))
    [echo] = fake.take_pending()
    message = echo.event["message"]
    assert message["is_echo"] is True
    assert message["metadata"] == "msg_0123456789abcdef0123456789abcdef"
    assert str(message["app_id"]) == fake.app_id
    assert echo.event["sender"]["id"] == PAGE
    assert echo.event["recipient"]["id"] == PSID


async def test_human_agent_tag_is_sent_when_chosen(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(AGENT_PAGE, PSID, "hi")
    clock.advance(timedelta(days=2))
    async with open_channel(fake, clock) as channel:
        await channel.send(
            outbound(
                TextPart(text="late answer"),
                account=AGENT_PAGE,
                send_options={"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"},
            )
        )
    assert (fake.sent[0].messaging_type, fake.sent[0].tag) == ("MESSAGE_TAG", "HUMAN_AGENT")


async def test_quick_replies_are_sent_as_text_quick_replies(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    replies = tuple(QuickReply(title=f"Option {i}", payload=f"OPT_{i}") for i in range(13))
    async with open_channel(fake, clock) as channel:
        await channel.send(outbound(QuickRepliesPart(text="Pick one", replies=replies)))
    message = fake.sent[0].message
    assert message["text"] == "Pick one"
    assert message["quick_replies"][0] == {"content_type": "text", "title": "Option 0", "payload": "OPT_0"}
    assert len(message["quick_replies"]) == 13


async def test_buttons_use_the_button_template(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    part = ButtonsPart(
        text="What next?",
        buttons=(
            Button(title="Track order", payload="TRACK"),
            Button(title="Website", url="https://shop.example"),
        ),
    )
    async with open_channel(fake, clock) as channel:
        await channel.send(outbound(part))
    attachment = fake.sent[0].message["attachment"]
    assert attachment["type"] == "template"
    assert attachment["payload"] == {
        "template_type": "button",
        "text": "What next?",
        "buttons": [
            {"type": "postback", "title": "Track order", "payload": "TRACK"},
            {"type": "web_url", "url": "https://shop.example", "title": "Website"},
        ],
    }


async def test_long_button_text_goes_out_before_the_template(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    text = " ".join(f"w{i}" for i in range(400))
    part = ButtonsPart(text=text, buttons=(Button(title="OK", payload="OK"),))
    async with open_channel(fake, clock) as channel:
        result = await channel.send(outbound(part))
    assert len(fake.sent) == 2
    assert result.provider_message_id == fake.sent[-1].mid
    assert result.details["extra_provider_ids"] == fake.sent[0].mid
    assert (fake.sent[0].text or "") + (fake.sent[1].text or "") == text


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [("image/png", "image"), ("audio/mpeg", "audio"), ("video/mp4", "video"), ("application/pdf", "file")],
)
async def test_media_is_sent_by_url_with_its_kind(
    fake: FakeGraphAPI, clock: Clock, content_type: str, kind: str
) -> None:
    fake.message_event(PAGE, PSID, "hi")
    url = f"https://files.example/{kind}"
    fake.add_file(url, 1000, content_type)
    async with open_channel(fake, clock) as channel:
        await channel.send(outbound(MediaPart(url=url, content_type=content_type)))
    assert fake.sent[0].message["attachment"] == {"type": kind, "payload": {"url": url, "is_reusable": True}}


async def test_oversized_media_fails_permanently_before_any_request(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    async with open_channel(fake, clock) as channel:
        with pytest.raises(PermanentSendError):
            await channel.send(
                outbound(MediaPart(url="https://f/x.mp4", content_type="video/mp4", size=26 * 2**20))
            )
        with pytest.raises(PermanentSendError):
            await channel.send(
                outbound(MediaPart(url="https://f/x.png", content_type="image/png", size=9 * 2**20))
            )
    assert fake.requests == []


async def test_media_too_large_at_meta_maps_to_permanent_error(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    fake.add_file("https://files.example/big.zip", 30 * 2**20, "application/zip")
    async with open_channel(fake, clock) as channel:
        with pytest.raises(PermanentSendError) as info:
            await channel.send(outbound(MediaPart(url="https://files.example/big.zip")))
    assert info.value.provider_code == "100/2018109"
    assert info.value.request_id


@pytest.mark.parametrize(
    "part",
    [
        TextPart(text="x" * 2001),
        QuickRepliesPart(text="p", replies=tuple(QuickReply(title=f"{i}", payload="p") for i in range(14))),
        QuickRepliesPart(text="p", replies=(QuickReply(title="x" * 21, payload="p"),)),
        ButtonsPart(text="p", buttons=tuple(Button(title=f"{i}", payload="p") for i in range(4))),
        ButtonsPart(text="p", buttons=(Button(title="x" * 21, payload="p"),)),
        ButtonsPart(text="p", buttons=(Button(title="x", payload="p" * 1001),)),
        QuickRepliesPart(text="p", replies=(QuickReply(title="x", payload="p" * 1001),)),
        QuickRepliesPart(text=" ", replies=(QuickReply(title="x", payload="p"),)),
        ButtonsPart(text="", buttons=(Button(title="x", payload="p"),)),
        TextPart(text=""),
    ],
)
async def test_content_over_meta_limits_fails_permanently_before_any_request(
    fake: FakeGraphAPI, clock: Clock, part: Part
) -> None:
    fake.message_event(PAGE, PSID, "hi")
    async with open_channel(fake, clock) as channel:
        with pytest.raises(PermanentSendError):
            await channel.send(outbound(part))
    assert fake.requests == []


@pytest.mark.parametrize(
    "body",
    [
        {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "x" * 2001}},
        {
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {
                "text": "x",
                "quick_replies": [{"content_type": "text", "title": "t", "payload": "p"}] * 14,
            },
        },
        {
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {
                "text": "x",
                "quick_replies": [{"content_type": "text", "title": "x" * 21, "payload": "p"}],
            },
        },
        {
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {
                "attachment": {
                    "type": "template",
                    "payload": {
                        "template_type": "button",
                        "text": "x",
                        "buttons": [{"type": "postback", "title": "t", "payload": "p"}] * 4,
                    },
                }
            },
        },
        {"recipient": {"id": PSID}, "message": {"text": "no messaging_type"}},
        {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": ""}},
        {
            "recipient": {"id": PSID},
            "messaging_type": "RESPONSE",
            "message": {"attachment": {"type": "image", "payload": {"url": "https://not.fetchable/x.png"}}},
        },
    ],
)
async def test_fake_refuses_what_meta_refuses(fake: FakeGraphAPI, clock: Clock, body: dict[str, Any]) -> None:
    fake.message_event(PAGE, PSID, "hi")
    async with open_channel(fake, clock) as channel:
        response = await channel.context.http.post(
            "https://graph.facebook.com/v21.0/me/messages", params={"access_token": "token-1001"}, json=body
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == 100
    assert response.json()["error"]["fbtrace_id"]
    assert fake.sent == []


async def test_typing_and_mark_seen_are_sender_actions_alone(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    async with open_channel(fake, clock) as channel:
        await channel.send_typing(PAGE, PSID, True)
        await channel.send_typing(PAGE, PSID, False)
        await channel.mark_seen(PAGE, PSID)
    assert fake.sender_actions == [
        (PAGE, PSID, "typing_on"),
        (PAGE, PSID, "typing_off"),
        (PAGE, PSID, "mark_seen"),
    ]
    assert fake.sent == []


async def test_each_page_uses_its_own_token(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    fake.message_event(AGENT_PAGE, "6200000000000002", "hi")
    async with open_channel(fake, clock) as channel:
        await channel.send(outbound(TextPart(text="a")))
        await channel.send(outbound(TextPart(text="b"), account=AGENT_PAGE, recipient="6200000000000002"))
    assert [(s.page_id, s.recipient) for s in fake.sent] == [(PAGE, PSID), (AGENT_PAGE, "6200000000000002")]


async def test_rate_limit_maps_to_rate_limited_with_backoff(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    fake.inject(rate_limit_fault())
    async with open_channel(fake, clock) as channel:
        with pytest.raises(RateLimitedError) as info:
            await channel.send(outbound(TextPart(text="x")))
        assert info.value.provider_code == "613"
        assert info.value.retry_after
        assert info.value.retry_after > 0
        assert info.value.request_id
        fake.inject(rate_limit_fault(code=4))
        with pytest.raises(RateLimitedError):
            await channel.send(outbound(TextPart(text="x")))
        await channel.send(outbound(TextPart(text="x")))
    assert len(fake.sent) == 1


async def test_rate_limit_uses_business_usage_header_when_present(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    fault = rate_limit_fault()
    fault.headers = {"x-business-use-case-usage": '{"1001":[{"estimated_time_to_regain_access":3}]}'}
    fake.inject(fault)
    async with open_channel(fake, clock) as channel:
        with pytest.raises(RateLimitedError) as info:
            await channel.send(outbound(TextPart(text="x")))
    assert info.value.retry_after == 180.0


async def test_server_errors_are_retryable(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    fake.inject(server_error_fault(status=503))
    fake.inject(Fault(status=502, body={"unexpected": True}, endpoint="messages"))
    async with open_channel(fake, clock) as channel:
        for _ in range(2):
            with pytest.raises(RetryableSendError) as info:
                await channel.send(outbound(TextPart(text="x")))
            assert not isinstance(info.value, RateLimitedError)


async def test_bad_token_is_a_credentials_error(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    pages = [{"page_id": PAGE, "access_token": "wrong"}]
    async with open_channel(fake, clock, pages=pages) as channel:
        with pytest.raises(CredentialsError) as info:
            await channel.send(outbound(TextPart(text="x")))
    assert info.value.provider_code == "190"
    assert "wrong" not in str(info.value)


async def test_unavailable_person_is_recipient_unavailable(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    fake.set_unavailable(PAGE, PSID)
    async with open_channel(fake, clock) as channel:
        with pytest.raises(RecipientUnavailableError) as info:
            await channel.send(outbound(TextPart(text="x")))
    assert info.value.provider_code == "551/1545041"


async def test_unknown_user_is_recipient_unavailable(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_channel(fake, clock) as channel:
        with pytest.raises(RecipientUnavailableError):
            await channel.send(outbound(TextPart(text="x")))


async def test_send_outside_the_window_is_a_permanent_error(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    clock.advance(timedelta(hours=25))
    async with open_channel(fake, clock) as channel:
        with pytest.raises(PermanentSendError) as info:
            await channel.send(outbound(TextPart(text="x")))
    assert info.value.provider_code == "10/2018278"


async def test_timeout_after_meta_accepted_is_outcome_unknown(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    fake.inject(Fault(kind="timeout_after"))
    async with open_channel(fake, clock) as channel:
        with pytest.raises(OutcomeUnknownError):
            await channel.send(outbound(TextPart(text="x")))
    assert len(fake.sent) == 1


async def test_timeout_before_reaching_meta_sends_nothing(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    fake.inject(Fault(kind="timeout_before"))
    async with open_channel(fake, clock) as channel:
        with pytest.raises((OutcomeUnknownError, RetryableSendError)):
            await channel.send(outbound(TextPart(text="x")))
    assert fake.sent == []


async def test_unconnected_page_is_refused(fake: FakeGraphAPI, clock: Clock) -> None:
    async with open_channel(fake, clock) as channel:
        with pytest.raises(PermanentSendError):
            await channel.send(outbound(TextPart(text="x"), account="999"))


async def test_fake_served_on_localhost_works_end_to_end(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi")
    async with fake.serve() as base_url, httpx.AsyncClient() as http:
        config = MessengerConfig.model_validate(fake.channel_config(graph_base_url=base_url))
        channel = MessengerChannel(config, plain_context(http, clock))
        result = await channel.send(outbound(TextPart(text="over real HTTP")))
    assert fake.sent[0].mid == result.provider_message_id


async def test_thread_owned_by_another_app_is_a_permanent_error(fake: FakeGraphAPI, clock: Clock) -> None:
    fake.message_event(PAGE, PSID, "hi", standby=True)
    async with open_channel(fake, clock) as channel:
        with pytest.raises(PermanentSendError) as info:
            await channel.send(outbound(TextPart(text="x")))
        assert info.value.provider_code == "10/2018300"
        fake.set_thread_owner(PAGE, PSID, ours=True)
        await channel.send(outbound(TextPart(text="x")))
    assert len(fake.sent) == 1
