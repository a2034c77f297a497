"""Helpers for the X channel's tests: a controllable clock and a channel on a bare context."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from omnilink import ChannelContext, Inbound, OutboundMessage, Part, TextPart
from omnilink.testing import routing_transport
from omnilink_twitter import TwitterChannel, TwitterConfig
from omnilink_twitter.testing import FakeX, TwitterKit


class Clock:
    """A controllable clock shared by the fake and the channel."""

    def __init__(self) -> None:
        self.value = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += timedelta(seconds=seconds)


@dataclass
class Harness:
    """A channel on a bare ChannelContext: submitted items and state are kept in memory."""

    fake: FakeX
    channel: TwitterChannel
    clock: Clock
    submitted: list[Inbound] = field(default_factory=list)
    state: dict[str, str] = field(default_factory=dict)


def config_for(fake: FakeX, **overrides: Any) -> TwitterConfig:
    values: dict[str, Any] = TwitterKit().channel_config([fake])
    values.update(overrides)
    return TwitterConfig.model_validate(values)


async def make_harness(fake: FakeX, clock: Clock, **overrides: Any) -> tuple[Harness, httpx.AsyncClient]:
    http = httpx.AsyncClient(transport=routing_transport(fake))
    harness = Harness(fake=fake, channel=None, clock=clock)  # type: ignore[arg-type]

    context = ChannelContext.standalone(
        "twitter", http=http, now=clock, public_url="https://helpdesk.example", state=harness.state
    )
    harness.submitted = context.submitted
    harness.channel = TwitterChannel(config_for(fake, **overrides), context)
    return harness, http


def dm(
    fake: FakeX, text: str = "hello", *, recipient: str = "2000000001", parts: tuple[Part, ...] | None = None
) -> OutboundMessage:
    me = fake.settings.user_id
    return OutboundMessage(
        message_id="msg_1",
        conversation_id="cnv_1",
        account=me,
        thread_key=f"dm:{min(me, recipient, key=int)}-{max(me, recipient, key=int)}",
        recipient=recipient,
        parts=parts if parts is not None else (TextPart(text=text),),
    )
