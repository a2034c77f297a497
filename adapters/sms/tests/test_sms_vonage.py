"""The SMS channel on Vonage: concatenated inbound parts, per-part statuses, receipts."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sms_support import CUSTOMER, PUBLIC_URL, open_hub, twilio_settings, vonage_config

from omnilink import (
    CredentialsError,
    DeliveryStatus,
    Hub,
    OptedOutError,
    OutboundMessage,
    PermanentSendError,
    RateLimitedError,
    RecipientUnavailableError,
    RetryableSendError,
    TextPart,
)
from omnilink.testing import Fault
from omnilink_sms import SmsChannel
from omnilink_sms.testing import FakeTwilio, FakeVonage

pytestmark = pytest.mark.anyio

BUSINESS = "+14155550199"
LONG_TEXT = "Hello, my parcel never arrived. " * 12  # 3 GSM-7 segments


def fake_vonage(**kw: Any) -> FakeVonage:
    return FakeVonage(numbers=[BUSINESS], webhook_base=f"{PUBLIC_URL}/webhooks/sms", **kw)


def outbound(text: str = "hello") -> OutboundMessage:
    return OutboundMessage(
        message_id="msg_v", conversation_id="cnv_v", account=BUSINESS, thread_key=CUSTOMER,
        recipient=CUSTOMER, parts=(TextPart(text=text),),
    )  # fmt: skip


def sms(hub: Hub) -> SmsChannel:
    channel = hub.channel("sms")
    assert isinstance(channel, SmsChannel)
    return channel


async def test_concatenated_parts_become_one_message_in_order() -> None:
    fake = fake_vonage()
    async with open_hub(vonage_config(fake), fake) as hub:
        parts = fake.customer_message(CUSTOMER, text=LONG_TEXT)
        assert len(parts) == 3
        for request in [parts[2], parts[0]]:
            assert (await fake.deliver(request)).status == 204
        assert await hub.conversations() == []  # nothing until every part arrived
        assert (await fake.deliver(parts[1])).status == 204
        (conversation,) = await hub.conversations()
        (message,) = await hub.messages(conversation.id)
        assert message.text == LONG_TEXT
        assert (message.account, message.thread_key) == (BUSINESS, CUSTOMER)
        # A redelivered part changes nothing.
        assert (await fake.deliver(parts[0])).status == 204
        assert len(await hub.messages(conversation.id)) == 1


@settings(max_examples=20)
@given(
    text=st.text(alphabet=st.sampled_from(list("abc xyz€[]çé😀漢")), min_size=1, max_size=400),
    order=st.randoms(use_true_random=False),
)
def test_any_arrival_order_reassembles_the_original(text: str, order: Any) -> None:
    import anyio

    async def scenario() -> None:
        fake = fake_vonage()
        async with open_hub(vonage_config(fake), fake) as hub:
            parts = fake.customer_message(CUSTOMER, text=text, concat=True)
            order.shuffle(parts)
            for request in parts:
                assert (await fake.deliver(request)).status == 204
            (conversation,) = await hub.conversations()
            assert [m.text for m in await hub.messages(conversation.id)] == [text]

    anyio.run(scenario)


async def test_reused_concat_reference_starts_a_new_message() -> None:
    fake = fake_vonage()
    async with open_hub(vonage_config(fake), fake) as hub:
        first = fake.customer_message(CUSTOMER, text=LONG_TEXT)
        for request in first:
            await fake.deliver(request)
        second = fake.customer_message(CUSTOMER, text="Second message. " * 12)
        # Force the same 8-bit reference the network may reuse.
        ref = first[0].body.decode().split('"concat-ref": "')[1].split('"')[0]
        second = [replace(r, body=r.body.replace(b'"concat-ref": "2"', f'"concat-ref": "{ref}"'.encode()))
                  for r in second]  # fmt: skip
        for request in second:
            await fake.deliver(request)
        (conversation,) = await hub.conversations()
        assert [m.text for m in await hub.messages(conversation.id)] == [LONG_TEXT, "Second message. " * 12]


async def test_stop_on_vonage_opts_the_contact_out() -> None:
    fake = fake_vonage()
    async with open_hub(vonage_config(fake), fake) as hub:
        for request in fake.customer_message(CUSTOMER, text="hi"):
            await fake.deliver(request)
        for request in fake.customer_message(CUSTOMER, text="Stop"):
            await fake.deliver(request)
        (conversation,) = await hub.conversations()
        with pytest.raises(OptedOutError):
            await hub.reply(conversation.id, "hello?")


async def test_reply_uses_unicode_only_when_needed_and_receipts_deliver() -> None:
    fake = fake_vonage()
    async with open_hub(vonage_config(fake), fake) as hub:
        for request in fake.customer_message(CUSTOMER, text="hi", method="GET"):
            assert (await fake.deliver(request)).status == 204
        (conversation,) = await hub.conversations()
        plain = await hub.reply(conversation.id, "Your code is 1234 [ok]")
        emoji = await hub.reply(conversation.id, "Thanks 😀")
        await hub.drain()
        # Different messages are dispatched in parallel: compare by text, not order.
        by_text = {r["text"]: (r["to"], r["from"], r["type"], r["wrong_encoding"]) for r in fake.sent}
        assert by_text == {
            "Your code is 1234 [ok]": (CUSTOMER.lstrip("+"), BUSINESS.lstrip("+"), "text", False),
            "Thanks 😀": (CUSTOMER.lstrip("+"), BUSINESS.lstrip("+"), "unicode", False),
        }
        assert fake.sent[0]["callback"] == f"{PUBLIC_URL}/webhooks/sms/vonage/status"
        sent = await hub.message(plain.id)
        assert sent.send_details["encoding"] == "GSM-7"
        assert (await hub.message(emoji.id)).send_details["encoding"] == "UCS-2"
        assert sent.provider_message_id is not None
        assert sent.provider_message_id in next(r["ids"] for r in fake.sent if r["type"] == "text")
        await fake.deliver(fake.receipt_request(sent.provider_message_id, "delivered"))
        await fake.deliver(fake.receipt_request(sent.provider_message_id, "accepted"))  # late, ignored
        assert (await hub.message(plain.id)).status is DeliveryStatus.DELIVERED


async def test_long_vonage_send_checks_every_part() -> None:
    fake = fake_vonage()
    async with open_hub(vonage_config(fake), fake) as hub:
        result = await sms(hub).send(outbound(LONG_TEXT))
        assert result.details["provider_segments"] == "3"
        assert result.details["provider_ids"].split(",") == fake.sent[0]["ids"]


async def test_one_failed_part_after_sent_parts_is_permanent() -> None:
    fake = fake_vonage()
    fake.inject(Fault(status=200, endpoint="sms", body={
        "message-count": "2",
        "messages": [
            {"to": "14155550123", "message-id": "AAA", "status": "0"},
            {"to": "14155550123", "status": "1", "error-text": "Throttled"},
        ],
    }))  # fmt: skip
    async with open_hub(vonage_config(fake), fake) as hub:
        with pytest.raises(PermanentSendError) as raised:
            await sms(hub).send(outbound())
        assert raised.value.provider_code == "1"


@pytest.mark.parametrize(
    ("setup", "error", "code"),
    [
        ({"barred": ["+14155550123"]}, RecipientUnavailableError, "7"),
        ({"api_secret": "other"}, CredentialsError, "4"),
    ],
)
async def test_vonage_error_statuses_in_200_answers_are_mapped(
    setup: dict[str, Any], error: type[Exception], code: str
) -> None:
    fake = fake_vonage(**{k: v for k, v in setup.items() if k != "api_secret"})
    config = vonage_config(fake)
    if "api_secret" in setup:
        config["vonage"] = {**config["vonage"], "api_secret": setup["api_secret"]}
    async with open_hub(config, fake) as hub:
        with pytest.raises(error) as raised:
            await sms(hub).send(outbound())
        assert getattr(raised.value, "provider_code", None) == code


async def test_throttled_status_is_rate_limited() -> None:
    fake = fake_vonage()
    fake.inject(Fault(status=200, endpoint="sms"))
    async with open_hub(vonage_config(fake), fake) as hub:
        with pytest.raises(RateLimitedError):
            await sms(hub).send(outbound())


async def test_webhook_token_is_required_when_configured() -> None:
    fake = fake_vonage(webhook_token="s3cret")
    async with open_hub(vonage_config(fake), fake) as hub:
        (valid,) = fake.customer_message(CUSTOMER, text="hi")
        forged = replace(valid, url=valid.url.replace("token=s3cret", "token=guess"))
        assert (await hub.handle_webhook("sms", forged)).status == 403
        assert (await hub.handle_webhook("sms", valid)).status == 204


async def test_twilio_and_vonage_senders_share_one_channel() -> None:
    twilio = FakeTwilio(numbers=["+14155550100"], webhook_base=f"{PUBLIC_URL}/webhooks/sms")
    vonage = fake_vonage()
    config = vonage_config(vonage)
    config["senders"] = [{"number": "+14155550100"}, *config["senders"]]
    config["twilio"] = twilio_settings(twilio)
    config["default_sender"] = BUSINESS
    async with open_hub(config, twilio, vonage) as hub:
        await hub.start_conversation("sms", CUSTOMER, "via vonage")
        await hub.start_conversation("sms", CUSTOMER, "via twilio", account="+14155550100")
        await hub.drain()
        assert [r["text"] for r in vonage.sent] == ["via vonage"]
        assert [r["body"] for r in twilio.sent] == ["via twilio"]


async def test_binary_sms_is_kept_as_an_unknown_part() -> None:
    from omnilink import UnknownPart

    fake = fake_vonage()
    async with open_hub(vonage_config(fake), fake) as hub:
        (request,) = fake.customer_message(CUSTOMER, text="x")
        body = request.body.replace(b'"type": "text"', b'"type": "binary", "data": "0A0B", "udh": "050003"')
        assert (await fake.deliver(replace(request, body=body))).status == 204
        (conversation,) = await hub.conversations()
        (message,) = await hub.messages(conversation.id)
        assert message.parts == (
            UnknownPart(provider_type="vonage.binary", data={"data": "0A0B", "udh": "050003"}),
        )


async def test_parts_arriving_at_two_workers_at_once_make_one_message(tmp_path: Any) -> None:
    import anyio

    from omnilink import SQLiteStore
    from omnilink.testing import routing_transport
    from omnilink_sms import _plugin

    fake = fake_vonage()
    path = str(tmp_path / "shared.sqlite3")
    hubs = [
        Hub(store=SQLiteStore(path), channels={"sms": vonage_config(fake)}, plugins=[_plugin],
            load_entry_points=False, transport=routing_transport(fake), public_url=PUBLIC_URL, dispatch=False)
        for _ in range(2)
    ]  # fmt: skip
    async with hubs[0], hubs[1]:
        for round_ in range(3):
            parts = fake.customer_message(CUSTOMER, text=f"round {round_}: " + LONG_TEXT)
            statuses: list[int] = []

            async def deliver(hub: Hub, request: Any, into: list[int]) -> None:
                into.append((await hub.handle_webhook("sms", request)).status)

            with anyio.fail_after(10):
                async with anyio.create_task_group() as tg:
                    for i, request in enumerate(parts):
                        tg.start_soon(deliver, hubs[i % 2], request, statuses)
            assert statuses == [204] * len(parts)
        (conversation,) = await hubs[0].conversations()
        texts = [m.text for m in await hubs[0].messages(conversation.id)]
        assert sorted(texts) == [f"round {r}: " + LONG_TEXT for r in range(3)]


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault(status=429, headers={"Retry-After": "3"}, body={}, endpoint="sms"), RateLimitedError),
        (Fault(status=502, body={}, endpoint="sms"), RetryableSendError),
        (Fault(status=400, body={"error": "bad"}, endpoint="sms"), PermanentSendError),
    ],
)
async def test_vonage_http_errors_are_mapped(fault: Fault, error: type[Exception]) -> None:
    fake = fake_vonage()
    fake.inject(fault)
    async with open_hub(vonage_config(fake), fake) as hub:
        with pytest.raises(error) as raised:
            await sms(hub).send(outbound())
        if isinstance(raised.value, RateLimitedError):
            assert raised.value.retry_after == 3.0
