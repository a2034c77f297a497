"""The package's public surface, its plugin registration, and a run over real HTTP."""

from __future__ import annotations

from importlib.metadata import entry_points
from types import ModuleType

import anyio
import pytest
from sms_support import CUSTOMER, PUBLIC_URL, open_hub, vonage_config

import omnilink_sms
import omnilink_sms.testing
from omnilink import (
    AdapterHealth,
    DeliveryStatus,
    HealthState,
    Hub,
    MemoryStore,
    OutboundMessage,
    RetryableSendError,
    TextPart,
)
from omnilink.testing import hub_target
from omnilink_sms import SMS_CAPABILITIES, SmsChannel, _plugin
from omnilink_sms.testing import FakeTwilio, FakeVonage


@pytest.mark.parametrize("module", [omnilink_sms, omnilink_sms.testing])
def test_public_names_are_sorted_and_exist(module: ModuleType) -> None:
    names = list(module.__all__)
    assert names == sorted(names)
    public = {n for n in dir(module) if not n.startswith("_") and n not in {"annotations"}}
    assert set(names) <= public
    assert all(getattr(module, n) is not None for n in names)


def test_plugin_is_published_under_the_omnilink_entry_point_group() -> None:
    (ep,) = [ep for ep in entry_points(group="omnilink") if ep.name == "sms"]
    assert ep.value == "omnilink_sms._plugin"
    (spec,) = ep.load().omnilink_channels()
    assert spec.name == "sms"
    assert spec.capabilities == SMS_CAPABILITIES


def test_capabilities_declare_sms_limits() -> None:
    caps = SMS_CAPABILITIES
    assert caps.text_max == 1600
    assert caps.media.max_count == 10
    assert caps.media.types == {"image", "audio", "video", "file"}
    assert caps.media.max_bytes == 5_000_000
    assert caps.delivery_receipts
    assert caps.can_start_conversation
    assert caps.thread_by_key


@pytest.mark.anyio
async def test_reply_over_real_http_to_a_served_fake() -> None:
    fake = FakeTwilio(numbers=["+14155550100"], webhook_base=f"{PUBLIC_URL}/webhooks/sms")
    async with fake.serve() as base_url:
        config = {
            "senders": [{"number": "+14155550100"}],
            "twilio": {"account_sid": fake.account_sid, "auth_token": fake.auth_token, "base_url": base_url},
        }
        hub = Hub(store=MemoryStore(), channels={"sms": config}, plugins=[_plugin], load_entry_points=False,
                  public_url=PUBLIC_URL)  # fmt: skip
        async with hub:
            fake.target = hub_target(hub, "sms")
            await fake.deliver(fake.customer_message(CUSTOMER, body="over the wire"))
            (conversation,) = await hub.conversations()
            reply = await hub.reply(conversation.id, "answer over HTTP")
            await hub.drain()
            assert [r["body"] for r in fake.sent] == ["answer over HTTP"]
            await fake.deliver(fake.status_request(fake.sent[0]["sid"], "delivered"))
            assert (await hub.message(reply.id)).status is DeliveryStatus.DELIVERED


@pytest.mark.anyio
async def test_vonage_quota_exhaustion_reports_usage_capped_health() -> None:
    fake = FakeVonage(numbers=["+14155550199"], webhook_base=f"{PUBLIC_URL}/webhooks/sms")
    fake.quota_exhausted = True
    async with open_hub(vonage_config(fake), fake) as hub, hub.subscribe() as events:
        channel = hub.channel("sms")
        assert isinstance(channel, SmsChannel)
        outbound = OutboundMessage(
            message_id="msg_q", conversation_id="cnv_q", account="+14155550199", thread_key=CUSTOMER,
            recipient=CUSTOMER, parts=(TextPart(text="hi"),),
        )  # fmt: skip
        with pytest.raises(RetryableSendError) as raised:
            await channel.send(outbound)
        assert getattr(raised.value, "provider_code", None) == "9"
        with anyio.fail_after(5):
            event = await events.receive()
        assert isinstance(event, AdapterHealth)
        assert event.state is HealthState.USAGE_CAPPED
