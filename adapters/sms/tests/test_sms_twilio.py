"""The SMS channel on Twilio, end to end through a Hub and FakeTwilio."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import anyio
import pytest
from sms_support import CUSTOMER, OTHER_CUSTOMER, PUBLIC_URL, open_hub, twilio_config

from omnilink import (
    AddressError,
    ContentError,
    CredentialsError,
    DeliveryStatus,
    Direction,
    Hub,
    MediaPart,
    OptedOutError,
    OutboundMessage,
    OutcomeUnknownError,
    PermanentSendError,
    RateLimitedError,
    RetryableSendError,
    TextPart,
)
from omnilink.testing import Fault
from omnilink_sms import SmsChannel
from omnilink_sms.testing import FakeTwilio

pytestmark = pytest.mark.anyio

BUSINESS = "+14155550100"
SERVICE = "MG" + "a" * 32


def fake_twilio(**kw: Any) -> FakeTwilio:
    return FakeTwilio(numbers=[BUSINESS], webhook_base=f"{PUBLIC_URL}/webhooks/sms", **kw)


def outbound(
    text: str = "hello", *, recipient: str = CUSTOMER, account: str = BUSINESS, **kw: Any
) -> OutboundMessage:
    return OutboundMessage(
        message_id="msg_test", conversation_id="cnv_test", account=account, thread_key=recipient,
        recipient=recipient, parts=(TextPart(text=text),), **kw,
    )  # fmt: skip


def sms(hub: Hub) -> SmsChannel:
    channel = hub.channel("sms")
    assert isinstance(channel, SmsChannel)
    return channel


async def only_conversation(hub: Hub) -> str:
    conversations = await hub.conversations()
    assert len(conversations) == 1
    return conversations[0].id


async def test_inbound_sms_reply_and_status_callbacks_end_delivered() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        response = await fake.deliver(fake.customer_message(CUSTOMER, body="Where is my order?"))
        assert response.status == 200
        assert response.content_type.startswith("text/xml")
        assert response.body == b'<?xml version="1.0" encoding="UTF-8"?><Response/>'
        conversation_id = await only_conversation(hub)
        conversation = await hub.conversation(conversation_id)
        assert [(t.account, t.key) for t in conversation.threads] == [(BUSINESS, CUSTOMER)]

        reply = await hub.reply(conversation_id, "It ships today.")
        await hub.drain()
        assert [(r["to"], r["from"], r["body"]) for r in fake.sent] == [
            (CUSTOMER, BUSINESS, "It ships today.")
        ]
        assert fake.sent[0]["status_callback"] == f"{PUBLIC_URL}/webhooks/sms/twilio/status"
        sent = await hub.message(reply.id)
        assert sent.provider_message_id == fake.sent[0]["sid"]
        assert sent.send_details["segments"] == "1"
        assert sent.send_details["encoding"] == "GSM-7"

        sid = fake.sent[0]["sid"]
        for request in fake.status_requests(
            sid, ("sending", "sent", "delivered"), duplicate=True, shuffle=True
        ):
            assert (await fake.deliver(request)).status == 200
        assert (await hub.message(reply.id)).status is DeliveryStatus.DELIVERED


async def test_failed_status_callback_records_the_twilio_error() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        await fake.deliver(fake.customer_message(CUSTOMER, body="hi"))
        reply = await hub.reply(await only_conversation(hub), "hello")
        await hub.drain()
        await fake.deliver(fake.status_request(fake.sent[0]["sid"], "undelivered", error_code="30007"))
        message = await hub.message(reply.id)
        assert message.status is DeliveryStatus.UNDELIVERED
        assert message.error is not None
        assert "30007" in message.error


async def test_stop_keyword_opts_contact_out_and_start_opts_back_in() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        await fake.deliver(fake.customer_message(CUSTOMER, body="Hello"))
        conversation_id = await only_conversation(hub)
        response = await fake.deliver(fake.customer_message(CUSTOMER, body="  stop "))
        assert response.status == 200
        texts = [m.text for m in await hub.messages(conversation_id) if m.direction is Direction.INBOUND]
        assert "  stop " in texts  # the helpdesk still sees the STOP
        with pytest.raises(OptedOutError) as refused:
            await hub.reply(conversation_id, "Are you sure?")
        assert any(r.kind == "ask_opt_in" for r in refused.value.remedies)
        assert fake.sent == []

        await fake.deliver(fake.customer_message(CUSTOMER, body="START"))
        await hub.reply(conversation_id, "Welcome back")
        await hub.drain()
        assert [r["body"] for r in fake.sent] == ["Welcome back"]


async def test_provider_opt_out_21610_records_the_opt_out() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        await fake.deliver(fake.customer_message(CUSTOMER, body="Hello"))
        conversation_id = await only_conversation(hub)
        fake.opted_out.add((BUSINESS, CUSTOMER))  # the customer opted out somewhere we did not see
        with pytest.raises(PermanentSendError) as failed:
            await sms(hub).send(outbound())
        assert failed.value.provider_code == "21610"
        assert CUSTOMER in str(failed.value)
        with pytest.raises(OptedOutError):
            await hub.reply(conversation_id, "still there?")


async def test_help_keyword_is_answered_with_twiml() -> None:
    fake = fake_twilio()
    config = twilio_config(fake, help_text="Acme support: reply STOP to opt out. <help@acme.example>")
    async with open_hub(config, fake) as hub:
        response = await fake.deliver(fake.customer_message(CUSTOMER, body="help"))
        assert response.status == 200
        assert response.body == (
            b'<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
            b"Acme support: reply STOP to opt out. &lt;help@acme.example&gt;</Message></Response>"
        )
        assert len(await hub.conversations()) == 1


async def test_inbound_mms_becomes_media_parts() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        base = "https://api.twilio.com/2010-04-01/Accounts/AC/Messages/MM/Media"
        media = [(f"{base}/ME1", "image/jpeg"), (f"{base}/ME2", "video/mp4")]
        await fake.deliver(fake.customer_message(CUSTOMER, body="see photo", media=media))
        (message,) = await hub.messages(await only_conversation(hub))
        assert message.parts[0] == TextPart(text="see photo")
        assert [(p.url, p.content_type) for p in message.parts[1:] if isinstance(p, MediaPart)] == media


async def test_tampered_or_unsigned_webhooks_are_refused() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        valid = fake.customer_message(CUSTOMER, body="hi")
        wrong_token = fake.signed_request(valid.url, [("Body", "hi")], token="not-the-token")
        variants = [
            replace(valid, body=valid.body.replace(b"Body=hi", b"Body=ho")),
            replace(valid, url=valid.url + "?extra=1"),
            replace(valid, headers={k: v for k, v in valid.headers.items() if k != "x-twilio-signature"}),
            replace(wrong_token, body=valid.body),
        ]
        for variant in variants:
            assert (await hub.handle_webhook("sms", variant)).status == 403
        assert await hub.conversations() == []


async def test_log_only_mode_accepts_unsigned_requests() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake, signature_mode="log_only"), fake) as hub:
        valid = fake.customer_message(CUSTOMER, body="hi")
        unsigned = replace(
            valid, headers={k: v for k, v in valid.headers.items() if k != "x-twilio-signature"}
        )
        assert (await hub.handle_webhook("sms", unsigned)).status == 200
        assert len(await hub.conversations()) == 1


async def test_forwarded_headers_rebuild_the_signed_url_only_when_trusted() -> None:
    fake = fake_twilio()
    signed = fake.customer_message(CUSTOMER, body="hi")
    behind_proxy = replace(
        signed,
        url="http://10.0.0.7:8000/webhooks/sms/twilio/inbound",
        headers={**signed.headers, "x-forwarded-proto": "https", "x-forwarded-host": "helpdesk.example"},
    )
    async with open_hub(twilio_config(fake), fake, public_url=None) as hub:
        assert (await hub.handle_webhook("sms", behind_proxy)).status == 403
    async with open_hub(twilio_config(fake, trust_forwarded_headers=True), fake, public_url=None) as hub:
        assert (await hub.handle_webhook("sms", behind_proxy)).status == 200


async def test_channel_public_url_overrides_the_hub_url() -> None:
    fake = FakeTwilio(numbers=[BUSINESS], webhook_base="https://sms.acme.example/hooks")
    config = twilio_config(fake, public_url="https://sms.acme.example/hooks")
    async with open_hub(config, fake) as hub:
        request = fake.customer_message(CUSTOMER, body="hi")
        assert request.path == "/twilio/inbound"
        assert (await fake.deliver(request)).status == 200
        await hub.reply(await only_conversation(hub), "ok")
        await hub.drain()
        assert fake.sent[0]["status_callback"] == "https://sms.acme.example/hooks/twilio/status"


async def test_invalid_number_raises_address_error_before_any_request() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        for bad in ("12345", "+1 555 000 1111", "call me"):
            with pytest.raises(AddressError):
                await hub.start_conversation("sms", bad, "hello")
        assert fake.requests == []


async def test_national_numbers_use_the_default_region() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake, default_region="US"), fake) as hub:
        assert sms(hub).normalize_address("(415) 555-0123") == CUSTOMER
        await hub.start_conversation("sms", "415 555 0124", "Your order shipped")
        await hub.drain()
        assert [r["to"] for r in fake.sent] == [OTHER_CUSTOMER]


async def test_long_reply_is_split_at_1600_characters() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        await fake.deliver(fake.customer_message(CUSTOMER, body="details please"))
        text = " ".join(f"word{i}" for i in range(500))  # about 3400 characters
        await hub.reply(await only_conversation(hub), text)
        await hub.drain()
        bodies = [r["body"] for r in fake.sent]
        assert len(bodies) == 3
        assert all(len(b) <= 1600 for b in bodies)
        assert "".join(bodies) == text


async def test_oversized_media_is_refused_before_sending() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        await fake.deliver(fake.customer_message(CUSTOMER, body="send the manual"))
        conversation_id = await only_conversation(hub)
        manual = MediaPart(
            url="https://files.example/manual.pdf", content_type="application/pdf", size=900_000
        )
        with pytest.raises(ContentError):
            await hub.reply(conversation_id, [manual])
        photo = MediaPart(url="https://files.example/p.jpg", content_type="image/jpeg", size=6_000_000)
        with pytest.raises(ContentError):
            await hub.reply(conversation_id, [photo])
        assert fake.sent == []


async def test_mms_sends_media_urls() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        await fake.deliver(fake.customer_message(CUSTOMER, body="photo?"))
        photo = MediaPart(url="https://files.example/p.jpg", content_type="image/jpeg", size=300_000)
        await hub.reply(await only_conversation(hub), [TextPart(text="Here it is"), photo])
        await hub.drain()
        assert [(r["body"], r["media_urls"], r["num_media"]) for r in fake.sent] == [
            ("Here it is", ["https://files.example/p.jpg"], "1")
        ]


async def test_messaging_service_threads_and_sends_through_the_service() -> None:
    fake = fake_twilio(messaging_services={SERVICE: [BUSINESS]})
    config = {"senders": [{"messaging_service_sid": SERVICE}], "twilio": twilio_config(fake)["twilio"]}
    async with open_hub(config, fake) as hub:
        await fake.deliver(fake.customer_message(CUSTOMER, body="hi"))
        conversation = await hub.conversation(await only_conversation(hub))
        assert conversation.threads[0].account == SERVICE
        await hub.reply(conversation.id, "hello from the service")
        await hub.drain()
        assert (fake.sent[0]["messaging_service_sid"], fake.sent[0]["status"]) == (SERVICE, "accepted")
        await fake.deliver(fake.customer_message(CUSTOMER, body="STOP"))
        with pytest.raises(OptedOutError):
            await hub.reply(conversation.id, "bye?")


async def test_smart_encoding_keeps_texts_in_gsm7_and_reports_it() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake, smart_encoding=True), fake) as hub:
        result = await sms(hub).send(outbound("It’s “ready” — pick it up…"))
        assert fake.sent[0]["body"] == 'It\'s "ready" - pick it up...'
        assert result.details["encoding"] == "GSM-7"
        assert set(result.details["smart_encoding"]) == set("’“”—…")


async def test_emoji_reply_reports_ucs2_segments() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        result = await sms(hub).send(outbound("Thanks! 😀 " * 8))
        assert (result.details["encoding"], result.details["segments"]) == ("UCS-2", "2")
        assert result.details["provider_segments"] == "2"


@pytest.mark.parametrize(
    ("fault", "error", "retry_after"),
    [
        (Fault(status=429, headers={"Retry-After": "7"}, endpoint="messages"), RateLimitedError, 7.0),
        (Fault(status=503, endpoint="messages"), RetryableSendError, None),
    ],
)
async def test_throttling_and_outages_are_retryable(
    fault: Fault, error: type[RetryableSendError], retry_after: float | None
) -> None:
    fake = fake_twilio()
    fake.inject(fault)
    async with open_hub(twilio_config(fake), fake) as hub:
        with pytest.raises(error) as raised:
            await sms(hub).send(outbound())
        assert raised.value.retry_after == retry_after
        await sms(hub).send(outbound())  # the fault was consumed
        assert len(fake.sent) == 1


async def test_timeout_after_the_request_is_an_unknown_outcome() -> None:
    fake = fake_twilio()
    fake.inject(Fault(kind="timeout_after"))
    async with open_hub(twilio_config(fake), fake) as hub:
        with pytest.raises(OutcomeUnknownError):
            await sms(hub).send(outbound())
        assert len(fake.sent) == 1  # Twilio did take it


async def test_wrong_auth_token_is_a_credentials_error() -> None:
    fake = fake_twilio()
    config = twilio_config(fake)
    config["twilio"] = {**config["twilio"], "auth_token": "wrong"}
    async with open_hub(config, fake) as hub:
        with pytest.raises(CredentialsError) as raised:
            await sms(hub).send(outbound())
        assert raised.value.provider_code == "20003"


async def test_api_key_authenticates_sends() -> None:
    key_sid, secret = "SK" + "b" * 32, "key-secret"
    fake = fake_twilio(api_keys={key_sid: secret})
    config = twilio_config(fake)
    config["twilio"] = {**config["twilio"], "api_key_sid": key_sid, "api_key_secret": secret}
    async with open_hub(config, fake) as hub:
        await sms(hub).send(outbound())
        assert len(fake.sent) == 1


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"landlines": [CUSTOMER]}, "21614"),
        ({"blocked_prefixes": ["+1415"]}, "21408"),
    ],
)
async def test_recipient_refusals_are_permanent_and_name_the_number(setup: dict[str, Any], code: str) -> None:
    fake = fake_twilio(**setup)
    async with open_hub(twilio_config(fake), fake) as hub:
        with pytest.raises(PermanentSendError) as raised:
            await sms(hub).send(outbound())
        assert raised.value.provider_code == code
        assert CUSTOMER in str(raised.value)


async def test_unknown_from_number_is_refused_by_the_provider() -> None:
    fake = FakeTwilio(numbers=["+14155550199"], webhook_base=f"{PUBLIC_URL}/webhooks/sms")
    config = {"senders": [{"number": BUSINESS}], "twilio": twilio_config(fake)["twilio"]}
    async with open_hub(config, fake) as hub:
        with pytest.raises(PermanentSendError) as raised:
            await sms(hub).send(outbound())
        assert raised.value.provider_code == "21606"
        assert BUSINESS in str(raised.value)


async def test_fake_refuses_bodies_over_1600_characters() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        with pytest.raises(PermanentSendError) as raised:
            await sms(hub).send(outbound("x" * 1601))
        assert raised.value.provider_code == "21617"


async def test_fake_serves_over_real_http() -> None:
    import httpx

    fake = fake_twilio()
    async with fake.serve() as base_url, httpx.AsyncClient(base_url=base_url) as client:
        response = await client.post(
            f"/2010-04-01/Accounts/{fake.account_sid}/Messages.json",
            data={"To": CUSTOMER, "From": BUSINESS, "Body": "hi"},
            auth=(fake.account_sid, fake.auth_token),
        )
        assert response.status_code == 201
        body = response.json()
        assert body["sid"].startswith("SM")
        assert len(body["sid"]) == 34
        assert (body["status"], body["num_segments"], body["num_media"]) == ("queued", "1", "0")
        assert body["date_created"].endswith("GMT")


async def test_provider_opt_out_during_dispatch_fails_the_message_and_blocks_later_replies() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        await fake.deliver(fake.customer_message(CUSTOMER, body="Hello"))
        conversation_id = await only_conversation(hub)
        fake.opted_out.add((BUSINESS, CUSTOMER))
        reply = await hub.reply(conversation_id, "are you there?")
        with anyio.fail_after(10):
            await hub.drain()
        failed = await hub.message(reply.id)
        assert failed.status is DeliveryStatus.FAILED
        assert failed.error is not None
        assert "21610" in failed.error
        with pytest.raises(OptedOutError):
            await hub.reply(conversation_id, "hello?")


async def test_get_webhooks_are_verified_over_the_url() -> None:
    from urllib.parse import urlencode

    from omnilink import WebhookRequest
    from omnilink_sms import twilio_signature

    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        query = urlencode({"MessageSid": "SM" + "1" * 32, "From": CUSTOMER, "To": BUSINESS, "Body": "by GET"})
        url = f"{PUBLIC_URL}/webhooks/sms/twilio/inbound?{query}"
        headers = {"x-twilio-signature": twilio_signature(fake.auth_token, url, None)}
        request = WebhookRequest.build("GET", url, headers, path="/twilio/inbound")
        assert (await hub.handle_webhook("sms", request)).status == 200
        tampered = replace(request, url=url.replace("by+GET", "by+GOT"))
        assert (await hub.handle_webhook("sms", tampered)).status == 403
        (message,) = await hub.messages(await only_conversation(hub))
        assert message.text == "by GET"


async def test_hub_asgi_app_routes_twilio_webhooks_to_the_channel() -> None:
    import httpx

    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        signed = fake.customer_message(CUSTOMER, body="through ASGI")
        transport = httpx.ASGITransport(app=hub.asgi_app())
        async with httpx.AsyncClient(transport=transport, base_url="http://10.0.0.7:8000") as client:
            response = await client.post("/webhooks/sms/twilio/inbound", content=signed.body,
                                         headers=dict(signed.headers))  # fmt: skip
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/xml")
            forged = await client.post("/webhooks/sms/twilio/inbound", content=signed.body + b"&x=1",
                                       headers=dict(signed.headers))  # fmt: skip
            assert forged.status_code == 403
        (message,) = await hub.messages(await only_conversation(hub))
        assert message.text == "through ASGI"


async def test_emoji_heavy_long_reply_pieces_fit_1600_utf16_units() -> None:
    fake = fake_twilio()
    async with open_hub(twilio_config(fake), fake) as hub:
        await fake.deliver(fake.customer_message(CUSTOMER, body="emoji please"))
        text = " ".join(["😀😀😀"] * 500)
        await hub.reply(await only_conversation(hub), text)
        await hub.drain()
        bodies = [r["body"] for r in fake.sent]
        assert all(len(b.encode("utf-16-le")) // 2 <= 1600 for b in bodies)
        assert "".join(bodies) == text
